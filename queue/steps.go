package queue

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StepTime is a build step's header line in a job's log ("-----> Installing
// dependencies") and when the log stream stored it.
type StepTime struct {
	Header string
	At     time.Time
}

// stepPrefix starts the header line each pipeline step logs.
const stepPrefix = "-----> "

// Steps reads a finished job's log and returns its step headers with the
// times the stream stored them, and when the job ended: how long each step
// took, from the log alone (the dashboard's deploy chart). A job that has
// not ended makes it wait for the end, so callers pass finished jobs and a
// deadline.
func (q *Queue) Steps(ctx context.Context, jobID string) ([]StepTime, time.Time, error) {
	cons, err := q.js.OrderedConsumer(ctx, logsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{logSubject(jobID)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("steps of job %s: %w", jobID, err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("steps of job %s: %w", jobID, err)
	}
	defer msgs.Stop()
	stop := context.AfterFunc(ctx, msgs.Stop)
	defer stop()
	var steps []StepTime
	for {
		msg, err := msgs.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil, time.Time{}, ctx.Err()
			}
			return nil, time.Time{}, fmt.Errorf("steps of job %s: %w", jobID, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("steps of job %s: %w", jobID, err)
		}
		if msg.Headers().Get(endHeader) != "" {
			return steps, meta.Timestamp, nil
		}
		if line := string(msg.Data()); strings.HasPrefix(line, stepPrefix) {
			steps = append(steps, StepTime{Header: strings.TrimPrefix(line, stepPrefix), At: meta.Timestamp})
		}
	}
}
