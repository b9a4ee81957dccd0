package builder

import (
	"context"
	"io"
	"time"
)

// When migrate has nothing to apply, no schema changes: the new release's
// processes need not wait for collectstatic and migrate. The collectstatic
// step then returns as soon as the interpreter (manage.go) said so, the
// release step tells it to go on to migrate after collectstatic, and the
// start step starts the web processes while both run. The check step waits
// for them before the switch (awaitRunner).
//
// Nothing may use the release's static files before collectstatic ended:
// Django's manifest storage loads staticfiles.json once per process, and
// a process that rendered {% static %} sooner would keep a half-written
// manifest. So the web check asks nothing before then (waitStatic), and
// the other process types (a Celery worker could render an email at once)
// start only then (collectstaticDone), unless they started on a copy of
// the serving release's static files (staged.go). nginx serves /static/ from the
// release's directory, so the web process never serves those files
// itself. A failure of either command still fails the deploy before the
// switch, with its output, and the serving release stays.
//
// The web processes' boot (a Django import, gunicorn's) runs side by side
// with collectstatic's copying and with migrate, instead of after both.

// overlapFits: the deploy pipeline runs release, start and check in a row
// after collectstatic, with nothing between them that runs a build
// command (which would end the interpreter: adjacent).
var overlapFits bool

func init() {
	overlapFits = adjacent(pipeline, "collectstatic", "release", "post_compile") &&
		adjacent(pipeline, "release", "check", "start")
}

// overlapping tells whether collectstatic and migrate run while the
// processes start.
func (d *deployment) overlapping() bool { return d.runner != nil && !d.overlapStarted.IsZero() }

// migrateAfterCollectstatic is the release step of an overlapping deploy:
// the interpreter runs migrate once collectstatic is done, and the step
// returns at once.
func (d *deployment) migrateAfterCollectstatic() error {
	// A write that fails means the interpreter has ended (collectstatic
	// failed): awaitRunner reports that.
	_, d.runner.askErr = io.WriteString(d.runner.stdin, "migrate\n")
	d.runner.stdin.Close()
	d.log.Printf("       migrate runs after collectstatic, while the new processes start")
	return nil
}

// waitStatic waits, in an overlapping deploy, until collectstatic ended
// well, before the web check asks the new release anything.
func (d *deployment) waitStatic(ctx context.Context) error {
	if !d.overlapping() {
		return nil
	}
	select {
	case <-d.runner.ready:
		return nil
	case <-ctx.Done(): // awaitRunner failed, or the deploy ended
		return ctx.Err()
	}
}

// collectstaticDone waits, in the start step of an overlapping deploy,
// until collectstatic ended well; if the interpreter ended first, it
// returns its failure (awaitRunner).
func (d *deployment) collectstaticDone(ctx context.Context) error {
	if !d.overlapping() {
		return nil
	}
	select {
	case <-d.runner.ready:
		return nil
	case <-d.runner.exited:
		return d.awaitRunner(ctx)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitRunner waits, in the check step of an overlapping deploy, for
// collectstatic and migrate to end, and logs their output. Each keeps its
// time bound (timeout.build, timeout.release), counted together from the
// collectstatic step.
func (d *deployment) awaitRunner(ctx context.Context) error {
	if !d.overlapping() {
		return nil
	}
	r := d.runner
	var timeout <-chan time.Time
	if d.timeouts.Build > 0 && d.timeouts.Release > 0 {
		t := time.NewTimer(time.Until(d.overlapStarted.Add(d.timeouts.Build + d.timeouts.Release)))
		defer t.Stop()
		timeout = t.C
	}
	what := func() string {
		select {
		case <-r.ready:
			return "migrate"
		default:
			return "collectstatic"
		}
	}
	var err error
	select {
	case err = <-r.done:
		d.runner = nil
		switch {
		case err != nil:
			err = failf("%s failed: %v", what(), err)
		case what() == "collectstatic":
			err = failf("collectstatic failed: python exited before collectstatic ended")
		case r.askErr != nil:
			err = failf("migrate did not run: %v", r.askErr)
		}
	case <-timeout:
		what := what()
		d.stopRunner()
		err = failf("%s timed out after %s (apps:set %s timeout.build=<duration> and timeout.release=<duration> allow more)",
			what, d.timeouts.Build+d.timeouts.Release, d.app.Name)
	case <-ctx.Done():
		d.stopRunner()
		return ctx.Err()
	}
	d.log.Printf("       collectstatic and migrate, run while the processes started (%s):", time.Since(d.overlapStarted).Round(time.Millisecond))
	_, _ = d.log.Write(r.held.Bytes())
	return err
}
