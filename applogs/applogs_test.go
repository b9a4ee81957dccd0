package applogs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
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
