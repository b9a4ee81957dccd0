// Package agent does, on an app's own host, what SSH commands ask of that
// host: ps, ps:scale, run, the host's part of apps:destroy, and its part of
// TLS (ACME challenges, certificate files). Every host's
// builder serves it over NATS on agent.<host>.<op> (conductor serve for its
// own host, conductor worker on the others), and the SSH server asks the
// app's host through Client, so a command works the same wherever the app
// runs.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/cgroup"
	"github.com/hasadna/conductor/offsite"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/queue"
)

// Processes is what the agent needs from the host's process manager
// (circus.Circus).
type Processes interface {
	Watchers() ([]string, error)
	Status(ctx context.Context) (map[string]string, error)
	Pids(ctx context.Context, name string) ([]int, error)
	Scale(ctx context.Context, name string, n int) error
	Remove(ctx context.Context, name string) error
}

// Sites is what apps:destroy needs from the host's web server (nginx.Nginx).
type Sites interface {
	RemoveSite(ctx context.Context, app string) error
}

// Host serves one host's agent.
type Host struct {
	Name      string
	Processes Processes
	Sites     Sites
	Layout    provision.Layout
	// DropDatabases drops an app's databases (provision.Databases.Drop).
	DropDatabases func(ctx context.Context, app *conductor.App) error
	// ChallengeDir is where this host's nginx serves ACME HTTP-01 answers
	// ("": the host does not serve HTTPS); CertsDir holds the certificate
	// files the builder writes (certs.go).
	ChallengeDir, CertsDir string
	// Cgroups are this process's: each `run` command gets a group below
	// them; AppCgroups are circusd's, where the app's processes are
	// (builder.Builder's fields of the same names). Instance names this
	// Conductor's groups. Nil or disabled: process groups only.
	Cgroups, AppCgroups *cgroup.Manager
	Instance            string
	// Redis runs the apps' Redis servers (redis.go); nil: none here.
	Redis RedisServers
	// Cron runs cron:run's entries (cron.go): the host's scheduler; nil: none.
	Cron CronRuns
	// Maintenance renders apps' maintenance mode into their sites
	// (maintenance.go); nil: none here.
	Maintenance MaintenanceSites
	// Databases finds an app's databases for db:backup and db:restore
	// (dbbackup.go); BackupDir is the root-only directory their files go
	// in ("": this host takes no database backups).
	Databases *provision.Databases
	BackupDir string
	// Offsite is where this host copies its backups off-host (the
	// --backup-s3-url of its serve or worker); nil: no off-host copies.
	Offsite *offsite.Target
}

// Process is one watcher of an app: its process type, how many processes
// run and the state circus reports.
type Process struct {
	Type    string `json:"type"`
	Watcher string `json:"watcher"`
	Running int    `json:"running"`
	State   string `json:"state"`
	// Limits are those the watcher's processes run under (ps:limit, as
	// its spec has them): "memory=512M cpu=1 pids=256", or "none".
	Limits string `json:"limits,omitempty"`
}

func subject(host, op string) string { return "agent." + host + "." + op }

// request bodies.
type (
	appRequest struct {
		App *conductor.App `json:"app"`
	}
	typesRequest struct {
		App string `json:"app"`
		Dir string `json:"dir"` // a release directory of the app
	}
	scaleRequest struct {
		App     string `json:"app"`
		Watcher string `json:"watcher"`
		N       int    `json:"n"`
	}
)

// Serve answers the host's requests until ctx ends.
func (h *Host) Serve(ctx context.Context, nc *nats.Conn) error {
	ops := map[string]func(context.Context, []byte) (any, error){
		"ps":      h.ps,
		"types":   h.types,
		"scale":   h.scale,
		"destroy": h.destroy,
		// certs.go
		"challenge":    h.challenge,
		"forget-certs": h.forgetCerts,
		// redis.go
		"redis-start": h.redisStart,
		"redis-stop":  h.redisStop,
		// maintenance.go
		"maintenance": h.maintenance,
		// dbbackup.go
		"db-backup":        h.dbBackup,
		"db-restore":       h.dbRestore,
		"db-backup-remove": h.dbBackupRemove,
		"db-backup-upload": h.dbBackupUpload,
		"db-backup-where":  h.dbBackupWhere,
	}
	var subs []*nats.Subscription
	for op, f := range ops {
		sub, err := nc.Subscribe(subject(h.Name, op), func(m *nats.Msg) {
			// Each request in its own goroutine: a destroy waits for
			// processes to stop and must not hold up a ps.
			go func() {
				res, err := f(ctx, m.Data)
				if err := m.Respond(queue.EncodeReply(res, err)); err != nil {
					slog.Warn("answer agent request", "op", op, "err", err)
				}
			}()
		})
		if err != nil {
			return fmt.Errorf("serve agent %s: %w", op, err)
		}
		subs = append(subs, sub)
	}
	runSub, err := nc.Subscribe(subject(h.Name, "run"), func(m *nats.Msg) { go h.serveRun(ctx, nc, m) })
	if err != nil {
		return fmt.Errorf("serve agent run: %w", err)
	}
	subs = append(subs, runSub)
	go func() {
		<-ctx.Done()
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	return nil
}

func decode[T any](data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, conductor.Errorf(conductor.EINVALID, "malformed agent request: %v", err)
	}
	return v, nil
}

