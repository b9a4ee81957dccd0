package safefs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// tree makes a base dir with a regular file, a directory, links to an
// outside secret (direct and through a directory link) and a FIFO.
func tree(t *testing.T) (base, secret string) {
	t.Helper()
	base, outside := t.TempDir(), t.TempDir()
	secret = filepath.Join(outside, "secret")
	must(t, os.WriteFile(secret, []byte("SECRET"), 0o600))
	must(t, os.MkdirAll(filepath.Join(base, "dir", "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(base, "dir", "file"), []byte("ok"), 0o644))
	must(t, os.Symlink(secret, filepath.Join(base, "dir", "link")))
	must(t, os.Symlink(outside, filepath.Join(base, "dirlink")))
	must(t, os.Symlink("file", filepath.Join(base, "dir", "rel")))
	must(t, syscall.Mkfifo(filepath.Join(base, "dir", "fifo"), 0o644))
	return base, secret
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadFile(t *testing.T) {
	base, _ := tree(t)
	for _, tc := range []struct {
		rel  string
		want error // nil: reads "ok"
	}{
		{"dir/file", nil},
		{"dir/link", ErrSymlink},
		{"dir/rel", ErrSymlink}, // even a link that stays inside
		{"dirlink/secret", ErrSymlink},
		{"dir/fifo", ErrNotRegular},
		{"dir", ErrNotRegular},
		{"dir/missing", os.ErrNotExist},
		{"../x", os.ErrInvalid},
		{"/etc/passwd", os.ErrInvalid},
	} {
		got, err := ReadFile(base, tc.rel, 1<<20)
		if tc.want == nil {
			if err != nil || string(got) != "ok" {
				t.Errorf("ReadFile(%s) = %q, %v", tc.rel, got, err)
			}
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("ReadFile(%s) error = %v, want %v", tc.rel, err, tc.want)
		}
	}
	if _, err := ReadFile(base, "dir/file", 1); err == nil {
		t.Error("ReadFile past its limit did not fail")
	}
}

func TestWriteFileReplacesALinkNotItsTarget(t *testing.T) {
	base, secret := tree(t)
	must(t, WriteFile(base, "dir/link", []byte("new"), 0o640, Keep, Keep))
	if b, _ := os.ReadFile(secret); string(b) != "SECRET" {
		t.Fatalf("the link's target was written: %q", b)
	}
	fi, err := os.Lstat(filepath.Join(base, "dir", "link"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 {
		t.Fatalf("dir/link is %v (%v), want a regular 0640 file", fi.Mode(), err)
	}
	if err := WriteFile(base, "dirlink/secret", []byte("x"), 0o644, Keep, Keep); !errors.Is(err, ErrSymlink) {
		t.Fatalf("write through a directory link: %v", err)
	}
	if b, _ := os.ReadFile(secret); string(b) != "SECRET" {
		t.Fatalf("the secret changed: %q", b)
	}
}

func TestEnsureDir(t *testing.T) {
	base, _ := tree(t)
	must(t, EnsureDir(base, "a/b", 0o711, Keep, Keep))
	if fi, err := os.Lstat(filepath.Join(base, "a", "b")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o711 {
		t.Fatalf("a/b = %v, %v", fi, err)
	}
	outside := t.TempDir()
	must(t, os.Chmod(outside, 0o700))
	must(t, os.Symlink(outside, filepath.Join(base, "planted")))
	if err := EnsureDir(base, "planted", 0o755, Keep, Keep); !errors.Is(err, ErrSymlink) {
		t.Fatalf("EnsureDir on a link: %v", err)
	}
	if fi, _ := os.Stat(outside); fi.Mode().Perm() != 0o700 {
		t.Fatalf("the link's target was chmodded to %v", fi.Mode())
	}
	if err := EnsureDir(base, "dirlink/x", 0o755, Keep, Keep); !errors.Is(err, ErrSymlink) {
		t.Fatalf("EnsureDir through a link: %v", err)
	}
}

func TestRemoveForeign(t *testing.T) {
	base, secret := tree(t)
	must(t, RemoveForeign(base, "dir", os.Geteuid()))
	left, _ := os.ReadDir(filepath.Join(base, "dir"))
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "file" {
		t.Fatalf("left %v, want only the regular file", names)
	}
	if _, err := os.Stat(secret); err != nil {
		t.Fatalf("a link's target was removed: %v", err)
	}
	must(t, RemoveForeign(base, "dir", os.Geteuid()+1))
	if left, _ := os.ReadDir(filepath.Join(base, "dir")); len(left) != 0 {
		t.Fatalf("a file of another owner was kept: %v", left)
	}
}
