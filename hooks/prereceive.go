package hooks

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/queue"
)

// Environment variables the git server sets for the hook process.
const (
	EnvNATSURL   = "CONDUCTOR_NATS_URL"
	EnvNATSToken = "CONDUCTOR_NATS_TOKEN"
	EnvNATSCA    = "CONDUCTOR_NATS_CA"
	EnvApp       = "CONDUCTOR_APP"
	EnvUser      = "CONDUCTOR_USER"
	EnvHost      = "CONDUCTOR_HOST"
)

const zeroRev = "0000000000000000000000000000000000000000"

// RefUpdate is one line of pre-receive input.
type RefUpdate struct {
	Old, New, Ref string
}

// ParseRefUpdates reads all of pre-receive's stdin ("<old> <new> <ref>" per
// line). Unlike gitkit's Receiver it keeps every line and the full ref name.
func ParseRefUpdates(r io.Reader) ([]RefUpdate, error) {
	var ups []RefUpdate
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			return nil, fmt.Errorf("malformed ref update %q", sc.Text())
		}
		ups = append(ups, RefUpdate{Old: f[0], New: f[1], Ref: f[2]})
	}
	return ups, sc.Err()
}

// PreReceive is the hook: it checks every ref update and, for the deploy
// branch, deploys the new revision and waits for the outcome. A non-nil error
// makes git reject the whole push, so the branch does not move.
type PreReceive struct {
	NATS    queue.Conn
	App     string
	User    string
	Host    string
	RepoDir string
	Out     io.Writer // git relays it to the pusher as "remote:" lines
}

// Run handles the ref updates read from stdin.
func (h *PreReceive) Run(ctx context.Context, stdin io.Reader) error {
	ups, err := ParseRefUpdates(stdin)
	if err != nil {
		return err
	}
	var deploy *RefUpdate
	for i, up := range ups {
		if err := conductor.ValidateRef(up.Ref); err != nil {
			return err
		}
		if conductor.IsDeployBranch(up.Ref) {
			if up.New == zeroRev {
				return conductor.Errorf(conductor.EINVALID, "deleting the deploy branch %s is not allowed", up.Ref)
			}
			deploy = &ups[i]
		}
	}
	if deploy == nil {
		return nil // other branches and tags are stored, not deployed
	}
	job := &queue.Job{
		ID: NewJobID(), App: h.App, Host: h.Host, Rev: deploy.New, Ref: deploy.Ref,
		Pusher: h.User, CreatedAt: time.Now().UTC(),
	}
	// The pusher hears first, then the hook dials NATS (a TLS handshake
	// and a JetStream request, a few ms).
	fmt.Fprintf(h.Out, "-----> Deploying %s (%s) as %s\n", h.App, shortRev(job.Rev), job.ID)
	q, err := queue.Dial(ctx, h.NATS, "conductor-hook")
	if err != nil {
		return err
	}
	defer q.Close()
	return Submit(ctx, q, h.RepoDir, job, h.Out)
}

func shortRev(rev string) string {
	if len(rev) > 8 {
		return rev[:8]
	}
	return rev
}
