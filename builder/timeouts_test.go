package builder

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

func TestRunStepTimeout(t *testing.T) {
	d := &deployment{app: &conductor.App{Name: "slow"}, timeouts: conductor.Timeouts{Release: 50 * time.Millisecond}}
	wait := func(_ *deployment, ctx context.Context) error {
		<-ctx.Done()
		return errors.New("release exited with status -1")
	}

	err := d.runStep(context.Background(), step{name: "release", run: wait})
	if msg := conductor.ErrorMessage(err); msg != "release phase timed out after 50ms (apps:set slow timeout.release=<duration> allows more)" {
		t.Errorf("timed out release: %q", msg)
	}
	// A cancel (deploys:cancel, serve stopping) is not reported as a timeout.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	if err := d.runStep(ctx, step{name: "release", run: wait}); strings.Contains(conductor.ErrorMessage(err), "timed out") {
		t.Errorf("canceled release: %v", err)
	}
	// Steps without a bound get none; a step that ends in time keeps its error.
	if err := d.runStep(context.Background(), step{name: "start", run: func(_ *deployment, ctx context.Context) error {
		if _, ok := ctx.Deadline(); ok {
			return errors.New("start has a deadline")
		}
		return nil
	}}); err != nil {
		t.Error(err)
	}
	boom := errors.New("boom")
	if err := d.runStep(context.Background(), step{name: "release", run: func(*deployment, context.Context) error { return boom }}); err != boom {
		t.Errorf("failed release: %v, want boom", err)
	}
	if got := (&deployment{}).checkTimeout(); got != time.Minute {
		t.Errorf("default check timeout %s, want 1m", got)
	}
}