// ps lists an app's watchers with their state in circus.
func (h *Host) ps(ctx context.Context, data []byte) (any, error) {
	req, err := decode[appRequest](data)
	if err != nil {
		return nil, err
	}
	if req.App == nil || conductor.ValidateAppName(req.App.Name) != nil {
		return nil, conductor.Errorf(conductor.EINVALID, "ps: bad app")
	}
	names, err := h.Processes.Watchers()
	if err != nil {
		return nil, err
	}
	status, err := h.Processes.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := []Process{}
	for _, n := range names {
		typ, ok := WatcherType(req.App.Name, n)
		if !ok {
			continue
		}
		pids, err := h.Processes.Pids(ctx, n)
		if err != nil {
			return nil, err
		}
		state := status[n]
		if state == "" {
			state = "unknown"
		}
		out = append(out, Process{Type: typ, Watcher: n, Running: len(pids), State: state, Limits: h.watcherLimits(req.App.Name, n)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Watcher < out[j].Watcher })
	return out, nil
}

// watcherLimits reads the limits a watcher's spec gives its processes.
func (h *Host) watcherLimits(app, watcher string) string {
	s, err := process.ReadSpec(filepath.Join(h.Layout.RunDir(app), watcher+".json"))
	if err != nil {
		return ""
	}
	return conductor.ProcessLimits{MemoryBytes: s.Limits.MemoryBytes, CPUMillis: s.Limits.CPUMillis, Pids: s.Limits.Pids}.String()
}

// types lists the long-running process types of a release: its Procfile's,
// or web alone for a Procfile that declares none.
func (h *Host) types(_ context.Context, data []byte) (any, error) {
	req, err := decode[typesRequest](data)
	if err != nil {
		return nil, err
	}
	if err := h.inProject(req.App, req.Dir); err != nil {
		return nil, err
	}
	pf, err := process.ReadProcfile(filepath.Join(req.Dir, "Procfile"))
	if err != nil {
		return nil, fmt.Errorf("read the current release's Procfile: %w", err)
	}
	// A Procfile that runs nothing gets the default web; one with other
	// types and no web is a worker-only app (builder's detect).
	types := pf.Types()
	if len(types) == 0 {
		types = []string{"web"}
	}
	sort.Strings(types)
	return types, nil
}

// scale sets the number of processes of one of an app's watchers.
func (h *Host) scale(ctx context.Context, data []byte) (any, error) {
	req, err := decode[scaleRequest](data)
	if err != nil {
		return nil, err
	}
	if conductor.ValidateAppName(req.App) != nil {
		return nil, conductor.Errorf(conductor.EINVALID, "scale: bad app")
	}
	typ, port, ok := process.ParseWatcher(req.App, req.Watcher)
	if !ok || req.N < 0 {
		return nil, conductor.Errorf(conductor.EINVALID, "scale: %s is not a watcher of %s", req.Watcher, req.App)
	}
	name := req.Watcher
	if port != 0 && typ != "web" {
		// A release deployed before names had ports runs <app>_<type>.
		if names, err := h.Processes.Watchers(); err == nil && !slices.Contains(names, name) && slices.Contains(names, req.App+"_"+typ) {
			name = req.App + "_" + typ
		}
	}
	return nil, h.Processes.Scale(ctx, name, req.N)
}

// destroy undoes what the host holds of an app: processes, site,
// databases, files and unix user. Each step is idempotent, so a destroy
// that fails halfway can run again.
func (h *Host) destroy(ctx context.Context, data []byte) (any, error) {
	req, err := decode[appRequest](data)
	if err != nil {
		return nil, err
	}
	app := req.App
	if app == nil || conductor.ValidateAppName(app.Name) != nil {
		return nil, conductor.Errorf(conductor.EINVALID, "destroy: bad app")
	}
	var steps []string
	step := func(what string) { steps = append(steps, what) }
	step("Stopping processes")
	names, err := h.Processes.Watchers()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := WatcherType(app.Name, n); ok {
			if err := h.Processes.Remove(ctx, n); err != nil {
				return nil, err
			}
		}
	}
	// What the processes left (a worker's children) goes with them.
	for _, m := range []*cgroup.Manager{h.AppCgroups, h.Cgroups} {
		if !m.Enabled() || h.Instance == "" {
			continue
		}
		if g, err := m.Group(cgroup.AppPath(h.Instance, app.Name)); err == nil {
			if err := g.Destroy(); err != nil {
				return nil, err
			}
		}
	}
	step("Removing the web server's site")
	if err := h.Sites.RemoveSite(ctx, app.Name); err != nil {
		return nil, err
	}
	if h.DropDatabases != nil {
		step("Dropping databases")
		if err := h.DropDatabases(ctx, app); err != nil {
			return nil, err
		}
	}
	step("Removing files")
	for _, dir := range []string{h.Layout.ProjectDir(app.Name), h.Layout.EnvironmentsDir(app.Name)} {
		if err := RemoveInside(dir, h.Layout.Srv); err != nil {
			return nil, err
		}
	}
	step("Removing the unix user")
	if err := provision.RemoveUser(ctx, app.Name); err != nil {
		return nil, err
	}
	slog.Info("app destroyed on this host", "app", app.Name, "host", h.Name)
	return steps, nil
}

