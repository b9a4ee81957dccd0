package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/provision"
)

// Reconcile runs at startup, before jobs are taken, and converges every
// app of this host to the state's record, whatever instant a killed
// conductor stopped at (switch.go's commit point): nginx's site, circus's
// watchers and the `current` link follow the recorded current release;
// what belongs to no recorded release (an interrupted deploy's processes,
// directory and site) goes; an interrupted retire or prune is finished.
// Deploys left unfinished were interrupted before their commit point and
// are marked failed (one that passed it was recorded succeeded with its
// release). circusd may be one adopted from the previous run, already
// running watchers, some of which may have lost their files.
func (b *Builder) Reconcile(ctx context.Context) error {
	const msg = "the builder stopped during this deploy; the previous release kept serving"
	ids, err := b.Store.FailUnfinishedDeploys(ctx, b.Host, msg)
	if err != nil {
		return err
	}
	for _, id := range ids {
		// A pusher still following the job (its worker was on another
		// host) learns now rather than when the job is redelivered.
		if err := b.Queue.Logs(id).End(ctx, false, msg); err != nil {
			slog.Warn("end the log of an interrupted deploy", "deploy", id, "err", err)
		}
	}
	if len(ids) > 0 {
		slog.Warn("marked interrupted deploys failed", "count", len(ids))
	}
	apps, err := b.appsHere(ctx)
	if err != nil {
		return err
	}
	installed, err := b.Circus.Watchers()
	if err != nil {
		return err
	}
	// One app's broken files (a Procfile it replaced, a link it planted)
	// are that app's problem: it is logged and skipped, and every other
	// app is reconciled and served.
	for _, app := range apps {
		if err := b.reconcileApp(ctx, app); err != nil {
			slog.Error("reconcile: skipped an app whose files are broken; the other apps are served", "app", app.Name, "err", err)
		}
		if err := b.reconcileRedis(ctx, app, installed); err != nil { // redis.go
			slog.Error("reconcile: could not start the app's Redis", "app", app.Name, "err", err)
		}
	}
	return b.reloadIfStale(ctx)
}

// reconcileApp converges one app to its recorded current release (none:
// the app was never deployed, or only by interrupted deploys). It also
// secures the app's directories (Conductor versions before tenant
// isolation left logs/ and run/ to the app user).
func (b *Builder) reconcileApp(ctx context.Context, app *conductor.App) error {
	cur, err := b.Store.CurrentRelease(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		cur = nil
	} else if err != nil {
		return err
	} else if err := b.secureDirs(ctx, app); err != nil {
		return err
	}
	// Watchers: the current release's (its port's, and those of its types
	// named before names had ports) and the app's Redis stay; the rest go.
	names, err := b.appWatchers(app.Name)
	if err != nil {
		return err
	}
	var keep, others []string
	for _, w := range names {
		_, port, _ := process.ParseWatcher(app.Name, w)
		if cur != nil && (port == cur.Port || port == 0) || w == redisWatcher(app.Name) {
			keep = append(keep, w)
		} else {
			others = append(others, w)
		}
	}
	if cur != nil {
		if err := b.ensureWatchers(ctx, app, keep); err != nil {
			return err
		}
	}
	// nginx goes back to the current release before the processes it may
	// route to now (a deploy killed after its site was written) stop.
	rewrote, err := b.reconcileSite(ctx, app, cur)
	if err != nil {
		return err
	}
	if rewrote && cur != nil && len(others) > 0 {
		if err := b.Nginx.WaitServing(ctx, app.Name+"."+b.Domain, cur.ID, 15*time.Second); err != nil {
			slog.Warn("reconcile: nginx does not serve the current release yet", "app", app.Name, "err", err)
		}
	}
	// Requests nginx sent to those releases' web processes before the
	// route named the current one finish first (as in a deploy's retire).
	var ports []int
	for _, w := range others {
		if typ, port, ok := process.ParseWatcher(app.Name, w); ok && typ == "web" && port != 0 {
			ports = append(ports, port)
		}
	}
	if len(ports) > 0 {
		slog.Info("reconcile: letting requests to releases nginx no longer routes to finish", "app", app.Name, "ports", ports)
	}
	if err := drainPorts(ctx, ports); err != nil {
		slog.Warn("reconcile: stopping releases nginx no longer routes to", "app", app.Name, "err", err)
	}
	for _, w := range others {
		slog.Warn("removing a watcher of no current release", "app", app.Name, "watcher", w)
		if err := b.Circus.Remove(ctx, w); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(b.Layout.RunDir(app.Name), w+".json")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	link := b.Layout.CurrentLink(app.Name)
	if cur != nil {
		if err := b.linkCurrent(app.Name, cur.Dir); err != nil {
			return err
		}
		if time.Since(cur.CreatedAt) < 10*time.Minute {
			// Its deploy may have been cut short after its commit point: a
			// pusher still following it (on another host) learns it went
			// live. The log takes only its first end.
			if err := b.Queue.Logs(cur.ID).End(ctx, true, ""); err != nil {
				slog.Warn("end the log of a deploy that went live", "deploy", cur.ID, "err", err)
			}
		}
	} else if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	// Directories and virtualenvs of no kept release (an interrupted
	// deploy's, or an interrupted prune's) go.
	dir, venv := "", ""
	if cur != nil {
		dir, venv = cur.Dir, cur.Venv
	}
	if err := b.prune(ctx, app, dir, venv); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("prune: %w", err)
	}
	return nil
}

