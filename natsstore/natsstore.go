// Package natsstore serves the conductor's state to builder workers on
// other hosts, over NATS request/reply. The conductor answers "state.<Method>"
// requests from its SQLite store (Serve); a worker uses Client, which
// implements builder.Store and conductor.DatabaseStore, so the builder runs
// the same code on every host. Only workers hold the NATS credentials.
package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/queue"
)

const subjectPrefix = "state."

// Backend is what the conductor serves: its SQLite store.
type Backend interface {
	conductor.BuilderStore
	conductor.DatabaseStore
}

// handler decodes a method's arguments (a JSON array), calls the store and
// returns what the client gets back.
type handler func(ctx context.Context, args []json.RawMessage) (any, error)

func methods(s Backend) map[string]handler {
	return map[string]handler{
		"FindApp":               call1(s.FindApp),
		"ListApps":              call0(s.ListApps),
		"Config":                call1(s.Config),
		"ReplaceConfig":         exec2(s.ReplaceConfig),
		"Domains":               call1(s.Domains),
		"ProcessScale":          call1(s.ProcessScale),
		"ProcessLimits":         call1(s.ProcessLimits),
		"AppRedis":              call1(s.AppRedis),
		"Maintenance":           call1(s.Maintenance),
		"SetMaintenance":        update(s.SetMaintenance),
		"ClearMaintenance":      clearMaintenance(s), // maintenance.go
		"AppSettings":           call1(s.AppSettings),
		"CreateDeploy":          update(s.CreateDeploy),
		"FinishDeploy":          exec3(s.FinishDeploy),
		"FailUnfinishedDeploys": call2(s.FailUnfinishedDeploys),
		"AddRelease":            update(s.AddRelease),
		"CurrentRelease":        call1(s.CurrentRelease),
		"ListReleases":          call1(s.ListReleases),
		"FindRelease":           call2(s.FindRelease),
		"EnsureAppDatabase":     call1(s.EnsureAppDatabase),
		"FindAppDatabase":       call2(s.FindAppDatabase),
		"AppDatabases":          call1(s.AppDatabases),
		"DeleteAppDatabase":     exec2(s.DeleteAppDatabase),
		"SetAppDBKind":          exec2(s.SetAppDBKind),
		"Certificates":          call1(s.Certificates),
		"ConfigFiles":           call1(s.ConfigFiles),
		"ConfigFileContent":     call2(s.ConfigFileContent),
		"PlacedConfigFiles":     call2(s.PlacedConfigFiles),
		"SetPlacedConfigFiles":  exec3(s.SetPlacedConfigFiles),
		"MoveAppPort":           moveAppPort(s), // ports.go
		// cron.go
		"CronEntries":            call1(s.CronEntries),
		"AddCronRun":             update(s.AddCronRun),
		"FinishCronRun":          update(s.FinishCronRun),
		"FailUnfinishedCronRuns": call2(s.FailUnfinishedCronRuns),
	}
}

