// Package supervisor keeps a child process (Conductor's nginx, circusd)
// running: it restarts it when it dies and stops it gracefully on shutdown.
package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Child is a supervised process.
type Child struct {
	Name    string
	Command func() *exec.Cmd // builds a fresh command for each start
	Stop    syscall.Signal   // graceful stop signal
	Grace   time.Duration    // how long Stop may take before SIGKILL
	PidFile string           // where the child writes its pid, to stop a stale one left by a killed conductor

	mu      sync.Mutex
	proc    *os.Process
	stopped chan struct{}
}

// Start starts the child and supervises it until ctx is done; Wait returns
// once it has stopped. The first start's error is returned.
func (c *Child) Start(ctx context.Context) error {
	c.stopStale()
	cmd := c.command()
	if err := cmd.Start(); err != nil {
		return err
	}
	c.setProc(cmd.Process)
	c.stopped = make(chan struct{})
	go c.supervise(ctx, cmd)
	return nil
}

func (c *Child) command() *exec.Cmd {
	cmd := c.Command()
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stderr
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	// Own process group: a Ctrl-C at the terminal reaches Conductor, which
	// then stops children in order, instead of killing them all at once.
	// Pdeathsig: if conductor itself is killed, the kernel stops the child
	// too, instead of leaving it holding ports and sockets.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: c.Stop}
	return cmd
}

// stopStale stops a child of the same kind that a previous, killed conductor
// left running (its pid file names a live process with the same program).
func (c *Child) stopStale() {
	if c.PidFile == "" {
		return
	}
	raw, err := os.ReadFile(c.PidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(c.Name)) {
		return
	}
	slog.Warn("stopping a stale child left by a previous run", "child", c.Name, "pid", pid)
	_ = syscall.Kill(pid, c.Stop)
	deadline := time.Now().Add(c.Grace)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func (c *Child) setProc(p *os.Process) {
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
}

// Signal sends sig to the running child.
func (c *Child) Signal(sig os.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return os.ErrProcessDone
	}
	return c.proc.Signal(sig)
}

// Pid returns the running child's pid, or 0.
func (c *Child) Pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil {
		return 0
	}
	return c.proc.Pid
}

// Wait blocks until the child has been stopped after ctx ended.
func (c *Child) Wait() { <-c.stopped }

func (c *Child) supervise(ctx context.Context, cmd *exec.Cmd) {
	defer close(c.stopped)
	backoff := time.Second
	for {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-ctx.Done():
			c.stop(cmd, done)
			return
		case err := <-done:
			slog.Error("child exited; restarting", "child", c.Name, "err", err, "after", backoff)
		}
		c.setProc(nil)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
			cmd = c.command()
			if err := cmd.Start(); err != nil {
				slog.Error("restart child", "child", c.Name, "err", err)
				continue
			}
			c.setProc(cmd.Process)
			break
		}
	}
}

// stop signals the child until it exits (circusd can drop a SIGTERM that
// arrives while it is busy with a command), then kills it after Grace.
func (c *Child) stop(cmd *exec.Cmd, done <-chan error) {
	deadline := time.After(c.Grace)
	resend := time.NewTicker(2 * time.Second)
	defer resend.Stop()
	_ = cmd.Process.Signal(c.Stop)
	for {
		select {
		case <-done:
			return
		case <-resend.C:
			_ = cmd.Process.Signal(c.Stop)
		case <-deadline:
			slog.Warn("child did not stop in time; killing", "child", c.Name)
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return
		}
	}
}
