package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hasadna/conductor"
)

// Cancel requests go to cancel.<host>.<app> as core NATS requests: the
// builder that runs the app's jobs answers with how many it stopped.
func cancelSubject(host, app string) string { return "cancel." + host + "." + app }

// Cancel asks the builder of host to stop app's queued and running jobs
// and returns how many it stopped.
func (q *Queue) Cancel(ctx context.Context, host, app string) (int, error) {
	ctx, done := context.WithTimeout(ctx, 10*time.Second)
	defer done()
	msg, err := q.nc.RequestWithContext(ctx, cancelSubject(host, app), nil)
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) {
		return 0, conductor.Errorf(conductor.EUNAVAILABLE, "the builder of host %q does not answer: is it running?", host)
	} else if err != nil {
		return 0, fmt.Errorf("cancel jobs of %s on %s: %w", app, host, err)
	}
	var n int
	if err := json.Unmarshal(msg.Data, &n); err != nil {
		return 0, fmt.Errorf("cancel jobs of %s: bad answer %q", app, msg.Data)
	}
	return n, nil
}

// ServeCancel answers cancel requests for host's apps with cancel(app)
// until ctx is done.
func (q *Queue) ServeCancel(ctx context.Context, host string, cancel func(app string) int) error {
	sub, err := q.nc.Subscribe(cancelSubject(host, "*"), func(m *nats.Msg) {
		app := m.Subject[len(cancelSubject(host, "")):]
		data, _ := json.Marshal(cancel(app))
		_ = m.Respond(data)
	})
	if err != nil {
		return fmt.Errorf("serve cancel requests: %w", err)
	}
	go func() {
		<-ctx.Done()
		_ = sub.Unsubscribe()
	}()
	return nil
}
