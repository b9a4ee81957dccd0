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
	n, err := b.Store.FailUnfinishedDeploys(ctx, "conductor stopped during this deploy; the previous release kept serving")
	if err != nil {
		return err
	}
	if n > 0 {
		slog.Warn("marked interrupted deploys failed", "count", n)
	}
	apps, err := b.Store.ListApps(ctx)
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
