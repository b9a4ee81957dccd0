package builder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/process"
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
	for _, app := range apps {
		keep := map[string]bool{}
		cur, err := b.Store.CurrentRelease(ctx, app.ID)
		if err == nil {
			keep[webWatcher(app.Name, cur.Port)] = true
			pf, err := process.ReadProcfile(filepath.Join(cur.Dir, "Procfile"))
			if err != nil {
				return fmt.Errorf("reconcile %s: %w", app.Name, err)
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
