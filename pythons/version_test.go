package pythons

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestVersionCached: the version of an interpreter file is learned once;
// a changed file (an upgrade) is run again.
func TestVersionCached(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	py := filepath.Join(dir, "python3")
	script := "#!/bin/sh\necho x >> " + runs + "\necho 3.99.1\n"
	if err := os.WriteFile(py, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		b, _ := os.ReadFile(runs)
		return len(b) / 2
	}
	for i := 0; i < 3; i++ {
		if v, err := Version(context.Background(), py); err != nil || v != "3.99.1" {
			t.Fatalf("Version = %q, %v", v, err)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("the interpreter ran %d times for 3 calls, want 1", n)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(py, later, later); err != nil {
		t.Fatal(err)
	}
	if v, err := Version(context.Background(), py); err != nil || v != "3.99.1" || count() != 2 {
		t.Fatalf("after a change: Version = %q, %v, %d runs; want it run again", v, err, count())
	}
}
