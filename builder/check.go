package builder

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/hasadna/conductor/internal/safefs"
)

// check waits until the new release answers "/" with its own Host header
// and anything but a server error.
func (d *deployment) check(ctx context.Context) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", d.port)
	// A redirect is an answer: an app with SECURE_SSL_REDIRECT sends the
	// check to https://<host>/, which is up as far as the new process
	// goes. Following it would ask DNS and the front nginx instead.
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	deadline := time.Now().Add(d.checkTimeout()) // apps:set timeout.check
	var last string
	alive, died := map[int]bool{}, 0
	for i := 0; time.Now().Before(deadline); i++ {
		// circus respawns a process that dies at boot forever: when three
		// of the release's processes have died, it is crashing.
		if i%20 == 19 { // about once a second
			if pids, err := d.b.Circus.Pids(ctx, d.newWatcher); err == nil {
				now := map[int]bool{}
				for _, p := range pids {
					now[p] = true
				}
				for p := range alive {
					if !now[p] {
						died++
					}
				}
				alive = now
			}
			if died >= 3 {
				last = "its processes keep exiting"
				break
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Host = d.host()
		req.Header.Set("X-Forwarded-Proto", "http") // as the front nginx sets it for a plain request
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode < 500 {
				d.log.Printf("       GET / answered %d", resp.StatusCode)
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.log.Printf("       The new release did not become healthy; last lines of its log:")
	d.log.Printf("%s", indent(safefs.Tail(d.b.Layout.ProjectsDir(), d.app.Name+"/logs/web.log", 20)))
	return failf("health check of the new release failed (last answer: %s)", last)
}
