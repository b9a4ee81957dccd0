package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hasadna/conductor/internal/procnet"
	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/process"
)

// A release's process types other than web (worker, beat…) start in the
// start step next to the serving release's, under names of their own
// (process.ReleaseWatcher: the release's port tells old and new apart), are
// checked with the web processes, and the old ones stop in retire, after
// the switch. A push waits for the new ones to be started and checked,
// never for the old ones to finish.

// DefaultUptime is how long each process of a non-web type must stay up
// after its start for the check to pass, unless it has booted sooner
// (settled).
const DefaultUptime = time.Second

// settleWindow is how long a process type's processes must be asleep and
// use no CPU at all to count as booted: a worker that has imported its
// code and waits for its first job (a Celery or RQ worker, a loop that
// sleeps). A process still importing, or crashing, is running or waits on
// the disk, not asleep. It is waited once per deploy of an app with
// workers, after their boot: 50 ms, not 100, was a tenth of a code-only
// redeploy here. A boot that sleeps longer than the window (a broker's
// connect timing out) passes as booted with either; app.json's uptime
// (uptimes) waits in full for those that need it.
const settleWindow = 50 * time.Millisecond

// checkPoll is how often checkProcesses looks (circus's pids, /proc): a
// type that settled passes within settleWindow + checkPoll. A look costs
// about 2 ms of CPU on a host with a few hundred processes.
const checkPoll = 20 * time.Millisecond

// otherType is one of the new release's non-web process types, started.
type otherType struct {
	typ, watcher string
	want         int           // processes it runs (ps:scale)
	started      time.Time     // when its watcher was added
	uptime       time.Duration // how long they must stay up from started
	early        bool          // the default uptime: passes once settled
	logSize      int64         // its log's size before it started
}

// otherTypes lists the Procfile's process types other than web.
func (d *deployment) otherTypes() []string {
	var types []string
	for _, typ := range d.procfile.Types() {
		if typ != "web" {
			types = append(types, typ)
		}
	}
	return types
}

// startOthers starts the new release's other process types, once
// collectstatic has ended, unless they started beside it (staged.go).
func (d *deployment) startOthers(ctx context.Context) error {
	if len(d.otherTypes()) == 0 {
		return nil
	}
	if err := d.collectstaticDone(ctx); err != nil { // overlap.go
		return err
	}
	if d.othersEarly {
		return d.restartIfStaticChanged(ctx)
	}
	return d.startOthersNow(ctx)
}

// startOthersNow starts the new release's other process types.
func (d *deployment) startOthersNow(ctx context.Context) error {
	types := d.otherTypes()
	scale, err := d.b.Store.ProcessScale(ctx, d.app.ID)
	if err != nil {
		return err
	}
	uptimes, explicit := d.uptime, d.uptimeAsked // read by detect
	for _, typ := range types {
		name := process.ReleaseWatcher(d.app.Name, typ, d.port)
		want, ok := scale[typ]
		if !ok {
			want = 1
		}
		o := &otherType{typ: typ, watcher: name, want: want, uptime: uptimes[typ], early: !explicit[typ], logSize: d.logSize(typ)}
		d.newWatchers = append(d.newWatchers, name) // cleanup removes it, even half added
		o.started = time.Now()
		if err := d.addWatcher(ctx, name, typ, 0); err != nil {
			return err
		}
		d.others = append(d.others, o)
		d.log.Printf("       %s: %s", typ, d.procfile[typ])
	}
	return nil
}

