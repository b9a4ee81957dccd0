package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/nginx"
	"github.com/hasadna/conductor/queue"
)

// switchTraffic points nginx and the current symlink at the new release and
// records it.
func (d *deployment) switchTraffic(ctx context.Context) error {
	tls, err := d.tlsHosts(ctx) // builder/tls.go
	if err != nil {
		return err
	}
	if err := d.b.Nginx.WriteSite(ctx, nginx.Site{
		App: d.app.Name, Release: d.job.ID, Hosts: append([]string{d.host()}, d.domains...), Port: d.port,
		StaticDir: filepath.Join(d.dir, "staticfiles"), MediaDir: d.b.Layout.MediaDir(d.app.Name), TLS: tls,
	}); err != nil {
		return err
	}
	d.switched = true
	link := d.b.Layout.CurrentLink(d.app.Name)
	_ = os.Remove(link + ".tmp")
	if err := os.Symlink(d.dir, link+".tmp"); err == nil {
		_ = os.Rename(link+".tmp", link)
	}
	desc := "deploy of " + d.job.Ref
	switch {
	case d.job.Kind == queue.KindRestart:
		desc = d.job.Ref
	case d.reused != nil:
		desc = fmt.Sprintf("rollback to v%d", d.reused.Number)
		if err := d.b.Store.ReplaceConfig(ctx, d.app.ID, d.config); err != nil {
			return err
		}
	}
	rel := &conductor.Release{
		ID: d.job.ID, AppID: d.app.ID, Rev: d.job.Rev, Port: d.port, Dir: d.dir, Venv: d.venv,
		Config: d.config, Pusher: d.job.Pusher, Description: desc, Duration: time.Since(d.started),
	}
	if err := d.b.Store.AddRelease(ctx, rel); err != nil {
		return err
	}
	d.log.Printf("       Release v%d is live", rel.Number)
	d.waitForNginx(ctx)
	return nil
}

// waitForNginx waits (briefly) until nginx's workers serve the new
// configuration, so a push returns only once its release is live.
func (d *deployment) waitForNginx(ctx context.Context) {
	if err := d.b.Nginx.WaitServing(ctx, d.host(), d.job.ID, 15*time.Second); err != nil {
		d.log.Printf("       Warning: %v", err)
	}
}

// retire stops the previous release's web processes (circus lets them
// finish their requests), restarts the other process types on the new
// release and prunes old releases.
func (d *deployment) retire(ctx context.Context) error {
	// Requests that old nginx workers already sent to the old release
	// finish before its processes stop.
	if err := d.b.Nginx.WaitOldWorkers(ctx, 30*time.Second); err != nil {
		d.log.Printf("       Warning: %v", err)
	}
	if d.previous != nil && d.previous.Port != d.port {
		// The old processes get their stop signal and finish their
		// requests (graceful_timeout) while the push returns: nothing
		// routes to them any more.
		name := webWatcher(d.app.Name, d.previous.Port)
		if err := d.b.stopWatcher(ctx, name, d.specPath(name), true); err != nil {
			return err
		}
		if err := os.Remove(d.specPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	keep := map[string]bool{d.newWatcher: true, redisWatcher(d.app.Name): true} // redis:create's server is no process type
	for _, typ := range d.procfile.Types() {
		if typ == "web" {
			continue
		}
		name := typeWatcher(d.app.Name, typ)
		keep[name] = true
		if err := d.removeWatcher(ctx, name); err != nil {
			return err
		}
		if err := d.addWatcher(ctx, name, typ, 0); err != nil {
			return err
		}
		d.log.Printf("       %s: %s", typ, d.procfile[typ])
	}
	// Process types dropped from the Procfile stop too.
	names, err := d.b.Circus.Watchers()
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, d.app.Name+"_") && !keep[n] {
			if err := d.removeWatcher(ctx, n); err != nil {
				return err
			}
		}
	}
	return d.prune(ctx)
}

// prune deletes release directories beyond the newest Keep.
func (d *deployment) prune(ctx context.Context) error {
	releases, err := d.b.Store.ListReleases(ctx, d.app.ID)
	if err != nil {
		return err
	}
	keep, keepVenv := map[string]bool{}, map[string]bool{d.venv: true}
	for i, r := range releases {
		if i < d.b.Keep || r.Current {
			keep[r.Dir] = true
			keepVenv[r.Venv] = true
			keepVenv[d.b.Layout.VenvMarker(r.Venv)] = true
		}
	}
	keepVenv[d.b.Layout.VenvMarker(d.venv)] = true
	keep[d.dir] = true
	if err := removeAllBut(d.b.Layout.ReleasesDir(d.app.Name), keep); err != nil {
		return err
	}
	// Virtualenvs go with the releases that use them; .cache is pip's.
	keepVenv[filepath.Join(d.b.Layout.EnvironmentsDir(d.app.Name), ".cache")] = true
	return removeAllBut(d.b.Layout.EnvironmentsDir(d.app.Name), keepVenv)
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
