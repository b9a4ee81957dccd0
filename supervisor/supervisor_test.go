package supervisor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// sleeper starts `sleep secs` as a child of the test, reaped when it exits.
func sleeper(t *testing.T, secs string) int {
	t.Helper()
	cmd := exec.Command("sleep", secs)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	return cmd.Process.Pid
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMatches(t *testing.T) {
	pid := sleeper(t, "300")
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	// The child runs sleep once it has exec'd, which may be after start.
	waitUntil(t, "Matches(sleep 300)", func() bool { return Matches(pid, sleep, "300") })
	if Matches(pid, "", "301") || Matches(pid, "", "30") {
		t.Errorf("Matches took another argument, or part of one")
	}
	if Matches(pid, "/bin/cat", "300") {
		t.Errorf("Matches took another binary")
	}
	if Matches(1<<22, "", "") {
		t.Errorf("Matches took a process that does not exist")
	}
}

// TestAdopt: a running process the pid file names and Ours accepts is
// adopted, not started again; when it dies the supervisor starts a fresh
// one; the end of supervision leaves the child running; a process Ours
// refuses is left alone.
func TestAdopt(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	old := sleeper(t, "300")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(old)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Child{
		Name:    "sleep",
		Command: func() *exec.Cmd { return exec.Command("sleep", "301") },
		Stop:    syscall.SIGTERM, Grace: 5 * time.Second, PidFile: pidFile,
		Ours: func(pid int) bool { return Matches(pid, "", "300") || Matches(pid, "", "301") },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.Adopted() || c.Pid() != old {
		t.Fatalf("adopted %v, pid %d; want the running %d adopted", c.Adopted(), c.Pid(), old)
	}
	_ = syscall.Kill(old, syscall.SIGKILL)
	waitUntil(t, "a fresh child after the adopted one died", func() bool { p := c.Pid(); return p != 0 && p != old })
	fresh := c.Pid()
	cancel()
	c.Wait()
	if !Alive(fresh) {
		t.Fatalf("the child %d stopped with its supervision", fresh)
	}
	StopPid(fresh, syscall.SIGTERM, 5*time.Second)
	waitUntil(t, "the stopped child to be reaped", func() bool { return !Alive(fresh) })

	// Not ours: left running, and a new child starts.
	other := sleeper(t, "302")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(other)), 0o644); err != nil {
		t.Fatal(err)
	}
	c2 := &Child{Name: "sleep", Command: c.Command, Stop: syscall.SIGTERM, Grace: 5 * time.Second, PidFile: pidFile, Ours: c.Ours}
	ctx2, cancel2 := context.WithCancel(context.Background())
	if err := c2.Start(ctx2); err != nil {
		t.Fatal(err)
	}
	if c2.Adopted() || c2.Pid() == other || !Alive(other) {
		t.Errorf("a process that is not ours: adopted %v, pid %d (other %d alive %v)", c2.Adopted(), c2.Pid(), other, Alive(other))
	}
	p := c2.Pid()
	cancel2()
	c2.Wait()
	StopPid(p, syscall.SIGTERM, 5*time.Second)
}
