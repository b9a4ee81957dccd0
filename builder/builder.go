// Package builder runs deploy jobs: it takes a job from the queue and walks
// the deploy pipeline (pipeline.go), streaming every step's output to the
// job's log, which the pusher sees as "remote:" lines.
package builder

import (
	"context"
	"log/slog"
	"sync"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/nginx"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/queue"
)

// Builder deploys apps on this host.
type Builder struct {
	Store     conductor.Store
	Queue     *queue.Queue
	Layout    provision.Layout
	Circus    *circus.Circus
	Nginx     *nginx.Nginx
	Domain    string // apps are served at <app>.<Domain>
	HTTPAddr  string // the front nginx, to confirm a switch took effect
	Python    string // interpreter virtualenvs are made with
	Conductor string // this binary, run by circus as `conductor run-process`
	Keep      int    // releases kept for rollback

	mu    sync.Mutex
	locks map[string]*sync.Mutex
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
	unlock := b.lock(job.App, log)
	defer unlock()
	_ = b.Store.FinishDeploy(ctx, job.ID, conductor.DeployRunning, "")
	return b.end(ctx, log, job, app, d.run(ctx))
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

// lock serializes the deploys of one app; a second push waits and says so.
func (b *Builder) lock(app string, log *queue.LogWriter) func() {
	b.mu.Lock()
	if b.locks == nil {
		b.locks = map[string]*sync.Mutex{}
	}
	m, ok := b.locks[app]
	if !ok {
		m = &sync.Mutex{}
		b.locks[app] = m
	}
	b.mu.Unlock()
	if !m.TryLock() {
		log.Printf("-----> Waiting for the deploy in progress of %s to finish", app)
		m.Lock()
	}
	return m.Unlock
}

// failf is a deploy failure the pusher can act on.
func failf(format string, args ...any) error {
	return conductor.Errorf(conductor.EINVALID, format, args...)
}
