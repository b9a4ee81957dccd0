// Package supervisor keeps a process (Conductor's nginx, circusd) running:
// it restarts it when it dies. The process outlives Conductor: a stop,
// SIGKILL or upgrade of Conductor leaves it (and the apps behind it)
// serving, and the next start adopts it through its pid file instead of
// starting another. Stop ends one on purpose (`conductor stop-all`).
package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
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
	PidFile string           // where the child writes its pid: a running one is adopted

	// Ours tells whether the live process pid (named by PidFile) is this
	// child, started by Conductor for this same configuration (its
	// binary and config path, our uid). Only such a process is adopted,
	// or stopped when it does not answer; anything else is left alone.
	Ours func(pid int) bool
	// Ready (optional) tells whether an adopted process answers (circusd on
	// its control socket). One that does not is stopped and started afresh.
	Ready func(ctx context.Context) error

	mu      sync.Mutex
	proc    *os.Process
	adopted bool
	stopped chan struct{}
}

// Start adopts the running process PidFile names when it is ours and
// answers, or else starts the child; either way it then supervises it
// (restarting it when it dies) until ctx is done. Wait returns once
// supervision has ended: the process itself goes on running. The first
// start's error is returned.
func (c *Child) Start(ctx context.Context) error {
	c.stopped = make(chan struct{})
	if pid := c.running(); pid != 0 {
		if c.Ready == nil || c.Ready(ctx) == nil {
			slog.Info("adopting the running child a previous conductor left", "child", c.Name, "pid", pid)
			p, _ := os.FindProcess(pid)
			c.mu.Lock()
			c.proc, c.adopted = p, true
			c.mu.Unlock()
			go c.supervise(ctx, func() error { return waitGone(ctx, pid) })
			return nil
		}
		slog.Warn("a previous conductor's child does not answer: stopping it", "child", c.Name, "pid", pid)
		StopPid(pid, c.Stop, c.Grace)
	}
	cmd := c.command()
	if err := cmd.Start(); err != nil {
		return err
	}
	c.setProc(cmd.Process)
	go c.supervise(ctx, cmd.Wait)
	return nil
}

// Adopted tells whether Start found the process running and adopted it.
func (c *Child) Adopted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.adopted
}

// running is the pid PidFile names when that process is alive and Ours,
// or 0.
func (c *Child) running() int {
	pid := ReadPidFile(c.PidFile)
	if pid == 0 || c.Ours == nil || !Alive(pid) || !c.Ours(pid) {
		return 0
	}
	return pid
}

func (c *Child) command() *exec.Cmd {
	cmd := c.Command()
	if cmd.Stdout == nil {
		cmd.Stdout = os.Stderr
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	// Own session, no Pdeathsig: neither a Ctrl-C or hang-up at
	// Conductor's terminal nor Conductor's death reaches the child, which
	// goes on serving the apps until the next start adopts it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// ReadPidFile returns the pid a pid file names, or 0.
func ReadPidFile(path string) int {
	if path == "" {
		return 0
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// Alive tells whether pid is a live process (not a zombie).
func Alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S ...": the state follows the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X')
}

// Matches tells whether the live process pid runs as this process's user,
// from the binary exe (resolved; "" skips the check) and has every one of
// args as a whole word of its command line (nginx rewrites its command
// line to "nginx: master process BIN -p DIR -c CONF").
func Matches(pid int, exe string, args ...string) bool {
	proc := fmt.Sprintf("/proc/%d", pid)
	fi, err := os.Stat(proc)
	if err != nil {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		return false
	}
	if exe != "" {
		want, err1 := filepath.EvalSymlinks(exe)
		got, err2 := os.Readlink(proc + "/exe")
		if err1 != nil || err2 != nil || strings.TrimSuffix(got, " (deleted)") != want {
			return false
		}
	}
	raw, err := os.ReadFile(proc + "/cmdline")
	if err != nil {
		return false
	}
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(string(raw), func(r rune) bool { return r == 0 || r == ' ' }) {
		words[w] = true
	}
	for _, a := range args {
		if !words[a] {
			return false
		}
	}
	return true
}

// StopPid signals pid with sig until it exits (circusd can drop a SIGTERM
// that arrives while it is busy with a command), and kills its process
// group after grace. It returns once pid is gone.
func StopPid(pid int, sig syscall.Signal, grace time.Duration) {
	deadline := time.Now().Add(grace)
	_ = syscall.Kill(pid, sig)
	resend := time.Now().Add(2 * time.Second)
	for Alive(pid) {
		if time.Now().After(deadline) {
			slog.Warn("process did not stop in time; killing", "pid", pid)
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(time.Hour)
		} else if time.Now().After(resend) {
			_ = syscall.Kill(pid, sig)
			resend = time.Now().Add(2 * time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitGone returns once pid (not our child: adopted) has exited, or ctx is
// done. The kernel tells a non-parent nothing, so it polls.
func waitGone(ctx context.Context, pid int) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for Alive(pid) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return fmt.Errorf("adopted process %d exited", pid)
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

// Wait blocks until supervision has ended after ctx ended. The process
// goes on running.
func (c *Child) Wait() { <-c.stopped }

// supervise restarts the child whenever wait says it exited, until ctx is
// done; then it leaves the child running.
func (c *Child) supervise(ctx context.Context, wait func() error) {
	defer close(c.stopped)
	backoff := time.Second
	for {
		done := make(chan error, 1)
		go func() { done <- wait() }()
		select {
		case <-ctx.Done():
			return
		case err := <-done:
			if ctx.Err() != nil {
				return
			}
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
			cmd := c.command()
			if err := cmd.Start(); err != nil {
				slog.Error("restart child", "child", c.Name, "err", err)
				continue
			}
			c.setProc(cmd.Process)
			wait = cmd.Wait
			break
		}
	}
}
