package safefs

import (
	"os"
	"path/filepath"
	"testing"
)

// RemoveAll removes a tree without following links: neither the entry
// itself nor a link inside it takes it outside base.
func TestRemoveAll(t *testing.T) {
	base, outside := t.TempDir(), t.TempDir()
	keep := filepath.Join(outside, "keep")
	if err := os.WriteFile(keep, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(base, "data", "redis")
	if err := os.MkdirAll(filepath.Join(tree, "appendonlydir"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"dump.rdb", "appendonlydir/a.aof"} {
		if err := os.WriteFile(filepath.Join(tree, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(tree, "link")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(base, "data/redis"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(tree); !os.IsNotExist(err) {
		t.Errorf("tree still there: %v", err)
	}
	// A link in place of the tree goes, what it points to stays.
	if err := os.Symlink(outside, tree); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(base, "data/redis"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(tree); !os.IsNotExist(err) {
		t.Errorf("link still there: %v", err)
	}
	// A link on the way is refused.
	if err := os.RemoveAll(filepath.Join(base, "data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(base, "data")); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(base, "data/keep"); err == nil {
		t.Error("RemoveAll went through a link on the way")
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file outside went: %v", err)
	}
	if err := RemoveAll(base, "missing/x"); err != nil {
		t.Errorf("missing: %v", err)
	}
}
