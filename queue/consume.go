package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Handler runs one job. Its error is already reported in the job's log; the
// queue only uses it to decide the message's fate.
type Handler func(ctx context.Context, job *Job) error

const ackWait = 60 * time.Second

// MaxWaiting bounds the jobs a host takes from the stream beyond those it
// runs: they wait in the builder (for their app's turn or a free slot),
// kept ours by InProgress heartbeats; more stay in the stream.
const MaxWaiting = 256

// Consume takes this host's jobs until ctx is done: up to parallel
// running plus MaxWaiting waiting, each handled at once in a goroutine of
// its own. The handler bounds how many run (builder.Builder.Jobs) and
// serializes jobs of one app, so a job waiting behind its app's deploy
// never keeps another app's job from the stream. Jobs are acked when
// handled, successful or not: a deploy is never retried behind the pusher's
// back. A redelivered job (its worker died mid-way) is ended as failed,
// because its push has already been answered.
func (q *Queue) Consume(ctx context.Context, host string, parallel int, handle Handler) error {
	var cons jetstream.Consumer
	err := RetryTransient(ctx, "consumer for "+host, func() (err error) {
		cons, err = q.js.CreateOrUpdateConsumer(ctx, jobsStream, jetstream.ConsumerConfig{
			Durable:       "builder-" + host,
			FilterSubject: jobSubject(host, "*"),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       ackWait,
			MaxDeliver:    3,
			MaxAckPending: parallel + MaxWaiting,
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("create consumer for host %s: %w", host, err)
	}
	var running sync.WaitGroup
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		// Never blocks: a job handed over here starts its heartbeat at once,
		// so one waiting in the builder is not redelivered (MaxAckPending
		// bounds the goroutines).
		running.Add(1)
		go func() {
			defer running.Done()
			q.handle(ctx, msg, handle)
		}()
	}, jetstream.PullMaxMessages(parallel))
	if err != nil {
		return fmt.Errorf("consume jobs for host %s: %w", host, err)
	}
	<-ctx.Done()
	cc.Drain()
	// Jobs in flight see ctx cancelled and end (reporting failure to their
	// pushers); wait for them so nothing outlives the queue connection.
	running.Wait()
	return nil
}

func (q *Queue) handle(ctx context.Context, msg jetstream.Msg, handle Handler) {
	var job Job
	if err := json.Unmarshal(msg.Data(), &job); err != nil {
		slog.Error("bad job message", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
		slog.Warn("dropping redelivered job", "job", job.ID, "app", job.App)
		_ = q.Logs(job.ID).End(ctx, false, "the builder stopped during this deploy; push again")
		_ = msg.Term()
		return
	}
	// Keep the message ours while the job runs: builds outlast AckWait.
	beat, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		for {
			select {
			case <-beat.Done():
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	if err := q.runHandler(ctx, &job, handle); err != nil {
		slog.Info("job failed", "job", job.ID, "app", job.App, "err", err)
	}
	if err := msg.Ack(); err != nil {
		slog.Warn("ack job", "job", job.ID, "err", err)
	}
}

// runHandler runs one job, turning a panic into a failed job (and a stack in
// the server log) instead of a crash of every other job and the server.
func (q *Queue) runHandler(ctx context.Context, job *Job, handle Handler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("panic in job", "job", job.ID, "app", job.App, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
			_ = q.Logs(job.ID).End(context.WithoutCancel(ctx), false, "internal error in the builder (see the server log)")
		}
	}()
	return handle(ctx, job)
}
