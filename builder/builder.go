// Package builder runs deploy jobs: it takes a job from the queue and walks
// the deploy pipeline (pipeline.go), streaming every step's output to the
// job's log, which the pusher sees as "remote:" lines.
package builder

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/cgroup"
	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/nginx"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/queue"
)

// Builder deploys apps on this host.
type Builder struct {
	Host      string // the host this builder runs apps on
	Store     Store
	Queue     *queue.Queue
	Layout    provision.Layout
	Circus    *circus.Circus
	Nginx     *nginx.Nginx
	Databases *provision.Databases
	Domain    string // apps are served at <app>.<Domain>
	HTTPAddr  string // the front nginx, to confirm a switch took effect
	Python    string // interpreter virtualenvs are made with
	Pythons   string // directory of the registered interpreters apps may ask for (package pythons)
	UV        string // the uv binary: creates virtualenvs, installs dependencies
	Conductor string // this binary, run by circus as `conductor run-process`
	Keep      int    // releases kept for rollback
	// Ports is the apps' port range: an app's port that another program
	// listens on moves to a free one in it (ports.go).
	Ports provision.PortRange
	// LogMaxBytes caps each process log file before rotation (3 rotated
	// files are kept), so a chatty app cannot fill the disk.
	LogMaxBytes int64
	// CertsDir is where this host's nginx reads the apps' TLS certificates
	// (<domain>.pem), written from the state (tls.go).
	CertsDir string
	// Cgroups are this process's: build commands run in each app's build
	// group. AppCgroups are circusd's, below which run-process puts app
	// processes (cgroups.go). Nil or disabled: process groups and
	// sessions stand in, and no limit is enforced.
	Cgroups, AppCgroups *cgroup.Manager
	// Instance is the data dir's id (<data>/instance-id): two Conductors
	// on one host keep their groups apart by it.
	Instance string
	// Jobs is how many jobs run at once on this host (--jobs; 0: 4). A
	// job takes a slot only when it may run: one waiting for its app's
	// turn holds none, so one app's queue cannot stall the others'.
	Jobs int
	// CronChanged is told the app whose current release changed, so the
	// host's scheduler takes its cron entries at once (nil: none).
	CronChanged func(app string)
	// Observe is told queue waits, step durations and outcomes (package
	// metrics; nil: none).
	Observe Observer

	mu    sync.Mutex
	apps  map[string]*appJobs
	sites siteLocks     // one writer of an app's nginx site at a time (maintenance.go)
	slots chan struct{} // holds a token per running job (Jobs of them)
}

// appJobs serializes one app's jobs on this host and tracks them so a
// second pusher learns what it waits behind and deploys:cancel can stop them.
type appJobs struct {
	turn    chan struct{}                 // holds one token: the right to run
	running *queue.Job                    // guarded by Builder.mu
	cancels map[string]context.CancelFunc // queued and running jobs, by id
}

