package circus

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// emitPy writes lines the way real programs do and circus's own FileStream
// breaks: a line in two writes with a pause between, a line longer than
// circus's 1024-byte read, a UTF-8 character split across writes, and a
// prompt with no newline at all.
const emitPy = `#!/usr/bin/python3
import os, sys, time
out = sys.stdout.buffer
def w(b):
    out.write(b); out.flush()
# What conductor run-process prints first (process.StartLinePrefix).
w(b"conductor: starting emit.%s (pid %d): emit.py\n" % (sys.argv[3].encode(), os.getpid()))
w(b"first ")
time.sleep(0.2)
w(b"half\n")
w(b"y" * 3000 + b"\n")
w(b"caf\xc3")
time.sleep(0.1)
w(b"\xa9\n")
w(b"prompt> ")
time.sleep(600)
`

// TestLineFileStream runs a real circusd with two processes of a watcher
// writing broken-up lines, and reads the log back: each process's lines
// come out whole and named after the process, and the prompt without a
// newline is written after a pause.
func TestLineFileStream(t *testing.T) {
	bin := "/opt/conductor/circus/bin"
	if _, err := os.Stat(filepath.Join(bin, "circusd")); err != nil {
		t.Fatalf("circusd not installed (make setup installs it): %v", err)
	}
	dir := t.TempDir()
	// A short path: the control socket's must fit in sun_path.
	c := &Circus{Bin: bin, Dir: filepath.Join(dir, "c"), Owner: "root"}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Wait(); c.Shutdown() }) // circusd outlives supervision
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	emit := filepath.Join(dir, "emit.py")
	if err := os.WriteFile(emit, []byte(emitPy), 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(dir, "emit.log")
	if err := c.Add(ctx, Watcher{App: "emit", Name: "emit-web", Cmd: emit, Spec: "spec", WorkingDir: dir,
		NumProcesses: 2, LogFile: logFile}); err != nil {
		t.Fatal(err)
	}
	want := []string{"conductor: starting emit.N (pid P): emit.py", "first half", strings.Repeat("y", 3000), "café", "prompt> "}
	lineRE := regexp.MustCompile(`^\S+ \[(\d+ emit\.[12])\] \| (.*)$`)
	var got map[string][]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, _ := os.ReadFile(logFile)
		got = map[string][]string{}
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if m := lineRE.FindStringSubmatch(line); m != nil {
				pid, name, _ := strings.Cut(m[1], " ")
				text := strings.Replace(m[2], name, "emit.N", 1)
				text = strings.Replace(text, "pid "+pid, "pid P", 1)
				got[m[1]] = append(got[m[1]], text)
			} else if line != "" {
				t.Fatalf("log line without circus's prefix and the process's name: %q", line)
			}
		}
		done := len(got) == 2
		for _, lines := range got {
			done = done && len(lines) >= len(want)
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(got) != 2 {
		t.Fatalf("want the lines of 2 processes, got %d: %q", len(got), got)
	}
	for pid, lines := range got {
		if strings.Join(lines, "\n") != strings.Join(want, "\n") {
			t.Errorf("pid %s wrote %d lines, want %d whole ones: %.300q", pid, len(lines), len(want), lines)
		}
	}
	if err := c.Remove(ctx, "emit-web"); err != nil {
		t.Fatal(err)
	}
}

// TestLineFileStreamRefusesLinks: circusd runs as root and a log file's
// name is in the app's project dir, so the stream never writes through a
// symlink or to a FIFO planted there, and the files it makes are 0640.
func TestLineFileStreamRefusesLinks(t *testing.T) {
	py := "/opt/conductor/circus/bin/python"
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("circus's python not installed (make setup installs it): %v", err)
	}
	dir, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "target")
	if err := os.WriteFile(target, []byte("root's\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "link.log")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.log"), 0o666); err != nil {
		t.Fatal(err)
	}
	script := `
import sys
from conductor_circus import LineFileStream
for name in sys.argv[1:]:
    try:
        s = LineFileStream(filename=name, max_bytes=1000, backup_count=1)
        s({'pid': 1, 'data': b'planted\n'})
        print('wrote', name)
    except OSError as e:
        print('refused', name)
`
	cmd := exec.Command(py, "-c", script, filepath.Join(dir, "link.log"), filepath.Join(dir, "fifo.log"), filepath.Join(dir, "ok.log"))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join("stream"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	want := "refused " + filepath.Join(dir, "link.log") + "\nrefused " + filepath.Join(dir, "fifo.log") + "\nwrote " + filepath.Join(dir, "ok.log") + "\n"
	if string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if b, _ := os.ReadFile(target); string(b) != "root's\n" {
		t.Errorf("the link's target was written: %q", b)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ok.log")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("ok.log: %v %v, want mode 0640", fi, err)
	}
}
