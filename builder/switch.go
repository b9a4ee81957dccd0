package builder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/procnet"
	"github.com/hasadna/conductor/nginx"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/queue"
)

// A deploy ends in one of two states, also when conductor is killed at any
// instant: the new release serves, is recorded as current and `current`
// points at it; or the previous release serves, is recorded, and the new
// one is gone. One durable record decides which: AddRelease, one SQLite
// transaction that makes the new release current and its deploy
// succeeded (and, for a rollback, the app's config the release's). That
// is the commit point. Before it, any failure puts the previous site
// back (cleanup, restoreSite) and removes the new processes; a crash
// there is undone by the start-up reconcile the same way. After it,
// nothing fails the deploy: the `current` link, retiring the old
// processes and pruning are redone by the next deploy and by the start-up
// reconcile (reconcile.go) if they fail or are cut short.

// switchTraffic points nginx at the new release, waits until nginx serves
// it, records it (the commit point) and points `current` at it.
func (d *deployment) switchTraffic(ctx context.Context) error {
	// A maintenance toggle waits until this release is recorded (or not).
	unlock := d.b.lockSite(d.app.Name)
	defer unlock()
	site, err := d.b.releaseSite(ctx, d.app, d.job.ID, d.port, d.dir, d.domains, d.log.Printf)
	if err != nil {
		return err
	}
	// CONDUCTOR_MAX_BODY (configfiles.go)
	site.MaxBody = maxBody(d.config, d.log.Printf)

	d.siteWritten = true // from here, cleanup writes the previous site back
	if err := d.b.Nginx.WriteSite(ctx, site); err != nil {
		return err
	}
	pauseAt("switch:site")
	// The deploy fails unless nginx serves the new release: at once when
	// only the app's route changed (nginx reads it per request), after a
	// reload when the site did (a first deploy, a new domain). Requests
	// already sent to the old release finish: retire drains it first.
	if err := d.b.Nginx.WaitRelease(ctx, d.host(), d.job.ID, 15*time.Second); err != nil {
		return fmt.Errorf("the front nginx does not serve the new release: %w", err)
	}
	pauseAt("switch:served")
	desc := "deploy of " + d.job.Ref
	switch {
	case d.job.Kind == queue.KindRestart:
		desc = d.job.Ref
	case d.reused != nil:
		desc = fmt.Sprintf("rollback to v%d", d.reused.Number)
	}
	rel := &conductor.Release{
		ID: d.job.ID, AppID: d.app.ID, Rev: d.job.Rev, Port: d.port, Dir: d.dir, Venv: d.venv, Migrations: d.migrations,
		Config: d.config, Pusher: d.job.Pusher, Description: desc, Duration: time.Since(d.started),
		RestoreConfig: d.job.Kind == queue.KindRollback,
		Cron:          d.cron, // app.json's, read by detect
	}
	if err := d.b.Store.AddRelease(ctx, rel); err != nil {
		// Over NATS an answer can be lost after the state committed: ask.
		cur, cerr := d.b.Store.CurrentRelease(context.WithoutCancel(ctx), d.app.ID)
		if cerr != nil || cur.ID != d.job.ID {
			return fmt.Errorf("record the release: %w", err)
		}
		rel.Number = cur.Number
	}
	d.committed = true
	d.b.cronChanged(d.app.Name) // the scheduler takes the release's entries (cron.go)
	pauseAt("switch:committed")
	if err := d.b.linkCurrent(d.app.Name, d.dir); err != nil {
		d.log.Printf("       Warning: %v (set again at the next start)", err)
	}
	pauseAt("switch:linked")
	d.log.Printf("       Release v%d is live", rel.Number)
	return nil
}

// releaseSite is the nginx site serving an app's release id (on port,
// from dir) for its domains.
func (b *Builder) releaseSite(ctx context.Context, app *conductor.App, id string, port int, dir string, domains []string, printf func(string, ...any)) (nginx.Site, error) {
	tls, err := b.tlsHosts(ctx, app, domains, printf) // builder/tls.go
	if err != nil {
		return nginx.Site{}, err
	}
	maint, err := b.siteMaintenance(ctx, app, dir, printf) // maintenance.go
	if err != nil {
		return nginx.Site{}, err
	}
	return nginx.Site{
		App: app.Name, Release: id, Hosts: append([]string{app.Name + "." + b.Domain}, domains...), Port: port,
		StaticDir: filepath.Join(dir, "staticfiles"), MediaDir: b.Layout.MediaDir(app.Name), TLS: tls,
		Maintenance: maint,
	}, nil
}

// restoreSite, before the commit point, points nginx back at the previous
// release (or removes the site of a first deploy). It tells whether nginx
// no longer routes to the new release.
func (d *deployment) restoreSite(ctx context.Context) bool {
	unlock := d.b.lockSite(d.app.Name)
	defer unlock()
	var err error
	if d.previous == nil {
		err = d.b.Nginx.RemoveSite(ctx, d.app.Name)
	} else {
		var site nginx.Site
		if site, err = d.b.releaseSite(ctx, d.app, d.previous.ID, d.previous.Port, d.previous.Dir, d.domains, func(string, ...any) {}); err == nil {
			site.MaxBody = maxBody(d.previous.Config, func(string, ...any) {})
			err = d.b.Nginx.WriteSite(ctx, site)
		}
	}
	if err != nil {
		d.log.Printf("       Warning: could not point nginx back at the previous release: %v", err)
		slog.Error("restore the previous site after a failed switch", "app", d.app.Name, "deploy", d.job.ID, "err", err)
		return false
	}
	return true
}