// ensureWatchers installs, from its process spec, each of the current
// release's watchers that has lost its circus file.
func (b *Builder) ensureWatchers(ctx context.Context, app *conductor.App, names []string) error {
	installed, err := b.Circus.Watchers()
	if err != nil {
		return err
	}
	var scale map[string]int
	for _, w := range names {
		if slices.Contains(installed, w) || w == redisWatcher(app.Name) {
			continue
		}
		spec := filepath.Join(b.Layout.RunDir(app.Name), w+".json")
		s, err := process.ReadSpec(spec)
		if err != nil {
			return fmt.Errorf("start watcher %s: %w", w, err)
		}
		if scale == nil {
			if scale, err = b.Store.ProcessScale(ctx, app.ID); err != nil {
				return err
			}
		}
		n, ok := scale[s.Type]
		if !ok {
			n = 1
		}
		slog.Warn("starting a watcher of the current release that was missing", "app", app.Name, "watcher", w)
		if err := b.Circus.Add(ctx, circus.Watcher{
			App: app.Name, Name: w, Cmd: b.Conductor, Spec: spec, WorkingDir: s.Dir,
			LogFile:     filepath.Join(b.Layout.LogDir(app.Name), s.Type+".log"),
			LogMaxBytes: b.LogMaxBytes, NumProcesses: n,
		}); err != nil {
			return err
		}
		if n == 0 {
			if err := b.Circus.Scale(ctx, w, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// reconcileSite points the app's nginx site at cur (rewriting it when it
// names another release or is missing), or removes it when the app has no
// current release. It tells whether it changed the site.
func (b *Builder) reconcileSite(ctx context.Context, app *conductor.App, cur *conductor.Release) (bool, error) {
	if b.Nginx == nil {
		return false, nil
	}
	unlock := b.lockSite(app.Name)
	defer unlock()
	named := b.Nginx.ServedRelease(app.Name)
	if cur == nil {
		if named == "" {
			return false, nil
		}
		slog.Warn("removing the site of a release that was never recorded", "app", app.Name, "release", named)
		return true, b.Nginx.RemoveSite(ctx, app.Name)
	}
	if named == cur.ID && !b.siteMaintenanceStale(ctx, app, cur) { // maintenance.go
		return false, nil
	}
	domains, err := b.Store.Domains(ctx, app.ID)
	if err != nil {
		return false, err
	}
	site, err := b.releaseSite(ctx, app, cur.ID, cur.Port, cur.Dir, domains, func(string, ...any) {})
	if err != nil {
		return false, err
	}
	site.MaxBody = maxBody(cur.Config, func(string, ...any) {})
	slog.Warn("pointing the site back at the current release", "app", app.Name, "site_release", named, "release", cur.ID)
	if err := b.Nginx.WriteSite(ctx, site); err != nil {
		return true, err
	}
	if named == cur.ID { // only its maintenance mode changed: serve it before start-up ends
		if err := b.Nginx.WaitMaintenance(ctx, app.Name+"."+b.Domain, cur.ID, site.Maintenance, 15*time.Second); err != nil {
			slog.Warn("reconcile: nginx does not serve the app's maintenance mode yet", "app", app.Name, "err", err)
		}
	}
	return true, nil
}

// reloadIfStale has circusd apply its watcher files when what it runs
// differs from them: an adopted circusd may still run a watcher whose file
// a retire removed (its stop cut short), or lack one whose file was
// written just before the kill.
func (b *Builder) reloadIfStale(ctx context.Context) error {
	files, err := b.Circus.Watchers()
	if err != nil {
		return err
	}
	status, err := b.Circus.Status(ctx)
	if err != nil {
		return err
	}
	stale := len(files) != len(status)
	for _, f := range files {
		if _, ok := status[f]; !ok {
			stale = true
		}
	}
	if !stale {
		return nil
	}
	slog.Warn("circusd's watchers differ from their files: reloading", "files", len(files), "running", len(status))
	return b.Circus.Reload(ctx)
}

// secureDirs gives an app's directories the owners and modes of
// provision.Dirs and rewrites, as root's, the process specs the app user
// owned: circus restarts processes from them, so they stay, but what the
// app wrote in them is never trusted.
func (b *Builder) secureDirs(ctx context.Context, app *conductor.App) error {
	u, err := provision.EnsureUser(ctx, app.Name, b.Layout.ProjectDir(app.Name))
	if err != nil {
		return err
	}
	if err := provision.Dirs(ctx, b.Layout, app.Name, u); err != nil {
		return err
	}
	return adoptSpecs(b.Layout, app.Name, u)
}

// adoptSpecs rewrites the specs in an app's run dir that are not root's.
func adoptSpecs(l provision.Layout, app string, u *provision.AppUser) error {
	d, err := safefs.OpenDir(l.ProjectsDir(), app+"/run")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".json") {
			continue
		}
		st, err := safefs.Lstat(l.ProjectsDir(), app+"/run/"+n)
		if err != nil || int(st.Uid) == os.Geteuid() {
			continue
		}
		data, err := safefs.ReadFile(l.ProjectsDir(), app+"/run/"+n, 1<<20)
		if err != nil {
			return err
		}
		var spec process.Spec
		if err := json.Unmarshal(data, &spec); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		spec.Confine(u.UID, u.GID)
		if err := process.WriteSpec(filepath.Join(l.RunDir(app), n), &spec, u.UID, u.GID); err != nil {
			return err
		}
		slog.Info("rewrote a process spec the app user owned", "app", app, "spec", n)
	}
	return nil
}

// appsHere lists the apps placed on this builder's host.
func (b *Builder) appsHere(ctx context.Context) ([]*conductor.App, error) {
	all, err := b.Store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	var here []*conductor.App
	for _, a := range all {
		if a.Host == b.Host {
			here = append(here, a)
		}
	}
	return here, nil
}
