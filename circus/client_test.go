package circus

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// slowStopPy stops 50 ms after SIGTERM, writing when it exits; it writes
// "ready" once its handler is in place.
const slowStopPy = `#!/usr/bin/python3
import os, signal, sys, time
out = sys.argv[0] + ".exit"
def stop(*_):
    time.sleep(0.05)
    with open(out, "w") as f:
        f.write(repr(time.time()))
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
open(sys.argv[0] + ".ready", "w").close()
while True:
    time.sleep(60)
`

// TestRetireThenChangeWaitsOnCircus: a watcher retired without waiting
// keeps circusd busy until its process has stopped. The next changing
// command (adding a watcher) goes when circusd answers the rm, not after a
// fixed retry sleep: it returns well within the 250 ms the old client
// slept after each "arbiter is already running" answer. The best of three
// rounds, since other work shares this machine.
func TestRetireThenChangeWaitsOnCircus(t *testing.T) {
	c, dir, ctx := startCircus(t)
	best := time.Hour
	for round := 0; round < 3; round++ {
		name := "slow" + strconv.Itoa(round)
		script := filepath.Join(dir, name+".py")
		if err := os.WriteFile(script, []byte(slowStopPy), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := c.Add(ctx, Watcher{App: "t", Name: name, Cmd: script, Spec: "spec", WorkingDir: dir, LogFile: filepath.Join(dir, name+".log")}); err != nil {
			t.Fatal(err)
		}
		waitFile(t, script+".ready")
		start := time.Now()
		if err := c.Retire(ctx, name); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 40*time.Millisecond {
			t.Errorf("Retire took %v: it should not wait for the process", took)
		}
		if _, err := os.Stat(c.watcherFile(name)); !os.IsNotExist(err) {
			t.Errorf("the retired watcher's file is still there: %v", err)
		}
		next := "next" + strconv.Itoa(round)
		if err := c.Add(ctx, Watcher{App: "t", Name: next, Cmd: "/bin/sleep", Spec: "600", WorkingDir: dir, LogFile: filepath.Join(dir, next+".log")}); err != nil {
			t.Fatal(err)
		}
		added := time.Now()
		data, err := os.ReadFile(script + ".exit")
		if err != nil {
			t.Fatalf("the retired process did not stop before the next command went: %v", err)
		}
		exited, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
		if err != nil {
			t.Fatal(err)
		}
		after := added.Sub(time.Unix(0, int64(exited*1e9)))
		t.Logf("round %d: the next command returned %v after the retired process exited (%v after Retire)", round, after, added.Sub(start))
		best = min(best, after)
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := st[name]; ok {
			t.Errorf("circusd still runs %s: %v", name, st)
		}
		if st[next] != "active" {
			t.Errorf("circusd's status of %s: %q, want active", next, st[next])
		}
		if err := c.Remove(ctx, next); err != nil {
			t.Fatal(err)
		}
	}
	// circusd looks at a stopping process every 100 ms; the old client's
	// first retry came 250 ms after the rm, ~200 ms after this exit.
	if best > 170*time.Millisecond {
		t.Errorf("the command after a retire returned %v after the process exited (best of 3), want < 170ms", best)
	}
}

// TestIdleAndCanceledTurn: a call canceled while waiting its turn leaves
// the lane working, and Idle returns once the retired watcher is gone.
func TestIdleAndCanceledTurn(t *testing.T) {
	c, dir, ctx := startCircus(t)
	script := filepath.Join(dir, "slow.py")
	if err := os.WriteFile(script, []byte(strings.Replace(slowStopPy, "0.05", "0.5", 1)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(ctx, Watcher{App: "t", Name: "slow", Cmd: script, Spec: "spec", WorkingDir: dir, LogFile: filepath.Join(dir, "slow.log")}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, script+".ready")
	if err := c.Retire(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := c.Scale(short, "nosuch", 1); err == nil {
		t.Error("Scale of a missing watcher succeeded")
	}
	if err := c.Add(short, Watcher{App: "t", Name: "late", Cmd: "/bin/sleep", Spec: "600", WorkingDir: dir, LogFile: filepath.Join(dir, "late.log")}); err == nil {
		t.Error("Add succeeded although its context ended while circusd was busy")
	}
	if err := c.Idle(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script + ".exit"); err != nil {
		t.Errorf("Idle returned before the retired process stopped: %v", err)
	}
	if err := c.Add(ctx, Watcher{App: "t", Name: "after", Cmd: "/bin/sleep", Spec: "600", WorkingDir: dir, LogFile: filepath.Join(dir, "after.log")}); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, "after"); err != nil {
		t.Fatal(err)
	}
}

func startCircus(t *testing.T) (*Circus, string, context.Context) {
	t.Helper()
	bin := "/opt/conductor/circus/bin"
	if _, err := os.Stat(filepath.Join(bin, "circusd")); err != nil {
		t.Fatalf("circusd not installed (make setup installs it): %v", err)
	}
	dir := t.TempDir()
	c := &Circus{Bin: bin, Dir: filepath.Join(dir, "c"), Owner: "root"}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Wait(); c.Shutdown() }) // circusd outlives supervision
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c, dir, ctx
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDumpStacks: once a Conductor watcher is loaded, circusd writes its
// threads' stacks to its log when dumpStacks asks, and goes on answering;
// before, it is not sent the signal, which would kill it.
func TestDumpStacks(t *testing.T) {
	c, dir, ctx := startCircus(t)
	pid, err := c.Pid()
	if err != nil {
		t.Fatal(err)
	}
	if catches(pid, syscall.SIGUSR2) {
		t.Fatal("a circusd without Conductor's watchers catches SIGUSR2 already: the test shows nothing")
	}
	c.dumpStacks("before any watcher")
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("circusd does not answer after a dump before any watcher: %v", err)
	}
	c.lastDumped = time.Time{}
	if err := c.Add(ctx, Watcher{App: "t", Name: "sleeper", Cmd: "/bin/sleep", Spec: "600", WorkingDir: dir, LogFile: filepath.Join(dir, "sleeper.log")}); err != nil {
		t.Fatal(err)
	}
	c.dumpStacks("a test")
	log := filepath.Join(c.Dir, "circusd.log")
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(log)
		if strings.Contains(string(data), "most recent call first") && strings.Contains(string(data), "circus/arbiter.py") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stacks in circusd.log:\n%s", data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("circusd does not answer after the dump: %v", err)
	}
	if err := c.Remove(ctx, "sleeper"); err != nil {
		t.Fatal(err)
	}
}
