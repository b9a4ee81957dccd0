package builder

import (
	"context"
	"maps"
	"slices"

	"github.com/hasadna/conductor/queue"
)

// A code-only redeploy's web processes start with collectstatic's
// interpreter, not after it has set Django up.
//
// The overlap (overlap.go) starts the new processes once the interpreter
// has said that migrate has nothing to apply, which it can tell only with
// Django set up: about 0.2 s, during which nothing else boots. When the
// new release's migration files are the serving release's (the digest
// extractTarGz takes), on the same virtualenv (the packages' migrations)
// and config (the database), migrate's plan is the one the serving
// release left: empty, unless the schema was changed by hand. The web
// processes then start at once and boot while the interpreter sets Django
// up. The serving release's processes run on that same schema already, so
// booting the new code on it risks nothing they do not.
//
// Only the web processes start early: nginx sends them nothing before the
// switch, and their check asks nothing before collectstatic ended
// (waitStatic). The other process types (a worker takes jobs at once)
// still wait for the plan and for collectstatic. When the interpreter says
// there is something to apply after all, or cannot say, the early web
// processes stop at once and start again after migrate, in the start step.

// startEarly tells whether this deploy's web processes start beside
// collectstatic.
func (d *deployment) startEarly() bool {
	p := d.previous
	if d.job.Kind != queue.KindDeploy || p == nil || !overlapFits {
		return false
	}
	if _, ok := d.procfile["web"]; !ok {
		return false
	}
	return d.migrations != "" && p.Migrations == d.migrations && p.Venv == d.venv && maps.Equal(p.Config, d.config)
}

// startWebEarly starts the web processes with collectstatic's interpreter.
func (d *deployment) startWebEarly(ctx context.Context) error {
	d.log.Printf("       Migration files, packages and config as in v%d: the web process boots beside collectstatic", d.previous.Number)
	if err := d.startWeb(ctx); err != nil {
		return err
	}
	d.early = true
	return nil
}

// stopEarlyWeb stops web processes that started beside collectstatic, when
// migrate has something to apply after all (why), so that they start
// after it.
func (d *deployment) stopEarlyWeb(ctx context.Context, why string) error {
	if !d.early {
		return nil
	}
	d.early, d.webStarted = false, false
	name := d.newWatcher
	d.newWatcher = ""
	d.log.Printf("       %s: the web process stops, and starts again after migrate", why)
	if err := d.removeWatcher(ctx, name); err != nil {
		return err
	}
	d.newWatchers = slices.DeleteFunc(d.newWatchers, func(w string) bool { return w == name })
	return nil
}
