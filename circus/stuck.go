package circus

import (
	"log/slog"
	"path/filepath"
	"syscall"
	"time"
)

// stuckAfter is how long a command may wait for circusd before circusd is
// asked where it is: an rm waits for its processes' graceful_timeout
// (GracefulTimeout) at most, a reloadconfig for each watcher it stops.
const stuckAfter = 3 * GracefulTimeout

// dumpStacks has circusd write every thread's Python stack to its log
// (conductor_hooks registers SIGUSR2 with faulthandler), at most once a
// minute: a circusd that stopped answering says where it is stuck. A
// circusd that never loaded a Conductor watcher ignores the signal.
func (c *Circus) dumpStacks(why string) {
	c.dumpMu.Lock()
	defer c.dumpMu.Unlock()
	if time.Since(c.lastDumped) < time.Minute {
		return
	}
	c.lastDumped = time.Now()
	pid, err := c.Pid()
	if err != nil || (!c.System && !c.Ours(pid)) {
		return
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		return
	}
	slog.Warn("circusd is slow to answer: its stacks are in its log", "why", why, "pid", pid, "log", filepath.Join(c.Dir, "circusd.log"))
}
