package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
	"github.com/hasadna/conductor/applogs"
	"github.com/hasadna/conductor/builder"
	"github.com/hasadna/conductor/cgroup"
	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/metrics"
	"github.com/hasadna/conductor/nginx"
	"github.com/hasadna/conductor/offsite"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/pythons"
	"github.com/hasadna/conductor/queue"
	"github.com/hasadna/conductor/scheduler"
)

// hostOptions configure the part of Conductor that runs apps on a host: its
// circusd and nginx, and the builder that takes the host's jobs. `serve`
// runs one for its own host; `worker` runs one on another host.
type hostOptions struct {
	name                        string // the host's name in the queue
	httpAddr, domain            string
	circusBin, nginxBin, python string
	pythons                     string // registered interpreters (package pythons)
	uv                          string // the uv binary dependencies are installed with
	keep, jobs                  int
	portRange                   string // apps' ports: allocated by serve; a worker moves a taken one within it
	logMaxBytes                 int64
	cgroups                     bool // app processes and build commands in cgroups (when root and writable)
	databases                   databaseOptions
	system                      systemOptions // --system and its settings (system.go)

	// httpsAddr is where nginx serves apps' domains over TLS ("": no
	// HTTPS); serve's --https-addr (tls.go).
	httpsAddr string

	// metrics counts what the host's builder and crash watch see (serve's
	// /metrics, metrics.go; nil: nothing).
	metrics *metrics.Metrics

	// offsite is --backup-s3-url and --backup-s3-credentials: where the
	// host copies its apps' database backups; offsiteTarget is it opened
	// by validate (nil: none).
	offsite       offsite.Config
	offsiteTarget *offsite.Target
}

func (o *hostOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.name, "host", "local", "name of this host: its apps' jobs, logs and commands are routed to it")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8080", "address of the front nginx")
	f.StringVar(&o.domain, "domain", "localhost", "apps are served at <app>.<domain>")
	f.StringVar(&o.circusBin, "circus-bin", "/opt/conductor/circus/bin", "directory with circusd and circusctl")
	f.StringVar(&o.nginxBin, "nginx-bin", "/usr/sbin/nginx", "nginx binary")
	f.StringVar(&o.python, "python", "/usr/bin/python3", "Python interpreter for app virtualenvs")
	f.StringVar(&o.pythons, "pythons", pythons.DefaultDir, "directory of the Python interpreters apps may ask for by version (conductor python:add)")
	f.StringVar(&o.uv, "uv", "/opt/conductor/uv/bin/uv", "the uv binary that creates virtualenvs and installs apps' dependencies (make setup installs it)")
	f.StringVar(&o.portRange, "port-range", "20000-29999", "ports for app processes (a worker: the conductor's range, where a port another program took moves)")
	f.IntVar(&o.keep, "keep-releases", 5, "releases kept per app for rollback")
	f.Int64Var(&o.logMaxBytes, "log-max-bytes", 10<<20, "size at which an app process log rotates (3 rotated files are kept)")
	f.IntVar(&o.jobs, "jobs", 4, "deploy jobs run at once on this host (one per app at a time)")
	f.BoolVar(&o.cgroups, "cgroups", true, "run app processes, build steps and run commands in cgroups (ps:limit needs them); false: process groups and sessions only")
	f.StringVar(&o.offsite.URL, "backup-s3-url", "", "S3-compatible target of off-host copies of apps' database backups: s3://bucket/prefix?endpoint=https://host:port&region=us-east-1 (docs/production.md)")
	f.StringVar(&o.offsite.Credentials, "backup-s3-credentials", "", "file (0600, root's) with the target's access_key_id = … and secret_access_key = … lines")
	o.databases.addFlags(f)
	o.system.addFlags(f)
}

func (o *hostOptions) validate() error {
	if err := conductor.ValidateHostName(o.name); err != nil {
		return fmt.Errorf("--host: %w", err)
	}
	if err := nginx.ValidateHost(o.domain); err != nil {
		return fmt.Errorf("--domain: %w", err)
	}
	if o.keep < 1 || o.jobs < 1 {
		return errors.New("--keep-releases and --jobs must be at least 1")
	}
	if _, err := parsePortRange(o.portRange); err != nil {
		return err
	}
	// A bad target or credentials file stops the start: backups that
	// silently stay on the host are what the flag is there to prevent.
	t, err := offsite.Open(o.offsite)
	if err != nil {
		return err
	}
	o.offsiteTarget = t
	if t != nil {
		slog.Info("database backups are copied off-host", "target", t.String(), "endpoint", t.Endpoint)
	}
	return nil
}

