package scheduler

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
)

// fakeStore is the state of one app with one release.
type fakeStore struct {
	mu      sync.Mutex
	app     *conductor.App
	entries []*conductor.CronEntry
	runs    []conductor.CronRun
}

func (f *fakeStore) FindApp(context.Context, string) (*conductor.App, error) { return f.app, nil }
func (f *fakeStore) ListApps(context.Context) ([]*conductor.App, error) {
	return []*conductor.App{f.app}, nil
}
func (f *fakeStore) CurrentRelease(context.Context, int64) (*conductor.Release, error) {
	return &conductor.Release{ID: "rel1", Port: 20001}, nil
}
func (f *fakeStore) CronEntries(context.Context, int64) ([]*conductor.CronEntry, error) {
	return f.entries, nil
}
func (f *fakeStore) AddCronRun(_ context.Context, r *conductor.CronRun) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.ID = int64(len(f.runs) + 1)
	f.runs = append(f.runs, *r)
	return nil
}
func (f *fakeStore) FinishCronRun(_ context.Context, r *conductor.CronRun) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[r.ID-1] = *r
	return nil
}
func (f *fakeStore) FailUnfinishedCronRuns(context.Context, string, string) (int, error) {
	return 0, nil
}
func (f *fakeStore) snapshot() []conductor.CronRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]conductor.CronRun(nil), f.runs...)
}

// gateRunner's runs last until release is closed.
type gateRunner struct {
	release chan struct{}
	code    int
}

func (g *gateRunner) RunCron(ctx context.Context, app string, port int, e conductor.CronEntry, name string, tee io.Writer) (agent.CronResult, error) {
	if tee != nil {
		_, _ = io.WriteString(tee, "out of "+name+"\n")
	}
	<-g.release
	return agent.CronResult{Code: g.code}, nil
}

func TestSchedulerFiresSkipsAndRecords(t *testing.T) {
	now := time.Date(2026, 12, 2, 11, 59, 30, 0, time.UTC)
	var clock sync.Mutex
	st := &fakeStore{app: &conductor.App{ID: 1, Name: "hello", Host: "h1"},
		entries: []*conductor.CronEntry{{ID: "tick", Command: "x", Schedule: "* * * * *", Timeout: time.Hour}}}
	run := &gateRunner{release: make(chan struct{}), code: 3}
	var failed []int64
	s := &Scheduler{Host: "h1", Store: st, Runner: run,
		Now: func() time.Time { clock.Lock(); defer clock.Unlock(); return now },
		Failed: func(_ *conductor.App, _ conductor.CronEntry, r *conductor.CronRun) {
			clock.Lock()
			failed = append(failed, r.ID)
			clock.Unlock()
		}}
	s.init()
	ctx := context.Background()
	s.loadAll(ctx)
	if next := s.NextRuns("hello")["tick"]; !next.Equal(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)) {
		t.Fatalf("next = %s", next)
	}
	s.fireDue(ctx) // not due yet
	if n := len(st.snapshot()); n != 0 {
		t.Fatalf("fired early: %d runs", n)
	}
	advance := func(d time.Duration) { clock.Lock(); now = now.Add(d); clock.Unlock() }
	advance(30 * time.Second) // 12:00:00, due
	s.fireDue(ctx)
	advance(time.Minute) // 12:01:00: the first run still goes on
	s.fireDue(ctx)
	runs := st.snapshot()
	if len(runs) != 2 || runs[0].Status != conductor.CronRunning || runs[1].Status != conductor.CronSkipped || runs[1].Release != "rel1" {
		t.Fatalf("runs: %+v", runs)
	}
	// cron:run is refused too while the run goes on: no pile-up.
	var startErr error
	if _, err := s.RunNow(ctx, "hello", "tick", io.Discard, func(err error) { startErr = err }); err == nil || startErr == nil {
		t.Fatalf("cron:run during a run: %v", err)
	}
	close(run.release)
	s.runs.Wait()
	runs = st.snapshot()
	if runs[0].Status != conductor.CronFailed || runs[0].ExitCode != 3 || runs[0].Duration != 0 && runs[0].Duration < 0 {
		t.Fatalf("first run: %+v", runs[0])
	}
	clock.Lock()
	if len(failed) != 1 || failed[0] != runs[0].ID {
		t.Fatalf("Failed called for %v", failed)
	}
	clock.Unlock()
	if next := s.NextRuns("hello")["tick"]; !next.Equal(time.Date(2026, 12, 2, 12, 2, 0, 0, time.UTC)) {
		t.Fatalf("next after firing = %s", next)
	}
	// Now cron:run runs it, in the caller's goroutine, with its status.
	started := false
	code, err := s.RunNow(ctx, "hello", "tick", io.Discard, func(err error) { started = err == nil })
	if err != nil || code != 3 || !started {
		t.Fatalf("cron:run: %d %v %v", code, err, started)
	}
	if last := st.snapshot()[3]; last.Trigger != conductor.CronTriggerManual || last.Status != conductor.CronFailed {
		t.Fatalf("cron:run's record: %+v", last)
	}
	if _, err := s.RunNow(ctx, "hello", "nope", io.Discard, func(error) {}); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Fatalf("missing entry: %v", err)
	}
}
