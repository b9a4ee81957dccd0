// Package scheduler runs apps' scheduled jobs (app.json's cron) on their
// host. Every host's builder runs one Scheduler for the apps placed on it;
// an app lives on exactly one host, so each entry fires once cluster-wide.
// A run goes in the release serving when it fires (agent.Host.RunCron), and
// a run still going when the entry is due again is skipped and recorded:
// runs never pile up.
package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
)

// Store is the state the scheduler reads and records (SQLite, or the
// conductor's over NATS on a worker).
type Store interface {
	FindApp(ctx context.Context, name string) (*conductor.App, error)
	ListApps(ctx context.Context) ([]*conductor.App, error)
	CurrentRelease(ctx context.Context, appID int64) (*conductor.Release, error)
	conductor.CronStore
}

// Runner runs one cron command (agent.Host).
type Runner interface {
	RunCron(ctx context.Context, app string, port int, e conductor.CronEntry, name string, tee io.Writer) (agent.CronResult, error)
}

// Scheduler fires the cron entries of one host's apps.
type Scheduler struct {
	Host   string
	Store  Store
	Runner Runner
	// Failed is called after a run that failed or timed out (the place a
	// cron.failed notification goes); nil: nothing.
	Failed func(app *conductor.App, entry conductor.CronEntry, run *conductor.CronRun)
	// Now is the clock (nil: time.Now); tests set it.
	Now func() time.Time

	mu      sync.Mutex
	apps    map[string]*appEntries
	running map[string]*conductor.CronRun // by app/entry: the run going on
	wake    chan struct{}
	runs    sync.WaitGroup
}

type appEntries struct {
	app     *conductor.App
	entries []*entry
}

type entry struct {
	conductor.CronEntry
	sched conductor.CronSchedule
	next  time.Time
}

// refreshEvery re-reads every app's entries, for changes the builder did
// not announce (an app destroyed, a state restored).
const refreshEvery = time.Minute

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Scheduler) init() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps == nil {
		s.apps = map[string]*appEntries{}
		s.running = map[string]*conductor.CronRun{}
		s.wake = make(chan struct{}, 1)
	}
}

// Run fires entries until ctx ends, then waits for the runs going on
// (ctx's end kills them).
func (s *Scheduler) Run(ctx context.Context) {
	s.init()
	defer s.runs.Wait()
	if n, err := s.Store.FailUnfinishedCronRuns(ctx, s.Host, "the scheduler stopped during this run (conductor restarted)"); err != nil {
		slog.Warn("cron: mark unfinished runs failed", "host", s.Host, "err", err)
	} else if n > 0 {
		slog.Info("cron: runs cut short by a restart marked failed", "host", s.Host, "runs", n)
	}
	s.loadAll(ctx)
	refresh := time.NewTicker(refreshEvery)
	defer refresh.Stop()
	for {
		wait := time.Hour
		if next, ok := s.earliest(); ok {
			wait = max(next.Sub(s.now()), 0)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-refresh.C:
			s.loadAll(ctx)
		case <-s.wake:
		case <-t.C:
			s.fireDue(ctx)
		}
		t.Stop()
	}
}

// Reload takes app's entries from its current release again (the builder
// calls it when a release goes live).
func (s *Scheduler) Reload(app string) {
	s.init()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a, err := s.Store.FindApp(ctx, app)
		if err != nil {
			slog.Warn("cron: reload", "app", app, "err", err)
			return
		}
		s.load(ctx, a)
		s.poke()
	}()
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// loadAll reads the entries of every app on this host.
func (s *Scheduler) loadAll(ctx context.Context) {
	apps, err := s.Store.ListApps(ctx)
	if err != nil {
		slog.Warn("cron: list apps", "host", s.Host, "err", err)
		return
	}
	seen := map[string]bool{}
	for _, a := range apps {
		if a.Host != s.Host {
			continue
		}
		seen[a.Name] = true
		s.load(ctx, a)
	}
	s.mu.Lock()
	for name := range s.apps {
		if !seen[name] {
			delete(s.apps, name)
		}
	}
	s.mu.Unlock()
}

