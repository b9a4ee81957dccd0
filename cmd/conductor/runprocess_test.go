package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor/process"
)

// TestMain lets a test run this binary as the conductor command
// (CONDUCTOR_TEST_RUN_MAIN=1): main's init is the same.
func TestMain(m *testing.M) {
	if os.Getenv("CONDUCTOR_TEST_RUN_MAIN") == "1" {
		// Goroutines that wake every millisecond move an unlocked main
		// goroutine to another thread, as a loaded machine may: it is
		// moved here before main runs, unless main's init locked it.
		for range 4 {
			go func() {
				for {
					time.Sleep(time.Millisecond)
				}
			}()
		}
		for i := 0; i < 50 && unix.Gettid() == os.Getpid(); i++ {
			time.Sleep(100 * time.Microsecond)
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestRunProcessNeverLooksDead: run-process execs the app's command from
// its main thread. A Go program that execs from another thread has the
// kernel retire the main thread first, and for that moment
// /proc/<pid>/stat says the process is a zombie: circus then took a live
// app process for dead (its list left it out, and its periodic check
// dropped it and started a second one), and a deploy's worker check
// failed with "a worker process exited 240ms after its start". The test
// moves the main goroutine to another thread before main runs (TestMain),
// as load may; run-process says so when it execs from another thread.
func TestRunProcessNeverLooksDead(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	uid, gid := os.Getuid(), os.Getgid()
	if uid == 0 {
		uid, gid = 65534, 65534 // run-process as root becomes the app's user: nobody here
	}
	if err := process.WriteSpec(spec, &process.Spec{Type: "worker", Argv: []string{"/bin/sleep", "0.05"}, Dir: "/", UID: uid, GID: gid}, uid, gid); err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 10; run++ {
		var out strings.Builder
		cmd := exec.Command(os.Args[0], "run-process", spec, "1")
		cmd.Env = append(os.Environ(), "CONDUCTOR_TEST_RUN_MAIN=1")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stat := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat"
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			state, comm := procState(stat)
			if state == "Z" {
				if comm != "sleep" {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
					t.Fatalf("run %d: /proc/<pid>/stat showed run-process (%s) as a zombie before it became the command", run, comm)
				}
				break // the command itself has exited
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("run %d: run-process: %v\n%s", run, err, out.String())
		}
		if strings.Contains(out.String(), "not the main thread") {
			t.Fatalf("run %d: %s", run, out.String())
		}
	}
}

// procState reads a process's state letter and command name.
func procState(path string) (state, comm string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", ""
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+3 > len(s) {
		return "", ""
	}
	return s[end+2 : end+3], s[open+1 : end]
}