// Serve answers state requests until ctx ends. Several conductors may not
// serve one cluster: there is one state.
func Serve(ctx context.Context, nc *nats.Conn, s Backend) error {
	hs := methods(s)
	sub, err := nc.QueueSubscribe(subjectPrefix+"*", "conductor-state", func(m *nats.Msg) {
		method := m.Subject[len(subjectPrefix):]
		var res any
		var err error
		h, ok := hs[method]
		var args []json.RawMessage
		switch {
		case !ok:
			err = conductor.Errorf(conductor.EINVALID, "unknown state method %s", method)
		case json.Unmarshal(m.Data, &args) != nil:
			err = conductor.Errorf(conductor.EINVALID, "malformed arguments to %s", method)
		default:
			res, err = h(ctx, args)
		}
		data := queue.EncodeReply(res, err)
		if err := m.Respond(data); err != nil {
			slog.Warn("answer state request", "method", method, "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("serve state requests: %w", err)
	}
	go func() {
		<-ctx.Done()
		_ = sub.Unsubscribe()
	}()
	return nil
}

func arg[T any](args []json.RawMessage, i int) (T, error) {
	var v T
	if i >= len(args) {
		return v, conductor.Errorf(conductor.EINVALID, "missing argument %d", i+1)
	}
	if err := json.Unmarshal(args[i], &v); err != nil {
		return v, conductor.Errorf(conductor.EINVALID, "argument %d: %v", i+1, err)
	}
	return v, nil
}

func call0[R any](f func(context.Context) (R, error)) handler {
	return func(ctx context.Context, _ []json.RawMessage) (any, error) { return f(ctx) }
}

func call1[A, R any](f func(context.Context, A) (R, error)) handler {
	return func(ctx context.Context, args []json.RawMessage) (any, error) {
		a, err := arg[A](args, 0)
		if err != nil {
			return nil, err
		}
		return f(ctx, a)
	}
}

func call2[A, B, R any](f func(context.Context, A, B) (R, error)) handler {
	return func(ctx context.Context, args []json.RawMessage) (any, error) {
		a, err := arg[A](args, 0)
		if err != nil {
			return nil, err
		}
		b, err := arg[B](args, 1)
		if err != nil {
			return nil, err
		}
		return f(ctx, a, b)
	}
}

func exec2[A, B any](f func(context.Context, A, B) error) handler {
	return func(ctx context.Context, args []json.RawMessage) (any, error) {
		a, err := arg[A](args, 0)
		if err != nil {
			return nil, err
		}
		b, err := arg[B](args, 1)
		if err != nil {
			return nil, err
		}
		return nil, f(ctx, a, b)
	}
}

func exec3[A, B, C any](f func(context.Context, A, B, C) error) handler {
	return func(ctx context.Context, args []json.RawMessage) (any, error) {
		a, err := arg[A](args, 0)
		if err != nil {
			return nil, err
		}
		b, err := arg[B](args, 1)
		if err != nil {
			return nil, err
		}
		c, err := arg[C](args, 2)
		if err != nil {
			return nil, err
		}
		return nil, f(ctx, a, b, c)
	}
}

// update calls a method that fills in its argument (a release's number)
// and sends the argument back.
func update[T any](f func(context.Context, *T) error) handler {
	return func(ctx context.Context, args []json.RawMessage) (any, error) {
		v, err := arg[*T](args, 0)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return nil, conductor.Errorf(conductor.EINVALID, "argument 1 is null")
		}
		return v, f(ctx, v)
	}
}

// Client is the conductor's state as a worker sees it.
type Client struct {
	NC *nats.Conn
	// Timeout of one request; a conductor that is restarting is waited for
	// (the request is retried) until the caller's context ends.
	Timeout time.Duration
}

// do calls method with args and decodes its result into out (if not nil).
func (c *Client) do(ctx context.Context, method string, out any, args ...any) error {
	if args == nil {
		args = []any{}
	}
	data, err := json.Marshal(args)
	if err != nil {
		return err
	}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var msg *nats.Msg
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		msg, err = c.NC.RequestWithContext(rctx, subjectPrefix+method, data)
		cancel()
		if err == nil {
			break
		}
		// No conductor answering (restarting) or the link is down:
		// wait for it rather than fail a deploy that is half done.
		retry := errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrConnectionReconnecting)
		if !retry || ctx.Err() != nil {
			return fmt.Errorf("state request %s: %w", method, err)
		}
		if attempt%10 == 0 {
			slog.Warn("the conductor does not answer; retrying", "method", method, "err", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("state request %s: %w", method, ctx.Err())
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 2*time.Second)):
		}
	}
	if err := queue.DecodeReply(msg.Data, out); err != nil {
		return fmt.Errorf("state request %s: %w", method, err)
	}
	return nil
}

func (c *Client) FindApp(ctx context.Context, name string) (*conductor.App, error) {
	var r *conductor.App
	return r, c.do(ctx, "FindApp", &r, name)
}

func (c *Client) ListApps(ctx context.Context) ([]*conductor.App, error) {
	var r []*conductor.App
	return r, c.do(ctx, "ListApps", &r)
}

func (c *Client) Config(ctx context.Context, appID int64) (map[string]string, error) {
	var r map[string]string
	return r, c.do(ctx, "Config", &r, appID)
}

func (c *Client) ReplaceConfig(ctx context.Context, appID int64, vars map[string]string) error {
	return c.do(ctx, "ReplaceConfig", nil, appID, vars)
}

func (c *Client) Domains(ctx context.Context, appID int64) ([]string, error) {
	var r []string
	return r, c.do(ctx, "Domains", &r, appID)
}

