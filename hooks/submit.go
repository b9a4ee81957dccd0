// Package hooks is the git side of a deploy: the pre-receive hook that turns
// a push into a deploy job, and Submit, which queues a job for a revision and
// streams its log back to whoever asked (a pusher or an SSH command).
package hooks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/termtext"
	"github.com/hasadna/conductor/queue"
)

// NewJobID returns a sortable, unique job id: UTC time plus random bits.
func NewJobID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

// Submit archives rev from repoDir, queues the job and writes the job's log to
// out until it ends. It returns an *conductor.Error when the deploy failed.
func Submit(ctx context.Context, q *queue.Queue, repoDir string, job *queue.Job, out io.Writer) error {
	if err := archive(ctx, q, repoDir, job); err != nil {
		return err
	}
	return Run(ctx, q, job, out)
}

// Run queues a job that needs no source archive (a rollback) or whose
// archive is stored, and writes its log to out until it ends.
func Run(ctx context.Context, q *queue.Queue, job *queue.Job, out io.Writer) error {
	if err := q.Publish(ctx, job); err != nil {
		return err
	}
	// The job waits in the queue for its host; say so rather than hang.
	if _, err := q.Host(ctx, job.Host); conductor.ErrorCode(err) == conductor.ENOTFOUND {
		fmt.Fprintf(out, "-----> Host %s of %s is down: the job waits in the queue until its worker is back\n", job.Host, job.App)
	}
	// Build output is the app's (pip, setup.py, release:): terminal
	// escapes in it never reach the pusher's terminal.
	// The push ends once the release is live: retiring the previous one
	// (draining its requests) goes on after it, in the build log.
	res, err := q.FollowLive(ctx, job.ID, func(line string) { fmt.Fprintln(out, termtext.Sanitize(line)) })
	if err != nil {
		return err
	}
	if !res.OK {
		what := "deploy"
		if job.Kind == queue.KindRollback {
			what = "rollback"
		}
		return conductor.Errorf(conductor.EINVALID, "%s of %s failed: %s", what, job.App, res.Message)
	}
	return nil
}

// archive streams `git archive` of the revision into the object store. In a
// pre-receive hook the new objects are quarantined; git passes the hook the
// environment that lets this child git see them.
func archive(ctx context.Context, q *queue.Queue, repoDir string, job *queue.Job) error {
	// git archive is re-run, not its output kept, when NATS is in
	// transition (a cluster node died and streams elect leaders).
	return queue.RetryTransient(ctx, "archive "+job.ID, func() error { return archiveOnce(ctx, q, repoDir, job) })
}

func archiveOnce(ctx context.Context, q *queue.Queue, repoDir string, job *queue.Job) error {
	cmd := exec.CommandContext(ctx, "git", "archive", "--format=tar.gz", job.Rev)
	cmd.Dir = repoDir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("git archive: %w", err)
	}
	putErr := q.PutArchive(ctx, job.ID, pipe)
	_, _ = io.Copy(io.Discard, pipe)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("git archive %s: %w: %s", job.Rev, err, strings.TrimSpace(stderr.String()))
	}
	return putErr
}
