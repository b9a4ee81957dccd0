package queue

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// transientWait bounds how long a JetStream call is retried while the
// cluster recovers (a node died and its streams elect new leaders, which
// takes a few seconds).
const transientWait = 30 * time.Second

// RetryTransient runs f until it succeeds, fails for good, or the cluster
// has had transientWait to recover. Only idempotent calls go through it.
func RetryTransient(ctx context.Context, what string, f func() error) error {
	deadline := time.Now().Add(transientWait)
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !isTransient(ctx, err) || time.Now().After(deadline) {
			return err
		}
		slog.Debug("JetStream call failed; retrying", "what", what, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(min(time.Duration(attempt)*250*time.Millisecond, 2*time.Second)):
		}
	}
}

// isTransient tells a cluster in transition (timeouts, no leader, nobody
// answering yet) from a real refusal. A timeout of the caller's own ctx is
// not transient.
func isTransient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrConnectionReconnecting)
}