// host is a running app host: circusd and nginx children and the builder.
type host struct {
	Circus    *circus.Circus
	Nginx     *nginx.Nginx
	Layout    provision.Layout
	Databases *provision.Databases
	Builder   *builder.Builder
	// Cron fires the cron entries of this host's apps (app.json).
	Cron *scheduler.Scheduler
	// Metrics is hostOptions.metrics (nil: none).
	Metrics *metrics.Metrics

	stopChildren context.CancelFunc
	jobs         sync.WaitGroup
	withdrawn    <-chan struct{} // closed once the host's entry is removed (queue.Announce)
}

// startHost starts circusd and nginx under data (or adopts those a previous
// run left serving, with the apps), undoes what an
// interrupted job left (Reconcile), then takes the host's jobs, log
// requests and cancels until ctx ends. fatal is called if the builder
// stops on its own. Stop ends the children once the jobs are done.
func startHost(ctx context.Context, o hostOptions, data, bin string, q *queue.Queue, store builder.Store, dbStore conductor.DatabaseStore, defaultDB string, fatal func()) (*host, error) {
	h := &host{Layout: provision.Layout{Srv: filepath.Join(data, "srv")}}
	if o.system.enabled {
		h.Layout.Srv = o.system.srv
	}
	// Children live until the builder has stopped: Stop ends them.
	childCtx, stopChildren := context.WithCancel(context.WithoutCancel(ctx))
	h.stopChildren = stopChildren
	owner := "root"
	if u, err := user.Current(); err == nil {
		owner = u.Username
	}
	h.Circus = &circus.Circus{Bin: o.circusBin, Dir: filepath.Join(data, "circus"), Owner: owner}
	if o.system.enabled {
		o.system.useSystemCircus(h.Circus)
	}
	if err := h.Circus.Start(childCtx); err != nil {
		stopChildren()
		return nil, err
	}
	h.Nginx = &nginx.Nginx{Bin: o.nginxBin, Dir: filepath.Join(data, "nginx"), Listen: o.httpAddr, HTTPSListen: o.httpsAddr}
	if os.Geteuid() == 0 {
		h.Nginx.User = "nobody nogroup"
	}
	if o.system.enabled {
		o.system.useSystemNginx(h.Nginx)
	}
	if err := h.Nginx.Start(childCtx); err != nil {
		h.Stop()
		return nil, err
	}
	go rotateNginxLogs(childCtx, h.Nginx) // metrics.go
	var err error
	if h.Databases, err = o.databases.databases(ctx, dbStore, h.Layout, defaultDB); err != nil {
		h.Stop()
		return nil, err
	}
	instance, err := instanceID(data)
	if err != nil {
		h.Stop()
		return nil, err
	}
	if h.Circus.Adopted() || h.Nginx.Adopted() {
		slog.Info("adopted the running circusd and nginx: the apps served on", "circusd", h.Circus.Adopted(), "nginx", h.Nginx.Adopted())
	}
	own, apps := hostCgroups(o, h.Circus)
	h.Builder = &builder.Builder{
		Host: o.name, Store: store, Queue: q, Layout: h.Layout, Circus: h.Circus, Nginx: h.Nginx, Databases: h.Databases,
		Domain: o.domain, HTTPAddr: o.httpAddr, Python: o.python, Pythons: o.pythons, UV: o.uv, Conductor: bin, Keep: o.keep, LogMaxBytes: o.logMaxBytes,
		CertsDir: filepath.Join(data, "certs"),
		Cgroups:  own, AppCgroups: apps, Instance: instance, Jobs: o.jobs,
	}
	h.Builder.Ports, _ = parsePortRange(o.portRange) // checked by validate
	if o.metrics != nil {
		h.Metrics, h.Builder.Observe = o.metrics, o.metrics
	}
	if err := h.Builder.Reconcile(ctx); err != nil {
		h.Stop()
		return nil, fmt.Errorf("reconcile after restart: %w", err)
	}
	h.Builder.ReconcileCgroups(ctx)
	if err := h.serve(ctx, o, q, data, fatal); err != nil {
		h.Stop()
		return nil, err
	}
	return h, nil
}

