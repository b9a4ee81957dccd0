package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// LogWriter publishes a job's output, one message per line, to its log
// subject. Lines are published without waiting for acks (in order on one
// connection); End publishes the final marker with an ack, so once End
// returns every earlier line is stored.
type LogWriter struct {
	q     *Queue
	jobID string
	mu    sync.Mutex
	buf   []byte
}

// Logs returns the writer for a job's log.
func (q *Queue) Logs(jobID string) *LogWriter { return &LogWriter{q: q, jobID: jobID} }

// Write splits p into lines and publishes each complete one.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := strings.IndexAny(string(w.buf), "\n\r")
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if err := w.publish(line); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Printf publishes one formatted line.
func (w *LogWriter) Printf(format string, args ...any) {
	_, _ = w.Write([]byte(fmt.Sprintf(format, args...) + "\n"))
}

func (w *LogWriter) publish(line string) error {
	return w.q.nc.Publish(logSubject(w.jobID), []byte(line))
}

// End flushes a partial line and publishes the job's outcome.
func (w *LogWriter) End(ctx context.Context, ok bool, message string) error {
	status := "failed"
	if ok {
		status = "ok"
	}
	return w.mark(ctx, endHeader, status, "end", message)
}

// Live publishes, in the middle of a job's log, that it has succeeded: a
// deploy past its commit point, which goes on with housekeeping (retiring
// the previous release) whose failures are only warnings. FollowLive
// returns there, so a push ends once its release is live; Follow reads on
// to End.
func (w *LogWriter) Live(ctx context.Context) error {
	return w.mark(ctx, liveHeader, "ok", "live", "")
}

// mark flushes a partial line and publishes a marker message with an ack,
// so once it returns every earlier line is stored.
func (w *LogWriter) mark(ctx context.Context, header, value, what, message string) error {
	w.mu.Lock()
	if len(w.buf) > 0 {
		_ = w.publish(string(w.buf))
		w.buf = nil
	}
	w.mu.Unlock()
	msg := nats.NewMsg(logSubject(w.jobID))
	msg.Header.Set(header, value)
	msg.Data = []byte(message)
	// The message id makes a retry during a leader election land once.
	msg.Header.Set(nats.MsgIdHdr, what+"-"+w.jobID)
	if err := RetryTransient(ctx, what+" of "+w.jobID, func() error {
		_, err := w.q.js.PublishMsg(ctx, msg)
		return err
	}); err != nil {
		return fmt.Errorf("publish %s of job %s: %w", what, w.jobID, err)
	}
	return nil
}

// Result is how a job ended.
type Result struct {
	OK      bool
	Message string
}

// Follow calls line for each log line of a job, from its first, until the job
// ends or ctx is done. It works the same for a job that is queued, running or
// long finished, because the log is a stream.
func (q *Queue) Follow(ctx context.Context, jobID string, line func(string)) (*Result, error) {
	return q.follow(ctx, jobID, line, false)
}

// FollowLive is Follow for whoever waits on a job's outcome (a pusher): it
// returns as soon as the outcome is known, which for a deploy is once its
// release is live (LogWriter.Live), before the housekeeping after it.
func (q *Queue) FollowLive(ctx context.Context, jobID string, line func(string)) (*Result, error) {
	return q.follow(ctx, jobID, line, true)
}

func (q *Queue) follow(ctx context.Context, jobID string, line func(string), live bool) (*Result, error) {
	var cons jetstream.Consumer
	err := RetryTransient(ctx, "follow "+jobID, func() (err error) {
		cons, err = q.js.OrderedConsumer(ctx, logsStream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{logSubject(jobID)},
			DeliverPolicy:  jetstream.DeliverAllPolicy,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("follow job %s: %w", jobID, err)
	}
	msgs, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("follow job %s: %w", jobID, err)
	}
	defer msgs.Stop()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-q.closed:
		case <-done:
		}
		msgs.Stop()
	}()
	for {
		msg, err := msgs.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			select {
			case <-q.closed:
				return nil, fmt.Errorf("follow job %s: lost the connection to conductor's NATS server", jobID)
			default:
			}
			return nil, fmt.Errorf("follow job %s: %w", jobID, err)
		}
		if status := msg.Headers().Get(endHeader); status != "" {
			return &Result{OK: status == "ok", Message: string(msg.Data())}, nil
		}
		if msg.Headers().Get(liveHeader) != "" {
			if live {
				return &Result{OK: true}, nil
			}
			continue
		}
		line(string(msg.Data()))
	}
}

// HasLog reports whether the log stream still holds a job's log.
func (q *Queue) HasLog(ctx context.Context, jobID string) (bool, error) {
	stream, err := q.js.Stream(ctx, logsStream)
	if err != nil {
		return false, fmt.Errorf("logs stream: %w", err)
	}
	_, err = stream.GetLastMsgForSubject(ctx, logSubject(jobID))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("look up log of %s: %w", jobID, err)
	}
	return true, nil
}
