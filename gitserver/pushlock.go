package gitserver

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// pushLocks runs one receive-pack per app at a time. git checks a branch's
// old value only when it updates the ref, after the pre-receive hook has
// deployed: two overlapping pushes to one branch would both deploy and the
// second would then fail to move the branch, leaving it behind the serving
// release. Serializing them makes the second push start from the first's
// result, so git itself refuses it if it is not a fast-forward.
type pushLocks struct {
	mu    sync.Mutex
	turns map[string]chan struct{}
	users map[string]string // who holds each app's turn, for the waiting message
}

// acquire waits for the app's turn, telling w who it waits behind. The
// returned func ends the turn.
func (p *pushLocks) acquire(ctx context.Context, app, user string, w io.Writer) (func(), error) {
	p.mu.Lock()
	if p.turns == nil {
		p.turns, p.users = map[string]chan struct{}{}, map[string]string{}
	}
	turn, ok := p.turns[app]
	if !ok {
		turn = make(chan struct{}, 1)
		p.turns[app] = turn
	}
	holder := p.users[app]
	p.mu.Unlock()
	select {
	case turn <- struct{}{}:
	default:
		fmt.Fprintf(w, "-----> Waiting for a push to %s by %s to finish\n", app, holder)
		select {
		case turn <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.mu.Lock()
	p.users[app] = user
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		delete(p.users, app)
		p.mu.Unlock()
		<-turn
	}, nil
}
