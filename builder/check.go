package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/pybuild"
)

// check waits until the new release's web process passes its health
// checks: app.json's "healthchecks" or the CONDUCTOR_HEALTHCHECK config
// var (d.health, read by detect), else GET / with the app's Host, any
// answer below 500 counting as up. All of them within the check step's
// bound (timeout.check).
func (d *deployment) check(ctx context.Context) error {
	if d.newWatcher == "" {
		return nil // no web process (a worker-only app): nothing answers HTTP
	}
	d.describeHealth()
	checks := []pybuild.Healthcheck{pybuild.DefaultHealthcheck}
	if h := d.health; h != nil {
		if h.None {
			return nil
		}
		if len(h.Checks) > 0 {
			checks = h.Checks
		}
	}
	if err := d.waitStatic(ctx); err != nil { // overlap.go
		return err
	}
	bound := d.checkTimeout() // apps:set timeout.check
	deadline := time.Now().Add(bound)
	w := &crashWatch{}
	for _, c := range checks {
		if err := d.runCheck(ctx, c, bound, deadline, w); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d.log.Printf("       The new release did not become healthy; last lines of its log:")
			d.log.Printf("%s", indent(safefs.Tail(d.b.Layout.ProjectsDir(), d.app.Name+"/logs/web.log", 20)))
			return err
		}
	}
	return d.confirmPort(ctx) // the answer came from the release's own socket (ports.go)
}

// runCheck runs one health check of the new web process (probe).
func (d *deployment) runCheck(ctx context.Context, c pybuild.Healthcheck, bound time.Duration, deadline time.Time, w *crashWatch) error {
	url := fmt.Sprintf("http://127.0.0.1:%d%s", d.port, c.Path)
	// A redirect is an answer: an app with SECURE_SSL_REDIRECT sends the
	// check to https://<host>/, which is up as far as the new process
	// goes. Following it would ask DNS and the front nginx instead.
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	get := func(ctx context.Context, timeout time.Duration) (int, []byte, error) {
		return d.get(ctx, client, url, timeout)
	}
	// circus respawns a process that dies at boot forever: when three of
	// the release's processes have died, it is crashing.
	crashing := func() bool { return w.crashing(ctx, d) }
	status, err := probe(ctx, c, get, crashing, bound, deadline)
	if err == nil {
		d.log.Printf("       GET %s answered %d", c.Path, status)
	}
	return err
}

// probe asks with get until an answer passes the check c (its status is
// returned), c's attempts run out, the deadline passes or crashing says
// the processes keep exiting.
func probe(ctx context.Context, c pybuild.Healthcheck, get func(context.Context, time.Duration) (int, []byte, error),
	crashing func() bool, bound time.Duration, deadline time.Time) (int, error) {
	what := "health check"
	if !c.Default {
		what = fmt.Sprintf("health check %q (GET %s)", c.Name, c.Path)
	}
	if !sleepUntil(ctx, time.Now().Add(c.InitialDelay), deadline) {
		return 0, ctx.Err()
	}
	last, attempts := "no answer", 0
	for {
		if !time.Now().Before(deadline) {
			return 0, failf("%s of the new release failed: no pass within %s (last answer: %s)", what, bound, last)
		}
		if crashing() {
			return 0, failf("%s of the new release failed (last answer: %s): its processes keep exiting", what, last)
		}
		timeout := min(c.Timeout, time.Until(deadline))
		status, body, err := get(ctx, timeout)
		wait := c.Wait
		switch {
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case errors.Is(err, syscall.ECONNREFUSED):
			// Not listening yet: the process is starting. Not an attempt,
			// and asked again soon: a refused connect costs nothing, and
			// the deploy waits on gunicorn binding its port.
			last, wait = "connection refused", 10*time.Millisecond
		case err != nil:
			attempts++
			// A request the check's own deadline cut short says nothing
			// of the release: the answer before it (a 500, say) does.
			if !(timeout < c.Timeout && errors.Is(err, context.DeadlineExceeded)) || last == "no answer" {
				last = err.Error()
			}
		default:
			aerr := c.Accepts(status, body)
			if aerr == nil {
				return status, nil
			}
			attempts++
			last = aerr.Error()
		}
		if c.Attempts > 0 && attempts >= c.Attempts {
			return 0, failf("%s of the new release failed after %d attempts (last answer: %s)", what, attempts, last)
		}
		if !sleepUntil(ctx, time.Now().Add(max(wait, 10*time.Millisecond)), deadline) {
			return 0, ctx.Err()
		}
	}
}

// get asks the new release as the front nginx would: the app's Host, and
// X-Forwarded-Proto as nginx sets it for a plain request.
func (d *deployment) get(ctx context.Context, client *http.Client, url string, timeout time.Duration) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Host = d.host()
	req.Header.Set("X-Forwarded-Proto", "http")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("read the answer of GET: %w", err)
	}
	return resp.StatusCode, body, nil
}

// sleepUntil sleeps until t or the deadline, whichever is first; false
// when ctx ended.
func sleepUntil(ctx context.Context, t, deadline time.Time) bool {
	if deadline.Before(t) {
		t = deadline
	}
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// crashWatch counts the new web processes that died, from circus's pids
// every crashPoll. A process that dies at boot lives a few tens of
// milliseconds and circus respawns it about once a second (its check
// delay): a sparser look would mostly see none alive and miss the deaths.
type crashWatch struct {
	alive  map[int]bool
	died   int
	polled time.Time
}

const crashPoll = 50 * time.Millisecond

func (w *crashWatch) crashing(ctx context.Context, d *deployment) bool {
	if time.Since(w.polled) < crashPoll {
		return w.died >= 3
	}
	w.polled = time.Now()
	if pids, err := d.b.Circus.Pids(ctx, d.newWatcher); err == nil {
		now := map[int]bool{}
		for _, p := range pids {
			now[p] = true
		}
		for p := range w.alive {
			if !now[p] {
				w.died++
			}
		}
		w.alive = now
	}
	return w.died >= 3
}

// describeHealth says in the build output how the web process is
// checked, and what of app.json is not run.
func (d *deployment) describeHealth() {
	h := d.health
	if h == nil {
		return
	}
	for _, n := range h.Notes {
		d.log.Printf("       Note: %s", n)
	}
	switch {
	case h.None:
		d.log.Printf("       Health check skipped (%s)", h.Source)
	case len(h.Checks) > 0:
		for _, c := range h.Checks {
			d.log.Printf("       Health check: %s (%s)", c.Describe(), h.Source)
		}
	}
}
