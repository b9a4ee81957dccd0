package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/provision"
)

// Reconcile runs at startup, before jobs are taken. A conductor killed in
// the middle of a deploy leaves the deploy "running" and may leave the new
// release's watcher behind; the serving release was never touched, so
// everything that is not the serving release's is undone here.
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
		if err := b.reconcileApp(ctx, app, installed); err != nil {
			slog.Error("reconcile: skipped an app whose files are broken; the other apps are served", "app", app.Name, "err", err)
		}
		if err := b.reconcileRedis(ctx, app, installed); err != nil { // redis.go
			slog.Error("reconcile: could not start the app's Redis", "app", app.Name, "err", err)
		}
	}
	return nil
}

// reconcileApp secures one app's directories (Conductor versions before
// tenant isolation left logs/ and run/ to the app user) and removes the
// watchers that are not its serving release's.
func (b *Builder) reconcileApp(ctx context.Context, app *conductor.App, installed []string) error {
	keep := map[string]bool{redisWatcher(app.Name): true} // redis:create's server: no release's
	cur, err := b.Store.CurrentRelease(ctx, app.ID)
	if err == nil {
		if err := b.secureDirs(ctx, app); err != nil {
			return err
		}
		keep[webWatcher(app.Name, cur.Port)] = true
		pf, err := process.ReadProcfile(filepath.Join(cur.Dir, "Procfile"))
		if err != nil {
			return fmt.Errorf("%s's Procfile: %w", cur.Dir, err)
		}
		for _, typ := range pf.Types() {
			if typ != "web" {
				keep[typeWatcher(app.Name, typ)] = true
			}
		}
	} else if conductor.ErrorCode(err) != conductor.ENOTFOUND {
		return err
	}
	for _, w := range installed {
		if !strings.HasPrefix(w, app.Name+"_") || keep[w] {
			continue
		}
		slog.Warn("removing a watcher left by an interrupted deploy", "app", app.Name, "watcher", w)
		if err := b.Circus.Remove(ctx, w); err != nil {
			return err
		}
		spec := filepath.Join(b.Layout.RunDir(app.Name), w+".json")
		if err := os.Remove(spec); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
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
