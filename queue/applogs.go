package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hasadna/conductor"
)

// Runtime logs live in files on the app's host, so `logs` asks that host's
// worker for them over NATS: a request on applogs.<host>.<app> names an
// inbox; the worker sends a hello, then batches of lines to the inbox, then
// an end message. The asker heartbeats on <inbox>.hb and says <inbox>.stop
// when its client leaves; a worker that hears neither for a while stops
// following, so no subscription outlives a vanished asker.

// AppLogsRequest asks a host for an app's runtime logs.
type AppLogsRequest struct {
	App     string `json:"app"`
	Process string `json:"process,omitempty"` // one process type, or all
	Lines   int    `json:"lines"`             // recent lines to send first
	Follow  bool   `json:"follow,omitempty"`  // then keep sending new ones
}

const (
	helloHeader     = "Conductor-Hello"
	logsHeartbeat   = 5 * time.Second
	logsAbandonedIn = 3 * logsHeartbeat
)

func appLogsSubject(host, app string) string { return "applogs." + host + "." + app }

// AppLogsHandler sends an app's log lines with send until it is done or ctx
// ends (the asker left).
type AppLogsHandler func(ctx context.Context, req AppLogsRequest, send func(lines []string) error) error

// ServeAppLogs answers this host's log requests until ctx is done.
func (q *Queue) ServeAppLogs(ctx context.Context, host string, handle AppLogsHandler) error {
	sub, err := q.nc.Subscribe(appLogsSubject(host, "*"), func(m *nats.Msg) {
		var req AppLogsRequest
		if err := json.Unmarshal(m.Data, &req); err != nil || m.Reply == "" {
			slog.Warn("bad logs request", "subject", m.Subject, "err", err)
			return
		}
		req.App = m.Subject[len(appLogsSubject(host, "")):]
		go q.serveAppLogs(ctx, m.Reply, req, handle)
	})
	if err != nil {
		return fmt.Errorf("serve log requests: %w", err)
	}
	go func() {
		<-ctx.Done()
		_ = sub.Unsubscribe()
	}()
	return nil
}

func (q *Queue) serveAppLogs(ctx context.Context, inbox string, req AppLogsRequest, handle AppLogsHandler) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	alive := make(chan struct{}, 1)
	hb, err := q.nc.Subscribe(inbox+".hb", func(*nats.Msg) {
		select {
		case alive <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return
	}
	defer hb.Unsubscribe()
	stop, err := q.nc.Subscribe(inbox+".stop", func(*nats.Msg) { cancel() })
	if err != nil {
		return
	}
	defer stop.Unsubscribe()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-alive:
			case <-time.After(logsAbandonedIn):
				cancel()
				return
			}
		}
	}()
	hello := nats.NewMsg(inbox)
	hello.Header.Set(helloHeader, "1")
	if err := q.nc.PublishMsg(hello); err != nil {
		return
	}
	send := func(lines []string) error {
		data, err := json.Marshal(lines)
		if err != nil {
			return err
		}
		return q.nc.Publish(inbox, data)
	}
	err = handle(ctx, req, send)
	end := nats.NewMsg(inbox)
	end.Header.Set(endHeader, "ok")
	if err != nil {
		end.Header.Set(endHeader, "failed")
		end.Data = []byte(err.Error())
	}
	_ = q.nc.PublishMsg(end)
}

// AppLogs asks host for an app's runtime logs and calls line for each line
// until the host is done (or, when following, until ctx ends). It fails
// clearly when no worker of that host answers.
func (q *Queue) AppLogs(ctx context.Context, host string, req AppLogsRequest, line func(string) error) error {
	inbox := q.nc.NewRespInbox()
	msgs := make(chan *nats.Msg, 1024)
	sub, err := q.nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", req.App, err)
	}
	defer sub.Unsubscribe()
	_ = sub.SetPendingLimits(-1, 256<<20)
	defer func() { _ = q.nc.Publish(inbox+".stop", nil) }()
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := q.nc.PublishRequest(appLogsSubject(host, req.App), inbox, data); err != nil {
		return fmt.Errorf("ask %s for logs of %s: %w", host, req.App, err)
	}
	beat := time.NewTicker(logsHeartbeat)
	defer beat.Stop()
	hello := time.NewTimer(10 * time.Second)
	defer hello.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hello.C:
			return conductor.Errorf(conductor.EUNAVAILABLE, "the worker of host %q does not answer: is it running?", host)
		case <-beat.C:
			_ = q.nc.Publish(inbox+".hb", nil)
		case m := <-msgs:
			// The server's "no responders" status: nobody serves that host.
			if m.Header.Get("Status") == "503" {
				return conductor.Errorf(conductor.EUNAVAILABLE, "the worker of host %q does not answer: is it running?", host)
			}
			if m.Header.Get(helloHeader) != "" {
				hello.Stop()
				continue
			}
			if status := m.Header.Get(endHeader); status != "" {
				if status != "ok" {
					// The worker refused the request (a bad name): its
					// message is for the user.
					return conductor.Errorf(conductor.EINVALID, "%s", m.Data)
				}
				return nil
			}
			var lines []string
			if err := json.Unmarshal(m.Data, &lines); err != nil {
				return fmt.Errorf("logs of %s: %w", req.App, err)
			}
			for _, l := range lines {
				if err := line(l); err != nil {
					return nil // the client went away
				}
			}
		}
	}
}