func (h *host) serve(ctx context.Context, o hostOptions, q *queue.Queue, data string, fatal func()) error {
	id, err := instanceID(data)
	if err != nil {
		return err
	}
	withdrawn, err := q.Announce(ctx, queue.HostInfo{Name: o.name, Instance: id, Capacity: o.jobs, Version: version,
		Address: o.httpAddr, HTTPS: o.httpsAddr})
	if err != nil {
		return err
	}
	h.withdrawn = withdrawn
	if err := q.ServeCancel(ctx, o.name, h.Builder.Cancel); err != nil {
		return err
	}
	// ps, ps:scale, run and apps:destroy of the apps on this host.
	ag := &agent.Host{Name: o.name, Processes: h.Circus, Sites: h.Nginx, Layout: h.Layout, DropDatabases: h.Databases.Drop,
		CertsDir: h.Builder.CertsDir, Cgroups: h.Builder.Cgroups, AppCgroups: h.Builder.AppCgroups, Instance: id,
		Redis: h.Builder, Maintenance: h.Builder,
		// db:backup's files: root-only, in the data dir, never under srv.
		Databases: h.Databases, BackupDir: filepath.Join(data, "db-backups"), Offsite: o.offsiteTarget}
	if o.httpsAddr != "" {
		ag.ChallengeDir = h.Nginx.ChallengeDir()
	}
	// The scheduler of this host's apps' cron entries: runs go through the
	// agent (as run-like commands), cron:run reaches it through the agent,
	// and the builder tells it when a release with new entries goes live.
	// A failed run calls h.Cron.Failed (nil: nothing; the place for a
	// cron.failed notification).
	h.Cron = &scheduler.Scheduler{Host: o.name, Store: h.Builder.Store, Runner: ag}
	h.Cron.Failed = cronFailed(q, o.name) // sent to the conductor (crashwatch.go)
	ag.Cron = h.Cron
	h.Builder.CronChanged = h.Cron.Reload
	if err := ag.Serve(ctx, q.NATS()); err != nil {
		return err
	}
	// This host's worker answers `logs` for the apps it runs.
	if err := q.ServeAppLogs(ctx, o.name, func(ctx context.Context, req queue.AppLogsRequest, send func([]string) error) error {
		if err := conductor.ValidateAppName(req.App); err != nil {
			return err
		}
		if req.Process != "" {
			if err := conductor.ValidateProcessType(req.Process); err != nil {
				return err
			}
		}
		return applogs.Send(ctx, h.Layout.LogDir(req.App), req.Process, req.Lines, req.Follow, send)
	}); err != nil {
		return err
	}
	h.jobs.Add(1)
	go func() {
		defer h.jobs.Done()
		h.Cron.Run(ctx)
	}()
	h.jobs.Add(1)
	go func() {
		defer h.jobs.Done()
		if err := q.Consume(ctx, o.name, o.jobs, h.Builder.Handle); err != nil {
			slog.Error("builder stopped", "host", o.name, "err", err)
			fatal()
		}
	}()
	return nil
}

// Stop waits for the jobs in flight (ctx must be done) and ends the
// supervision of circusd and nginx. Both go on serving the apps, like
// system mode's services: the next start adopts them, and `conductor
// stop-all` stops them.
func (h *host) Stop() {
	h.jobs.Wait()
	if h.withdrawn != nil {
		// "hosts" and pushes say the host is down as soon as it is, not
		// when its entry expires: Announce removes it within 2 s of the
		// host's context ending (bounded: Stop also runs when starting
		// failed, with the context still live).
		select {
		case <-h.withdrawn:
		case <-time.After(3 * time.Second):
		}
	}
	h.stopChildren()
	if h.Nginx != nil {
		h.Nginx.Wait()
	}
	if h.Circus != nil {
		h.Circus.Wait()
	}
}

// hostCgroups opens the cgroups build commands go in (this process's) and
// those app processes go in (circusd's, which run-process starts in).
func hostCgroups(o hostOptions, c *circus.Circus) (own, apps *cgroup.Manager) {
	if !o.cgroups {
		off := cgroup.Disabled("--cgroups=false")
		return off, off
	}
	own, apps = cgroup.Open(0), cgroup.Open(0)
	if pid, err := c.Pid(); err == nil {
		apps = cgroup.Open(pid)
	} else {
		slog.Warn("circusd's pid is unknown: app cgroups are assumed to be below conductor's", "err", err)
	}
	slog.Info("cgroups", "mode", apps.Mode(), "apps", apps.Base(), "builds", own.Base())
	return own, apps
}

// instanceID identifies this data dir, so a worker restarted on it takes
// its host's entry back at once while another data dir claiming the same
// host name is refused.
func instanceID(data string) (string, error) {
	path := filepath.Join(data, "instance-id")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return id, nil
}
