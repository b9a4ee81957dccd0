package builder

import (
	"context"
	"maps"
	"strings"

	"github.com/hasadna/conductor/queue"
)

// A code-only redeploy's processes start with collectstatic's interpreter,
// not after it has set Django up.
//
// The overlap (overlap.go) starts the new processes once the interpreter
// has said that migrate has nothing to apply, which it can tell only with
// Django set up: about 0.2 s, during which nothing else boots. When the
// new release's migration files are the serving release's (the digest
// extractTarGz takes), on the same virtualenv (the packages' migrations)
// and config (the database), migrate's plan is the one the serving
// release left: empty, unless the schema was changed by hand. The new
// processes then start at once and boot while the interpreter sets Django
// up. The serving release's processes run on that same schema already, so
// running the new code on it risks nothing they do not.
//
// The web processes get nothing from nginx before the switch, and their
// check asks nothing before collectstatic ended (waitStatic). The other
// process types (a worker takes jobs at once) start early only on a copy
// of the serving release's static files (staged.go), and start again if
// collectstatic's output differs. When the interpreter says there is
// something to apply after all, or cannot say, the early processes stop at
// once and start again after migrate, in the start step.

// startEarly tells whether this deploy's processes start beside
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

// startEarlyProcesses starts the web processes with collectstatic's
// interpreter, and the other types too when the static files are staged.
func (d *deployment) startEarlyProcesses(ctx context.Context, staged bool) error {
	what := "the web process boots"
	if staged {
		what = "the web and " + strings.Join(d.otherTypes(), ", ") + " processes boot"
	}
	d.log.Printf("       Migration files, packages and config as in v%d: %s beside collectstatic", d.previous.Number, what)
	if staged {
		d.log.Printf("       on a copy of v%d's static files, until collectstatic has written this release's", d.previous.Number)
	}
	if err := d.startWeb(ctx); err != nil {
		return err
	}
	d.early = true
	if staged {
		d.othersEarly = true
		return d.startOthersNow(ctx)
	}
	return nil
}

// stopEarly stops the processes that started beside collectstatic, for
// why, so that they start again in the start step.
func (d *deployment) stopEarly(ctx context.Context, why string) error {
	if !d.early {
		return nil
	}
	d.log.Printf("       %s: the processes that started beside collectstatic stop, and start again after it", why)
	// Nothing else runs on the new release's port yet.
	if err := d.clearPort(ctx); err != nil {
		return err
	}
	d.newWatcher, d.newWatchers, d.others = "", nil, nil
	d.webStarted, d.early, d.othersEarly = false, false, false
	return nil
}