// linkCurrent points the app's `current` symlink at dir, in one rename.
func (b *Builder) linkCurrent(app, dir string) error {
	link := b.Layout.CurrentLink(app)
	if target, err := os.Readlink(link); err == nil && target == dir {
		return nil
	}
	_ = os.Remove(link + ".tmp")
	if err := os.Symlink(dir, link+".tmp"); err != nil {
		return fmt.Errorf("point current at the release: %w", err)
	}
	if err := os.Rename(link+".tmp", link); err != nil {
		return fmt.Errorf("point current at the release: %w", err)
	}
	return nil
}

// retire, after the commit point, stops what belongs to no release but
// the new one: the previous release's processes of every type (circus
// lets them finish their work in the background; nothing routes to them
// any more), what interrupted deploys left and types dropped from the
// Procfile; then it prunes old releases. Its failures are warnings: the
// next deploy's retire and the start-up reconcile do it again.
func (d *deployment) retire(ctx context.Context) error {
	// Requests that nginx already sent to the old release finish before
	// its processes stop: those of workers a reload replaced, and those
	// in flight or queued on the old web port.
	if err := d.b.Nginx.WaitOldWorkers(ctx, drainTimeout); err != nil {
		d.log.Printf("       Warning: %v", err)
	}
	if err := d.drainOldWeb(ctx); err != nil {
		d.log.Printf("       Warning: %v", err)
	}
	keep := map[string]bool{redisWatcher(d.app.Name): true} // redis:create's server is no release's
	for _, w := range d.newWatchers {
		keep[w] = true
	}
	var errs []error
	if err := d.b.retireOthers(ctx, d.app.Name, keep); err != nil { // processes.go
		errs = append(errs, err)
	}
	pauseAt("retire:stopped")
	if err := d.prune(ctx); err != nil {
		errs = append(errs, fmt.Errorf("prune old releases: %w", err))
	}
	return errors.Join(errs...)
}

// drainTimeout bounds how long retire lets requests sent to the previous
// release finish (a slow download, a websocket) before it stops it.
const drainTimeout = 30 * time.Second

// drainOldWeb waits until no connection is open to the web port of the
// app's other releases: the requests nginx sent there before the switch,
// being served or waiting in the accept queue, which a stopping gunicorn
// would reset. No new one comes: nginx reads the new route, and a request
// that read the old one and finds the port closed is sent to the new
// release (nginx/route.go).
func (d *deployment) drainOldWeb(ctx context.Context) error {
	names, err := d.b.appWatchers(d.app.Name)
	if err != nil {
		return err
	}
	var ports []int
	for _, n := range names {
		if typ, port, ok := process.ParseWatcher(d.app.Name, n); ok && typ == "web" && port != 0 && port != d.port {
			ports = append(ports, port)
		}
	}
	return drainPorts(ctx, ports)
}

// drainPorts waits, up to drainTimeout, until no connection is open to
// the web ports of releases nginx no longer routes to: requests it sent
// there before the route changed, being served or in the accept queue.
// The deploy's retire and the start-up reconcile (which points the route
// back, or on, and stops the releases it no longer names) both wait here
// before stopping those processes.
func drainPorts(ctx context.Context, ports []int) error {
	if len(ports) == 0 {
		return nil
	}
	deadline := time.Now().Add(drainTimeout)
	for {
		open := 0
		for _, p := range ports {
			conns, err := procnet.Established(p)
			if err != nil {
				return fmt.Errorf("drain a release nginx no longer routes to: %w", err)
			}
			open += len(conns)
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d connections to a release nginx no longer routes to still open after %s: stopping it anyway", open, drainTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// prune deletes release directories beyond the newest Keep.
func (d *deployment) prune(ctx context.Context) error {
	return d.b.prune(ctx, d.app, d.dir, d.venv)
}

// prune deletes an app's release directories and virtualenvs beyond the
// newest Keep releases, never the current one's nor dir and venv (the
// release being deployed).
func (b *Builder) prune(ctx context.Context, app *conductor.App, dir, venv string) error {
	releases, err := b.Store.ListReleases(ctx, app.ID)
	if err != nil {
		return err
	}
	keep, keepVenv := map[string]bool{dir: true}, map[string]bool{venv: true, b.Layout.VenvMarker(venv): true}
	for i, r := range releases {
		if i < b.Keep || r.Current {
			keep[r.Dir] = true
			keepVenv[r.Venv] = true
			keepVenv[b.Layout.VenvMarker(r.Venv)] = true
		}
	}
	if err := removeAllBut(b.Layout.ReleasesDir(app.Name), keep); err != nil {
		return err
	}
	// Virtualenvs go with the releases that use them; .cache is pip's.
	keepVenv[filepath.Join(b.Layout.EnvironmentsDir(app.Name), ".cache")] = true
	return removeAllBut(b.Layout.EnvironmentsDir(app.Name), keepVenv)
}

// removeAllBut deletes the entries of dir whose paths are not in keep.
func removeAllBut(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if p := filepath.Join(dir, e.Name()); !keep[p] {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
	}
	return nil
}
