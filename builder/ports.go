package builder

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/procnet"
)

// portMover is the state's way to move an app's port (the SQLite store and
// a worker's natsstore client have it).
type portMover interface {
	MoveAppPort(ctx context.Context, appID int64, from int, candidates []int) (int, error)
}

// checkIdlePort makes sure nothing but Conductor's own processes listens on
// the port the new release is about to take (another program, another
// Conductor on the host): if something does, the release moves to a free
// port. A watcher a failed deploy left on it is circusd's and stays (start
// removes it).
func (d *deployment) checkIdlePort(ctx context.Context) error {
	var roots []int
	if pid, err := d.b.Circus.Pid(); err == nil {
		roots = []int{pid}
	}
	foreign, _, err := procnet.Foreign(d.port, roots)
	if err != nil {
		slog.Warn("cannot tell who listens on the app's port", "app", d.app.Name, "port", d.port, "err", err)
		return nil
	}
	if len(foreign) == 0 {
		return nil
	}
	return d.movePort(ctx, "another program listens on it")
}

// errPortTaken is confirmPort's answer when another program answered the
// health check: checkRelease moves the release to a free port once the
// step's other checks have ended (moveAndRecheck).
var errPortTaken = errors.New("another program answered the health check on the release's port")

// confirmPort runs once the health check has passed: the socket listening on
// the new release's port must be its web watcher's (a process of it or a
// descendant: gunicorn's workers are the master's children), or the answer
// came from another program that holds the port, and the new processes
// never bound it (errPortTaken; a second time, after a move, fails).
func (d *deployment) confirmPort(ctx context.Context) error {
	pids, err := d.b.Circus.Pids(ctx, d.newWatcher)
	if err != nil {
		return err
	}
	foreign, listening, err := procnet.Foreign(d.port, pids)
	if err != nil {
		slog.Warn("cannot tell who listens on the app's port", "app", d.app.Name, "port", d.port, "err", err)
		return nil
	}
	if listening && len(foreign) == 0 {
		return nil
	}
	if d.portMoved {
		return failf("health check of the new release failed: another program answers on port %d, not the release's processes", d.port)
	}
	return errPortTaken
}

// moveAndRecheck follows errPortTaken, once every check of the step has
// ended (the other types' check watches the watchers removed here):
// everything started on the taken port goes, the release moves to a free
// port, starts there and is checked again.
func (d *deployment) moveAndRecheck(ctx context.Context) error {
	if err := d.clearPort(ctx); err != nil {
		return err
	}
	d.newWatcher, d.webStarted, d.early, d.others, d.othersEarly = "", false, false, nil, false
	if err := d.movePort(ctx, "another program answered the health check on it"); err != nil {
		return err
	}
	if err := d.start(ctx); err != nil {
		return err
	}
	return d.checkRelease(ctx)
}

// movePort moves the app's port d.port to the lowest free port of the
// host's range, records it, and says so in the push output.
func (d *deployment) movePort(ctx context.Context, why string) error {
	from := d.port
	mover, ok := d.b.Store.(portMover)
	r := d.b.Ports
	if !ok || r.From == 0 {
		return failf("port %d of %s is taken (%s), and this host cannot move the app to another port", from, d.app.Name, why)
	}
	var batch []int
	try := func() (int, error) {
		p, err := mover.MoveAppPort(ctx, d.app.ID, from, batch)
		batch = batch[:0]
		if conductor.ErrorCode(err) == conductor.ECONFLICT { // other apps hold them all
			return 0, nil
		}
		return p, err
	}
	for p := r.From; p <= r.To; p++ {
		if p == d.app.Ports[0] || p == d.app.Ports[1] || !portFree(p) {
			continue
		}
		batch = append(batch, p)
		if len(batch) < 32 && p < r.To {
			continue
		}
		to, err := try()
		if err != nil {
			return err
		}
		if to == 0 {
			continue
		}
		for i := range d.app.Ports {
			if d.app.Ports[i] == from {
				d.app.Ports[i] = to
			}
		}
		d.port = to
		d.portMoved = true
		d.log.Printf("       Port %d is taken (%s): this release moves to port %d", from, why, to)
		return nil
	}
	return failf("port %d of %s is taken (%s), and no port of %d-%d is free", from, d.app.Name, why, r.From, r.To)
}

// portFree tells whether nothing listens on port (any address, IPv4 or
// IPv6) and 127.0.0.1:port can be bound, as the app's processes will.
func portFree(port int) bool {
	if socks, err := procnet.Listening(port); err != nil || len(socks) > 0 {
		return false
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
