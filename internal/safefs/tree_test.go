package safefs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestMkdirAll(t *testing.T) {
	base, secret := tree(t)
	outside := filepath.Dir(secret)
	must(t, os.Chmod(filepath.Join(base, "dir"), 0o755))
	// Missing components are made with the mode asked for (not the
	// umask's); existing ones are left alone.
	must(t, MkdirAll(base, "dir/new/deeper", 0o750, Keep, Keep))
	for _, d := range []string{"dir/new", "dir/new/deeper"} {
		if fi, err := os.Lstat(filepath.Join(base, d)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
			t.Errorf("%s: %v %v, want a 0750 directory", d, fi, err)
		}
	}
	if fi, _ := os.Lstat(filepath.Join(base, "dir")); fi.Mode().Perm() != 0o755 {
		t.Errorf("the existing dir's mode changed to %v", fi.Mode())
	}
	must(t, MkdirAll(base, ".", 0o750, Keep, Keep))
	// A link on the way is refused, and nothing is made through it.
	for _, rel := range []string{"dirlink/x", "dirlink", "dir/link/x"} {
		err := MkdirAll(base, rel, 0o750, Keep, Keep)
		if err == nil {
			t.Errorf("MkdirAll(%s) followed a link", rel)
		}
	}
	if err := MkdirAll(base, "dirlink/x", 0o750, Keep, Keep); !errors.Is(err, ErrSymlink) {
		t.Errorf("MkdirAll through a directory link: %v, want ErrSymlink", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 1 {
		t.Errorf("something was made outside: %v", entries)
	}
	if err := MkdirAll(base, "dir/file/x", 0o750, Keep, Keep); err == nil {
		t.Error("MkdirAll below a regular file succeeded")
	}
	if err := MkdirAll(base, "../escape", 0o750, Keep, Keep); err == nil {
		t.Error("MkdirAll(../escape) succeeded")
	}
}

func TestRemove(t *testing.T) {
	base, secret := tree(t)
	// A link goes, its target stays.
	must(t, Remove(base, "dir/link"))
	if _, err := os.Lstat(filepath.Join(base, "dir", "link")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link is still there: %v", err)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "SECRET" {
		t.Errorf("the link's target: %q %v", b, err)
	}
	must(t, Remove(base, "dir/file"))
	must(t, Remove(base, "dir/file"))         // already gone
	must(t, Remove(base, "missing/dir/file")) // no such dir
	// Never through a directory link, never a directory.
	if err := Remove(base, "dirlink/secret"); !errors.Is(err, ErrSymlink) {
		t.Errorf("Remove through a directory link: %v, want ErrSymlink", err)
	}
	if _, err := os.Lstat(secret); err != nil {
		t.Errorf("the secret went: %v", err)
	}
	if err := Remove(base, "dir/sub"); err == nil {
		t.Error("Remove deleted a directory")
	}
}