// Handle runs one job; it is the queue's handler. Its error is also
// reported to the job's log and recorded on the deploy.
func (b *Builder) Handle(ctx context.Context, job *queue.Job) error {
	log := b.Queue.Logs(job.ID)
	defer b.Queue.DeleteArchive(context.WithoutCancel(ctx), job.ID)
	app, err := b.Store.FindApp(ctx, job.App)
	if err != nil {
		return b.end(ctx, log, job, nil, err)
	}
	d := &deployment{b: b, job: job, app: app, log: log}
	if err := b.Store.CreateDeploy(ctx, &conductor.Deploy{
		ID: job.ID, AppID: app.ID, Rev: job.Rev, Ref: job.Ref, Pusher: job.Pusher, Status: conductor.DeployQueued,
	}); err != nil {
		return b.end(ctx, log, job, app, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if b.Observe != nil {
		b.Observe.Queued()
	}
	unlock, err := b.waitTurn(ctx, job, cancel, log)
	if err != nil {
		b.unqueued()
		return b.end(ctx, log, job, app, err)
	}
	defer unlock()
	release, err := b.waitSlot(ctx, log)
	if err != nil {
		b.unqueued()
		return b.end(ctx, log, job, app, err)
	}
	defer release()
	started := time.Now()
	if b.Observe != nil {
		b.Observe.Started(started.Sub(job.CreatedAt))
	}
	_ = b.Store.FinishDeploy(ctx, job.ID, conductor.DeployRunning, "")
	err = d.run(ctx)
	if cause := context.Cause(ctx); err != nil && errors.Is(cause, errCanceled) {
		err = cause
	}
	if b.Observe != nil {
		b.Observe.DeployDone(job.Kind, outcome(err), time.Since(started))
	}
	return b.end(ctx, log, job, app, err)
}

// unqueued tells the Observer a job ended while waiting to run.
func (b *Builder) unqueued() {
	if b.Observe != nil {
		b.Observe.Unqueued()
	}
}

// errCanceled ends a job stopped by deploys:cancel.
var errCanceled = conductor.Errorf(conductor.EINVALID, "canceled with deploys:cancel")

// waitTurn blocks until no other job of the app runs on this host, telling
// the pusher what it waits behind. The returned func ends the turn.
func (b *Builder) waitTurn(ctx context.Context, job *queue.Job, cancel context.CancelCauseFunc, log *queue.LogWriter) (func(), error) {
	b.mu.Lock()
	if b.apps == nil {
		b.apps = map[string]*appJobs{}
	}
	a, ok := b.apps[job.App]
	if !ok {
		a = &appJobs{turn: make(chan struct{}, 1), cancels: map[string]context.CancelFunc{}}
		b.apps[job.App] = a
	}
	a.cancels[job.ID] = func() { cancel(errCanceled) }
	ahead := a.running
	b.mu.Unlock()
	done := func() {
		b.mu.Lock()
		delete(a.cancels, job.ID)
		b.mu.Unlock()
	}
	select {
	case a.turn <- struct{}{}:
	default:
		if ahead != nil {
			log.Printf("-----> Waiting for deploy %s of %s (pushed by %s) to finish", ahead.ID, job.App, ahead.Pusher)
		} else {
			log.Printf("-----> Waiting for the deploy in progress of %s to finish", job.App)
		}
		select {
		case a.turn <- struct{}{}:
		case <-ctx.Done():
			done()
			return nil, context.Cause(ctx)
		}
	}
	b.mu.Lock()
	a.running = job
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		a.running = nil
		b.mu.Unlock()
		done()
		<-a.turn
	}, nil
}

// waitSlot blocks until fewer than Jobs jobs run on this host, telling the
// pusher when it has to wait; the returned func frees the slot. Jobs of
// other apps that wait for a slot get one in the order they asked (a Go
// channel's blocked senders are woken first in, first out).
func (b *Builder) waitSlot(ctx context.Context, log *queue.LogWriter) (func(), error) {
	b.mu.Lock()
	if b.slots == nil {
		n := b.Jobs
		if n < 1 {
			n = 4
		}
		b.slots = make(chan struct{}, n)
	}
	slots := b.slots
	b.mu.Unlock()
	release := func() { <-slots }
	select {
	case slots <- struct{}{}:
		return release, nil
	default:
	}
	log.Printf("-----> Waiting for a free build slot (%d deploys of other apps running on this host)", cap(slots))
	select {
	case slots <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Cancel stops every queued and running job of an app on this host. A
// running job stops at its current step and cleans up like any failure:
// the serving release stays.
func (b *Builder) Cancel(app string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.apps[app]
	if !ok {
		return 0
	}
	for _, cancel := range a.cancels {
		cancel()
	}
	return len(a.cancels)
}

// end records and reports a job's outcome.
func (b *Builder) end(ctx context.Context, log *queue.LogWriter, job *queue.Job, app *conductor.App, err error) error {
	ctx = context.WithoutCancel(ctx)
	status, msg := conductor.DeploySucceeded, ""
	if err != nil {
		status, msg = conductor.DeployFailed, conductor.ErrorMessage(err)
		if conductor.ErrorCode(err) == conductor.EINTERNAL {
			msg = err.Error() // the pusher owns this deploy: show the cause
		}
		slog.Error("deploy failed", "app", job.App, "deploy", job.ID, "err", err)
	} else {
		slog.Info("deploy succeeded", "app", job.App, "deploy", job.ID, "rev", job.Rev)
	}
	if app != nil {
		if dbErr := b.Store.FinishDeploy(ctx, job.ID, status, msg); dbErr != nil {
			slog.Error("record deploy", "deploy", job.ID, "err", dbErr)
		}
	}
	if endErr := log.End(ctx, err == nil, msg); endErr != nil {
		slog.Error("end job log", "deploy", job.ID, "err", endErr)
	}
	return err
}

// failf is a deploy failure the pusher can act on.
func failf(format string, args ...any) error {
	return conductor.Errorf(conductor.EINVALID, format, args...)
}
