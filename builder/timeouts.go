package builder

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hasadna/conductor"
)

// Every step that runs the app's code has a time bound (apps:set
// timeout.*, conductor.AppSettings): when it passes, the step's context
// ends, which kills the step's whole process group and build cgroup
// (runInGroup), and the deploy fails and cleans up like any other failure
// before the switch, leaving the serving release as it was.

// stepTimeouts names, by step, the bound and what the message calls it.
var stepTimeouts = map[string]struct {
	what, key string
	of        func(conductor.Timeouts) time.Duration
}{
	"virtualenv":    {"installing dependencies", "timeout.virtualenv", func(t conductor.Timeouts) time.Duration { return t.Virtualenv }},
	"pre_compile":   {"bin/pre_compile", "timeout.build", func(t conductor.Timeouts) time.Duration { return t.Build }},
	"assets":        {"the npm build", "timeout.build", func(t conductor.Timeouts) time.Duration { return t.Build }},
	"collectstatic": {"collectstatic", "timeout.build", func(t conductor.Timeouts) time.Duration { return t.Build }},
	"post_compile":  {"bin/post_compile", "timeout.build", func(t conductor.Timeouts) time.Duration { return t.Build }},
	"release":       {"release phase", "timeout.release", func(t conductor.Timeouts) time.Duration { return t.Release }},
	// check bounds itself (check.go) with timeout.check, to report the
	// release's last answer and log lines.
}

// errStepTimeout is the cause of a step's context that ran out of time.
var errStepTimeout = errors.New("step timed out")

// loadTimeouts reads the app's timeouts when the job starts to run.
func (d *deployment) loadTimeouts(ctx context.Context) error {
	settings, err := d.b.Store.AppSettings(ctx, d.app.ID)
	if err != nil {
		return fmt.Errorf("read the settings of %s: %w", d.app.Name, err)
	}
	d.timeouts = conductor.TimeoutsOf(settings)
	return nil
}

// runStep runs one step within its time bound, if it has one; a step that
// ran out of time fails with what it was doing and for how long.
func (d *deployment) runStep(ctx context.Context, s step) error {
	bound, ok := stepTimeouts[s.name]
	if !ok || bound.of(d.timeouts) <= 0 {
		return s.run(d, ctx)
	}
	limit := bound.of(d.timeouts)
	sctx, cancel := context.WithTimeoutCause(ctx, limit, errStepTimeout)
	defer cancel()
	err := s.run(d, sctx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(sctx), errStepTimeout) {
		return failf("%s timed out after %s (apps:set %s %s=<duration> allows more)", bound.what, limit, d.app.Name, bound.key)
	}
	return err
}

// checkTimeout bounds the health check (timeout.check).
func (d *deployment) checkTimeout() time.Duration {
	if d.timeouts.Check > 0 {
		return d.timeouts.Check
	}
	return conductor.TimeoutsOf(nil).Check
}