// inProject checks that dir is a directory of app's project on this host:
// the only directories a request may name.
func (h *Host) inProject(app, dir string) error {
	if conductor.ValidateAppName(app) != nil {
		return conductor.Errorf(conductor.EINVALID, "bad app")
	}
	rel, err := filepath.Rel(h.Layout.ProjectDir(app), dir)
	if err != nil || rel == "." || !filepath.IsLocal(rel) {
		return conductor.Errorf(conductor.EINVALID, "%s is not a release of %s", dir, app)
	}
	return nil
}

// RemoveInside deletes dir, which must lie strictly inside one of roots: a
// last guard against a path built from a bad name.
func RemoveInside(dir string, roots ...string) error {
	for _, root := range roots {
		rel, err := filepath.Rel(root, dir)
		if err == nil && rel != "." && filepath.IsLocal(rel) {
			if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove %s: %w", dir, err)
			}
			return nil
		}
	}
	return fmt.Errorf("refusing to remove %s: not inside %v", dir, roots)
}

// WatcherType tells the process type of one of app's watchers, named by
// the builder <app>_<type>_<port> (process.ReleaseWatcher), or
// <app>_<type> before names had ports. App names have no "_", so the
// prefix belongs to exactly one app.
func WatcherType(app, watcher string) (string, bool) {
	typ, _, ok := process.ParseWatcher(app, watcher)
	return typ, ok
}

// WebWatcher is the name of an app's web watcher on port.
func WebWatcher(app string, port int) string { return app + "_web_" + strconv.Itoa(port) }

// Client asks hosts' agents.
type Client struct {
	NC *nats.Conn
}

// call sends a request to a host's agent and decodes the result into out.
func (c *Client) call(ctx context.Context, host, op string, req, out any) error {
	return c.callWithin(ctx, 2*time.Minute, host, op, req, out) // a destroy waits for processes to stop
}

// callWithin is call with a bound of its own (a database backup may take
// longer than a destroy).
func (c *Client) callWithin(ctx context.Context, limit time.Duration, host, op string, req, out any) error {
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	msg, err := c.NC.RequestWithContext(rctx, subject(host, op), data)
	if errors.Is(err, nats.ErrNoResponders) {
		return conductor.Errorf(conductor.EUNAVAILABLE, "host %s is down: its worker does not answer; start it and try again", host)
	} else if err != nil {
		return fmt.Errorf("ask host %s (%s): %w", host, op, err)
	}
	if err := queue.DecodeReply(msg.Data, out); err != nil {
		return fmt.Errorf("host %s (%s): %w", host, op, err)
	}
	return nil
}

// Processes lists an app's watchers on its host.
func (c *Client) Processes(ctx context.Context, app *conductor.App) ([]Process, error) {
	var ps []Process
	return ps, c.call(ctx, app.Host, "ps", appRequest{App: app}, &ps)
}

// ReleaseTypes lists the process types of one of the app's releases.
func (c *Client) ReleaseTypes(ctx context.Context, app *conductor.App, dir string) ([]string, error) {
	var types []string
	return types, c.call(ctx, app.Host, "types", typesRequest{App: app.Name, Dir: dir}, &types)
}

// Scale sets the number of processes of one of the app's watchers.
func (c *Client) Scale(ctx context.Context, app *conductor.App, watcher string, n int) error {
	return c.call(ctx, app.Host, "scale", scaleRequest{App: app.Name, Watcher: watcher, N: n}, nil)
}

// Destroy removes the app from its host and returns the steps it took.
func (c *Client) Destroy(ctx context.Context, app *conductor.App) ([]string, error) {
	var steps []string
	return steps, c.call(ctx, app.Host, "destroy", appRequest{App: app}, &steps)
}
