package builder

import (
	"errors"
	"time"
)

// Observer is told what the builder measures (package metrics implements
// it). Builder.Observe nil: nothing is told.
type Observer interface {
	// Queued: a job was taken and waits for its app's turn and a slot;
	// Started (with the time since it was submitted) or Unqueued (it
	// ended while waiting) follows.
	Queued()
	Started(waited time.Duration)
	Unqueued()
	// StepDone: a pipeline step completed, in took.
	StepDone(step string, took time.Duration)
	// DeployDone: a job ended: kind is the job's (queue.Kind*), outcome
	// succeeded, failed or canceled, took is from its start to its end.
	DeployDone(kind, outcome string, took time.Duration)
}

// outcome names how a job ended for the Observer.
func outcome(err error) string {
	switch {
	case err == nil:
		return "succeeded"
	case errors.Is(err, errCanceled):
		return "canceled"
	default:
		return "failed"
	}
}