// clearPort removes what a failed or interrupted deploy left on the new
// release's port: watchers and process specs.
func (d *deployment) clearPort(ctx context.Context) error {
	names, err := d.b.appWatchers(d.app.Name)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, port, _ := process.ParseWatcher(d.app.Name, n); port == d.port {
			if err := d.removeWatcher(ctx, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// appWatchers lists an app's watchers: those installed in circus, and
// those that only have a process spec left (a deploy interrupted between
// the two).
func (b *Builder) appWatchers(app string) ([]string, error) {
	installed, err := b.Circus.Watchers()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, n := range installed {
		if strings.HasPrefix(n, app+"_") {
			names = append(names, n)
		}
	}
	dir, err := safefs.OpenDir(b.Layout.ProjectsDir(), app+"/run")
	if errors.Is(err, fs.ErrNotExist) {
		return names, nil
	} else if err != nil {
		return nil, err
	}
	defer dir.Close()
	files, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if n, ok := strings.CutSuffix(f, ".json"); ok && strings.HasPrefix(n, app+"_") && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names, nil
}

// retireOthers stops every watcher of app not in keep and deletes its
// spec: circus sends the processes their stop signal and lets them finish
// (graceful_timeout) in the background, so the caller does not wait for
// them. Every watcher is tried; the errors are returned together.
func (b *Builder) retireOthers(ctx context.Context, app string, keep map[string]bool) error {
	names, err := b.appWatchers(app)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if keep[n] {
			continue
		}
		spec := filepath.Join(b.Layout.RunDir(app), n+".json")
		if err := b.stopWatcher(ctx, n, spec, true); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(spec); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkRelease is the check step: the web processes answer (check), the
// other process types stay up (checkProcesses) and collectstatic and
// migrate, when they run meanwhile, end well (awaitRunner, overlap.go),
// all waited on at the same time; the first failure fails the deploy and
// ends the other waits. When another program answered the web check on
// the release's port, the others run to their end first, and the release
// then moves to a free port (moveAndRecheck, ports.go).
func (d *deployment) checkRelease(ctx context.Context) error {
	err := d.checkAll(ctx)
	if errors.Is(err, errPortTaken) {
		return d.moveAndRecheck(ctx)
	}
	return err
}

// checkAll runs the check step's checks side by side.
func (d *deployment) checkAll(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	checks := []struct {
		what string
		run  func(context.Context) error
	}{{"web", d.check}, {"other types", d.checkProcesses}, {"collectstatic and migrate", d.awaitRunner}}
	results := make(chan error, len(checks))
	start := time.Now()
	for _, c := range checks {
		go func() {
			err := c.run(ctx)
			// Which ends last is where a deploy's check time goes.
			slog.Debug("check done", "app", d.app.Name, "deploy", d.job.ID, "what", c.what, "took", time.Since(start), "err", err)
			results <- err
		}()
	}
	var first, portTaken error
	for range checks {
		err := <-results
		switch {
		case errors.Is(err, errPortTaken):
			portTaken = err // not a failure: the others go on
		case err != nil && first == nil:
			first = err
			cancel()
		}
	}
	if first != nil {
		return first
	}
	return portTaken
}

// checkProcesses waits until each of the new release's other process types
// has kept all its processes up for its uptime since it started. A process
// that exits meanwhile (circus restarts it with a new pid) or a type that
// runs fewer processes than it should fails the deploy with the type's
// last output, before the switch.
func (d *deployment) checkProcesses(ctx context.Context) error {
	pending := slices.Clone(d.others)
	seen := map[string]map[int]bool{}
	quiet := map[string]*settling{}
	launcher := d.b.Conductor // what /proc/<pid>/exe shows for it (notStarted)
	if real, err := filepath.EvalSymlinks(launcher); err == nil {
		launcher = real
	}
	// The uptime counts from when every process of the type runs the app's
	// command: on a loaded machine the launcher alone can take longer than
	// the uptime, and a worker that crashes at once would pass unseen.
	began := map[string]time.Time{}
	for len(pending) > 0 {
		now := time.Now()
		left := pending[:0]
		for _, o := range pending {
			if o.want == 0 || o.uptime == 0 { // scaled to zero, or not checked
				continue
			}
			pids, err := d.b.Circus.Pids(ctx, o.watcher)
			if err != nil {
				return fmt.Errorf("check %s: %w", o.typ, err)
			}
			cur := map[int]bool{}
			for _, p := range pids {
				cur[p] = true
			}
			for p := range seen[o.watcher] {
				if !cur[p] {
					return d.processFailed(ctx, o, fmt.Sprintf("a %s process exited %s after its start", o.typ, now.Sub(o.started).Round(10*time.Millisecond)))
				}
			}
			seen[o.watcher] = cur
			if began[o.watcher].IsZero() && len(pids) >= o.want && !notStarted(pids, launcher) {
				began[o.watcher] = now
			}
			booted := o.early && len(pids) >= o.want && settled(quiet, o.watcher, pids, now, launcher)
			if (began[o.watcher].IsZero() || now.Sub(began[o.watcher]) < o.uptime) && !booted {
				left = append(left, o)
				continue
			}
			if booted && now.Sub(o.started) < o.uptime {
				d.log.Printf("       %s: %d running, booted and waiting after %s", o.typ, len(pids), now.Sub(o.started).Round(10*time.Millisecond))
				continue
			}
			if len(pids) < o.want {
				return d.processFailed(ctx, o, fmt.Sprintf("%d of its %d processes run", len(pids), o.want))
			}
			d.log.Printf("       %s: %d running after %s", o.typ, len(pids), o.uptime)
		}
		pending = left
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(checkPoll):
		}
	}
	return nil
}

// settling is what settled last saw of a type's processes.
type settling struct {
	pids  []int
	ticks uint64
	since time.Time // when they were last seen running (or first seen)
}

// settled tells whether a type's processes (and what they started) have
// been asleep without using any CPU for settleWindow: booted, waiting for
// work. Any change of pids or CPU time starts the window again, and so
// does a process that has not yet become the app's command: whatever it
// waits on, the app has not run (see notStarted).
func settled(quiet map[string]*settling, watcher string, pids []int, now time.Time, launcher string) bool {
	ticks, asleep, err := procnet.Activity(procnet.Descendants(pids))
	q := quiet[watcher]
	if err != nil || !asleep || q == nil || q.ticks != ticks || !slices.Equal(q.pids, pids) || notStarted(pids, launcher) {
		quiet[watcher] = &settling{pids: slices.Clone(pids), ticks: ticks, since: now}
		return false
	}
	return now.Sub(q.since) >= settleWindow
}

// notStarted tells whether one of a watcher's processes has not yet
// become the app's command: it is still circusd's fork (the command line
// of its parent: no exec yet), or still runs the launcher (its resolved
// path: conductor run-process, before it execs the command; a replaced
// binary's link ends in " (deleted)"). On a loaded machine either can wait,
// asleep, for longer than settleWindow.
func notStarted(pids []int, launcher string) bool {
	for _, p := range pids {
		if launcher != "" && strings.TrimSuffix(procnet.Exe(p), " (deleted)") == launcher {
			return true
		}
		if pp, ok := procnet.Parent(p); ok && procnet.Cmdline(p) == procnet.Cmdline(pp) {
			return true
		}
	}
	return false
}

// processFailed reports a process type that did not stay up, with what it
// printed since it started.
func (d *deployment) processFailed(ctx context.Context, o *otherType, what string) error {
	// circus writes a process's last lines as it reaps it: give them a
	// moment to land.
	deadline := time.Now().Add(time.Second)
	for d.logSize(o.typ) <= o.logSize && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	d.log.Printf("       Process type %s did not stay up; what it logged since it started:", o.typ)
	d.log.Printf("%s", indent(d.logSince(o.typ, o.logSize, 20)))
	return failf("process type %s is not running: %s (it must stay up %s: app.json healthchecks.%s[].uptime, or config:set %s CONDUCTOR_CHECK_UPTIME=<seconds>)",
		o.typ, what, o.uptime, o.typ, d.app.Name)
}

// logSince returns the last n lines a process type's log got after it was
// offset bytes long (the old release's processes of the type log into the
// same file), read from at most its last 64 KiB.
func (d *deployment) logSince(typ string, offset int64, n int) string {
	f, err := safefs.Open(d.b.Layout.ProjectsDir(), d.app.Name+"/logs/"+typ+".log")
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if fi.Size() < offset { // rotated meanwhile
		offset = 0
	}
	offset = max(offset, fi.Size()-64<<10)
	data, err := io.ReadAll(io.NewSectionReader(f, offset, fi.Size()-offset))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// logSize is the size of a process type's log file now (0 if none).
func (d *deployment) logSize(typ string) int64 {
	st, err := safefs.Lstat(d.b.Layout.ProjectsDir(), d.app.Name+"/logs/"+typ+".log")
	if err != nil {
		return 0
	}
	return st.Size
}

// uptimes says how long each type's processes must stay up: the config
// var CONDUCTOR_CHECK_UPTIME (seconds, every type) if set, else the
// largest uptime of the type's checks in app.json, Dokku's shape:
//
//	{"healthchecks": {"worker": [{"type": "startup", "uptime": 5}]}}
//
// else DefaultUptime, which a type passes sooner once settled (explicit
// says which types asked for theirs and wait it in full). An uptime of 0
// leaves the type unchecked.
func (d *deployment) uptimes(types []string) (map[string]time.Duration, map[string]bool, error) {
	out, explicit := map[string]time.Duration{}, map[string]bool{}
	for _, t := range types {
		out[t] = DefaultUptime
	}
	if v, ok := d.config[process.ConfigUptime]; ok && v != "" {
		u, err := process.ParseUptime(v)
		if err != nil {
			return nil, nil, failf("%s=%q: %v", process.ConfigUptime, truncate(v), err)
		}
		for _, t := range types {
			out[t], explicit[t] = u, true
		}
		return out, explicit, nil
	}
	data, err := safefs.ReadFileConfined(d.dir, "app.json", 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return out, explicit, nil
	} else if err != nil {
		return nil, nil, failf("app.json: %v", err)
	}
	var doc struct {
		Healthchecks map[string][]struct {
			Type   string          `json:"type"`
			Uptime json.RawMessage `json:"uptime"`
		} `json:"healthchecks"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, failf("app.json: %v", err)
	}
	for _, t := range types {
		checks, ok := doc.Healthchecks[t]
		if !ok {
			continue
		}
		var most time.Duration
		found := false
		for i, c := range checks {
			if len(c.Uptime) == 0 || (c.Type != "" && c.Type != "startup") {
				continue
			}
			u, err := process.ParseUptime(strings.Trim(string(c.Uptime), `"`))
			if err != nil {
				return nil, nil, failf("app.json: healthchecks.%s[%d].uptime: %v", t, i, err)
			}
			most, found = max(most, u), true
		}
		if found {
			out[t], explicit[t] = most, true
		}
	}
	return out, explicit, nil
}

// truncate shortens a value for an error message.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