func (c *Client) ProcessScale(ctx context.Context, appID int64) (map[string]int, error) {
	var r map[string]int
	return r, c.do(ctx, "ProcessScale", &r, appID)
}

func (c *Client) ProcessLimits(ctx context.Context, appID int64) (map[string]conductor.ProcessLimits, error) {
	var r map[string]conductor.ProcessLimits
	return r, c.do(ctx, "ProcessLimits", &r, appID)
}

func (c *Client) AppSettings(ctx context.Context, appID int64) (map[string]string, error) {
	var r map[string]string
	return r, c.do(ctx, "AppSettings", &r, appID)
}

func (c *Client) CreateDeploy(ctx context.Context, d *conductor.Deploy) error {
	return c.do(ctx, "CreateDeploy", d, d)
}

func (c *Client) FinishDeploy(ctx context.Context, id, status, errMsg string) error {
	return c.do(ctx, "FinishDeploy", nil, id, status, errMsg)
}

func (c *Client) FailUnfinishedDeploys(ctx context.Context, host, msg string) ([]string, error) {
	var r []string
	return r, c.do(ctx, "FailUnfinishedDeploys", &r, host, msg)
}

func (c *Client) AddRelease(ctx context.Context, r *conductor.Release) error {
	return c.do(ctx, "AddRelease", r, r)
}

func (c *Client) CurrentRelease(ctx context.Context, appID int64) (*conductor.Release, error) {
	var r *conductor.Release
	return r, c.do(ctx, "CurrentRelease", &r, appID)
}

func (c *Client) ListReleases(ctx context.Context, appID int64) ([]*conductor.Release, error) {
	var r []*conductor.Release
	return r, c.do(ctx, "ListReleases", &r, appID)
}

func (c *Client) FindRelease(ctx context.Context, appID int64, ref string) (*conductor.Release, error) {
	var r *conductor.Release
	return r, c.do(ctx, "FindRelease", &r, appID, ref)
}

func (c *Client) EnsureAppDatabase(ctx context.Context, db *conductor.AppDatabase) (*conductor.AppDatabase, error) {
	var r *conductor.AppDatabase
	return r, c.do(ctx, "EnsureAppDatabase", &r, db)
}

func (c *Client) FindAppDatabase(ctx context.Context, appID int64, alias string) (*conductor.AppDatabase, error) {
	var r *conductor.AppDatabase
	return r, c.do(ctx, "FindAppDatabase", &r, appID, alias)
}

func (c *Client) AppDatabases(ctx context.Context, appID int64) ([]*conductor.AppDatabase, error) {
	var r []*conductor.AppDatabase
	return r, c.do(ctx, "AppDatabases", &r, appID)
}

func (c *Client) DeleteAppDatabase(ctx context.Context, appID int64, alias string) error {
	return c.do(ctx, "DeleteAppDatabase", nil, appID, alias)
}

func (c *Client) SetAppDBKind(ctx context.Context, appID int64, kind string) error {
	return c.do(ctx, "SetAppDBKind", nil, appID, kind)
}

func (c *Client) Certificates(ctx context.Context, appID int64) ([]*conductor.Certificate, error) {
	var r []*conductor.Certificate
	return r, c.do(ctx, "Certificates", &r, appID)
}

func (c *Client) ConfigFiles(ctx context.Context, appID int64) ([]*conductor.ConfigFile, error) {
	var r []*conductor.ConfigFile
	return r, c.do(ctx, "ConfigFiles", &r, appID)
}

// ConfigFileContent is one reply per file: its size is bounded
// (conductor.MaxConfigFileSize) so the base64 in JSON fits NATS's payload.
func (c *Client) ConfigFileContent(ctx context.Context, appID int64, path string) ([]byte, error) {
	var r []byte
	return r, c.do(ctx, "ConfigFileContent", &r, appID, path)
}

func (c *Client) PlacedConfigFiles(ctx context.Context, appID int64, dir string) ([]string, error) {
	var r []string
	return r, c.do(ctx, "PlacedConfigFiles", &r, appID, dir)
}

func (c *Client) SetPlacedConfigFiles(ctx context.Context, appID int64, dir string, paths []string) error {
	return c.do(ctx, "SetPlacedConfigFiles", nil, appID, dir, paths)
}
