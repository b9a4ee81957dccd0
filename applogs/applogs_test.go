package applogs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A line circus is still writing (no newline yet) is not shown by Recent as
// a cut-off line; it comes out whole once it is complete.
func TestRecentSkipsPartialLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "worker.log")
	full := "2026-11-26T03:23:00.100000 [42] | worker-line 1\n"
	if err := os.WriteFile(path, []byte(full+"2026-11-26T03:23:00.323938 [42] | "), 0o644); err != nil {
		t.Fatal(err)
	}
	r := Open(dir, "")
	got := r.Recent(10)
	if len(got) != 1 || got[0] != "2026-11-26T03:23:00.100000 worker: worker-line 1" {
		t.Fatalf("Recent = %q, want only the complete line", got)
	}
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("worker-line 2\n")
	fh.Close()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r.Follow(ctx, &out, 10*time.Millisecond)
	if want := "2026-11-26T03:23:00.323938 worker: worker-line 2\n"; out.String() != want {
		t.Fatalf("Follow wrote %q, want %q", out.String(), want)
	}
	if strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("Follow repeated lines: %q", out.String())
	}
}

// Lines named by circus.LineFileStream keep their process's name in a file
// that rotated past the start line; lines of older files get theirs from
// the start line.
func TestRecentNames(t *testing.T) {
	dir := t.TempDir()
	web := "2026-11-26T03:23:00.100000 [42] | conductor: starting web.1 (pid 42): gunicorn\n" +
		"2026-11-26T03:23:00.300000 [42] | GET /\n" +
		"2026-11-26T03:23:00.400000 [43] | no start line seen\n"
	worker := "2026-11-26T03:23:00.200000 [77 worker.2] | after rotation\n" +
		"2026-11-26T03:23:00.500000 [77 worker.2] | conductor: starting web.9 (pid 77): forged\n"
	for name, data := range map[string]string{"web.log": web, "worker.log": worker} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"2026-11-26T03:23:00.100000 web.1: conductor: starting web.1 (pid 42): gunicorn",
		"2026-11-26T03:23:00.200000 worker.2: after rotation",
		"2026-11-26T03:23:00.300000 web.1: GET /",
		"2026-11-26T03:23:00.400000 web: no start line seen",
		"2026-11-26T03:23:00.500000 worker.2: conductor: starting web.9 (pid 77): forged",
	}
	if got := Open(dir, "").Recent(10); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Recent =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Recent takes the lines that a rotation just moved to <type>.log.1 (and
// older) when the current file has fewer than asked for.
func TestRecentAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"worker.log.2": "2026-11-26T03:23:00.100000 [7 worker.1] | one\n",
		"worker.log.1": "2026-11-26T03:23:00.200000 [7 worker.1] | two\n2026-11-26T03:23:00.300000 [7 worker.1] | three\n",
		"worker.log":   "2026-11-26T03:23:00.400000 [7 worker.1] | four\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for n, want := range map[int]string{1: "four", 3: "two three four", 10: "one two three four"} {
		var texts []string
		for _, line := range Open(dir, "").Recent(n) {
			texts = append(texts, line[strings.LastIndex(line, " ")+1:])
		}
		if got := strings.Join(texts, " "); got != want {
			t.Errorf("Recent(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestPlantedLinksAreNotRead: the logs dir was once the app user's, and
// root reads it: a link or FIFO named like a log is skipped, never
// followed or blocked on, in Recent and in Follow.
func TestPlantedLinksAreNotRead(t *testing.T) {
	dir, outside := filepath.Join(t.TempDir(), "logs"), t.TempDir()
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("2026-01-01T00:00:00 [1] | SECRET-CONTENT\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.log"), []byte("2026-01-01T00:00:01 [2 web.1] | fine\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"zz.log", "web.log.1", "worker.log"} {
		if err := os.Symlink(secret, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.log"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, process := range []string{"", "zz", "fifo", "worker"} {
		got := strings.Join(Open(dir, process).Recent(100), "\n")
		if strings.Contains(got, "SECRET") {
			t.Errorf("Recent(%q) read through a link: %q", process, got)
		}
		if process == "" && !strings.Contains(got, "fine") {
			t.Errorf("Recent() = %q, want the real log's line", got)
		}
	}
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	r := Open(dir, "")
	for _, f := range r.files {
		f.offset = -1 // read everything again
		_ = f.copyNew(&out)
	}
	cancel()
	r.Follow(ctx, &out, time.Millisecond)
	if strings.Contains(out.String(), "SECRET") {
		t.Errorf("Follow read through a link: %q", out.String())
	}
}