// load reads one app's entries; an entry whose schedule did not change
// keeps its next time.
func (s *Scheduler) load(ctx context.Context, a *conductor.App) {
	if a.Host != s.Host {
		return
	}
	list, err := s.Store.CronEntries(ctx, a.ID)
	if err != nil {
		slog.Warn("cron: read entries", "app", a.Name, "err", err)
		return
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	old := map[string]*entry{}
	if prev := s.apps[a.Name]; prev != nil {
		for _, e := range prev.entries {
			old[e.ID] = e
		}
	}
	ae := &appEntries{app: a}
	for _, ce := range list {
		if o := old[ce.ID]; o != nil && o.Schedule == ce.Schedule {
			o.CronEntry = *ce
			ae.entries = append(ae.entries, o)
			continue
		}
		sched, err := conductor.ParseCronSchedule(ce.Schedule)
		if err != nil { // validated at deploy: a stored entry parses
			slog.Warn("cron: bad stored schedule", "app", a.Name, "entry", ce.ID, "err", err)
			continue
		}
		ae.entries = append(ae.entries, &entry{CronEntry: *ce, sched: sched, next: sched.Next(now)})
	}
	if len(ae.entries) == 0 {
		delete(s.apps, a.Name)
		return
	}
	s.apps[a.Name] = ae
}

// earliest is the next time any entry fires.
func (s *Scheduler) earliest() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t time.Time
	for _, a := range s.apps {
		for _, e := range a.entries {
			if !e.next.IsZero() && (t.IsZero() || e.next.Before(t)) {
				t = e.next
			}
		}
	}
	return t, !t.IsZero()
}

// fireDue starts every entry that is due, and moves each to its next time.
func (s *Scheduler) fireDue(ctx context.Context) {
	now := s.now()
	type due struct {
		app *conductor.App
		e   conductor.CronEntry
	}
	var fire []due
	s.mu.Lock()
	for _, a := range s.apps {
		for _, e := range a.entries {
			if !e.next.IsZero() && !e.next.After(now) {
				fire = append(fire, due{a.app, e.CronEntry})
				e.next = e.sched.Next(now)
			}
		}
	}
	s.mu.Unlock()
	for _, d := range fire {
		_, _ = s.start(ctx, d.app, d.e, conductor.CronTriggerSchedule, nil, nil)
	}
}

func runKey(app, entry string) string { return app + "/" + entry }

// start records and starts a run of e, or records it skipped when the
// entry's previous run still goes on. With wait it runs in the caller's
// goroutine (cron:run) and returns the exit status; started is told once
// the run has started or could not.
func (s *Scheduler) start(ctx context.Context, a *conductor.App, e conductor.CronEntry, trigger string, tee io.Writer, started func(error)) (int, error) {
	rctx := context.WithoutCancel(ctx) // the record outlives a cancel
	key := runKey(a.Name, e.ID)
	now := s.now()
	s.mu.Lock()
	prev := s.running[key]
	s.mu.Unlock()
	if prev != nil {
		msg := fmt.Sprintf("run %d (started %s) was still going", prev.ID, prev.StartedAt.UTC().Format(time.RFC3339))
		skip := &conductor.CronRun{AppID: a.ID, Entry: e.ID, Release: prev.Release, Trigger: trigger, Status: conductor.CronSkipped,
			StartedAt: now, FinishedAt: now, Error: msg}
		if err := s.Store.AddCronRun(rctx, skip); err != nil {
			slog.Warn("cron: record a skipped run", "app", a.Name, "entry", e.ID, "err", err)
		}
		slog.Info("cron: skipped, the previous run is still going", "app", a.Name, "entry", e.ID, "previous", prev.ID)
		err := conductor.Errorf(conductor.EINVALID, "cron %s of %s: %s; skipped", e.ID, a.Name, msg)
		if started != nil {
			started(err)
		}
		return 0, err
	}
	cur, err := s.Store.CurrentRelease(rctx, a.ID)
	if err != nil {
		if started != nil {
			started(err)
		}
		return 0, err
	}
	run := &conductor.CronRun{AppID: a.ID, Entry: e.ID, Release: cur.ID, Trigger: trigger, Status: conductor.CronRunning, StartedAt: now}
	if err := s.Store.AddCronRun(rctx, run); err != nil {
		if started != nil {
			started(err)
		}
		return 0, err
	}
	name := fmt.Sprintf("cron.%d", run.ID)
	run.Output = "logs/" + agent.CronLog + " as " + name
	s.mu.Lock()
	s.running[key] = run
	s.mu.Unlock()
	s.runs.Add(1)
	exec := func() int {
		defer s.runs.Done()
		slog.Info("cron: run", "app", a.Name, "entry", e.ID, "run", run.ID, "release", cur.ID, "trigger", trigger)
		res, err := s.Runner.RunCron(ctx, a.Name, cur.Port, e, name, tee)
		s.finish(rctx, a, e, run, res, err)
		s.mu.Lock()
		delete(s.running, key)
		s.mu.Unlock()
		if err != nil {
			return 255
		}
		return res.Code
	}
	if started == nil {
		go exec()
		return 0, nil
	}
	started(nil)
	return exec(), nil
}

