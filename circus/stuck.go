package circus

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stuckAfter is how long a command may wait for circusd before circusd is
// asked where it is: an rm waits for its processes' graceful_timeout
// (GracefulTimeout) at most, a reloadconfig for each watcher it stops.
const stuckAfter = 3 * GracefulTimeout

// dumpStacks has circusd write every thread's Python stack to its log
// (conductor_hooks registers SIGUSR2 with faulthandler), at most once a
// minute: a circusd that stopped answering says where it is stuck. Only a
// circusd that catches SIGUSR2 gets it: one that has not imported
// conductor_hooks yet (no app watcher loaded, or started by an older
// Conductor) would die of it.
func (c *Circus) dumpStacks(why string) {
	c.dumpMu.Lock()
	defer c.dumpMu.Unlock()
	if time.Since(c.lastDumped) < time.Minute {
		return
	}
	c.lastDumped = time.Now()
	pid, err := c.Pid()
	if err != nil || (!c.System && !c.Ours(pid)) || !catches(pid, syscall.SIGUSR2) {
		return
	}
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		return
	}
	slog.Warn("circusd is slow to answer: its stacks are in its log", "why", why, "pid", pid, "log", filepath.Join(c.Dir, "circusd.log"))
}

// catches tells whether process pid has a handler for sig (SigCgt in
// /proc/<pid>/status).
func catches(pid int, sig syscall.Signal) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}