// finish records how a run ended, and tells Failed about a failure.
func (s *Scheduler) finish(ctx context.Context, a *conductor.App, e conductor.CronEntry, run *conductor.CronRun, res agent.CronResult, err error) {
	run.FinishedAt = s.now()
	run.Duration = run.FinishedAt.Sub(run.StartedAt)
	run.ExitCode = res.Code
	switch {
	case err != nil:
		run.Status, run.ExitCode, run.Error = conductor.CronFailed, -1, conductor.ErrorMessage(err)
	case res.TimedOut:
		run.Status, run.Error = conductor.CronTimedOut, fmt.Sprintf("killed at its timeout, %s", e.Timeout)
	case res.Code != 0:
		run.Status, run.Error = conductor.CronFailed, fmt.Sprintf("exited with status %d", res.Code)
	default:
		run.Status = conductor.CronSucceeded
	}
	if ferr := s.Store.FinishCronRun(ctx, run); ferr != nil {
		slog.Warn("cron: record a run's end", "app", a.Name, "entry", e.ID, "run", run.ID, "err", ferr)
	}
	if run.Status != conductor.CronSucceeded {
		slog.Warn("cron: run failed", "app", a.Name, "entry", e.ID, "run", run.ID, "status", run.Status, "err", run.Error)
		if s.Failed != nil {
			s.Failed(a, e, run)
		}
	}
}

// RunNow runs the app's entry id now, output to out as well as the log
// (cron:run), and returns its exit status; started is told once it has
// started or could not (agent.CronRuns).
func (s *Scheduler) RunNow(ctx context.Context, appName, id string, out io.Writer, started func(error)) (int, error) {
	s.init()
	fail := func(err error) (int, error) {
		started(err)
		return 0, err
	}
	if err := conductor.ValidateCronID(id); err != nil {
		return fail(err)
	}
	a, err := s.Store.FindApp(ctx, appName)
	if err != nil {
		return fail(err)
	}
	if a.Host != s.Host {
		return fail(conductor.Errorf(conductor.EINVALID, "%s runs on host %s, not %s", a.Name, a.Host, s.Host))
	}
	list, err := s.Store.CronEntries(ctx, a.ID)
	if err != nil {
		return fail(err)
	}
	for _, e := range list {
		if e.ID == id {
			return s.start(ctx, a, *e, conductor.CronTriggerManual, out, started)
		}
	}
	return fail(conductor.Errorf(conductor.ENOTFOUND, "%s has no cron entry %s (see `cron %s`)", a.Name, id, a.Name))
}

// NextRuns is when each of the app's entries fires next, as this
// scheduler sees it (for tests; `cron` computes it from the schedule).
func (s *Scheduler) NextRuns(app string) map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]time.Time{}
	if a := s.apps[app]; a != nil {
		for _, e := range a.entries {
			out[e.ID] = e.next
		}
	}
	return out
}
