package provision

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/hasadna/conductor"
)

// TestDirsOwnersAndPlantedLinks: Dirs gives root what root must trust and
// the app what is the app's, and never chmods or chowns through a link the
// app user planted while the project dir was its own (Conductor before
// tenant isolation).
func TestDirsOwnersAndPlantedLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners are set as root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	u := &AppUser{Name: "nobody", UID: uid, GID: gid}
	l := Layout{Srv: t.TempDir()}
	outside := t.TempDir()
	if err := os.Chmod(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The old layout, as the app user left it.
	for _, d := range []string{l.DataDir("app"), l.LogDir("app"), l.RunDir("app"), l.EnvironmentsDir("app")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	plant := func(target, link string) {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	plant(outside, l.MediaDir("app"))
	plant(outside, l.HomeDir("app"))
	plant(outside, l.ReleasesDir("app"))
	plant(secret, filepath.Join(l.LogDir("app"), "web.log"))
	plant(secret, filepath.Join(l.RunDir("app"), "app_web_9000.json"))
	if err := syscall.Mkfifo(filepath.Join(l.LogDir("app"), "worker.log"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.LogDir("app"), "fake.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(l.LogDir("app"), "fake.log"), uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := Dirs(context.Background(), l, "app", u); err != nil {
		t.Fatalf("Dirs: %v", err)
	}
	for path, want := range map[string]struct {
		mode     os.FileMode
		uid, gid int
	}{
		l.ProjectDir("app"):      {0o711, 0, 0},
		l.ReleasesDir("app"):     {0o711, 0, 0},
		l.DataDir("app"):         {0o711, uid, gid},
		l.LogDir("app"):          {0o750, 0, gid},
		l.RunDir("app"):          {0o750, 0, gid},
		l.EnvironmentsDir("app"): {0o750, 0, gid},
	} {
		fi, err := os.Lstat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || fi.Mode().Perm() != want.mode || int(st.Uid) != want.uid || int(st.Gid) != want.gid {
			t.Errorf("%s: %v %d:%d, want a directory %v %d:%d", path, fi.Mode(), st.Uid, st.Gid, want.mode, want.uid, want.gid)
		}
	}
	// The app's own links stay; nothing was done through them.
	for _, p := range []string{l.MediaDir("app"), l.HomeDir("app")} {
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s: %v, %v; want the app's link left alone", p, fi, err)
		}
	}
	if fi, _ := os.Stat(outside); fi.Mode().Perm() != 0o700 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("the links' target dir became %v owned by %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}
	if fi, _ := os.Stat(secret); fi.Mode().Perm() != 0o600 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
		t.Errorf("the secret became %v owned by %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}
	// What the app left in root's logs and run dirs is gone.
	for _, dir := range []string{l.LogDir("app"), l.RunDir("app")} {
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("%s still holds %v", dir, left)
		}
	}
}

// TestEnsureSQLiteThroughLinks: the app's database files are made private
// through descriptors; a link the app planted at the database or its
// journal is left alone and its target keeps its owner and mode.
func TestEnsureSQLiteThroughLinks(t *testing.T) {
	l := Layout{Srv: t.TempDir()}
	me := &AppUser{Name: "me", UID: os.Geteuid(), GID: os.Getegid()}
	if err := Dirs(context.Background(), l, "app", me); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(l.DataDir("app"), "db.sqlite3")
	if err := os.Symlink(secret, db+"-wal"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(db+"-shm", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Databases{Layout: l}
	if _, err := p.ensureSQLite(&conductor.App{Name: "app"}, me); err != nil {
		t.Fatalf("ensureSQLite: %v", err)
	}
	for path, mode := range map[string]os.FileMode{db: 0o600, db + "-shm": 0o600} {
		if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, %v; want a regular %v file", path, fi, err, mode)
		}
	}
	if fi, _ := os.Stat(secret); fi.Mode().Perm() != 0o644 {
		t.Errorf("the -wal link's target became %v", fi.Mode())
	}
	// A database that is itself a link: left as it is, not an error.
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, db); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ensureSQLite(&conductor.App{Name: "app"}, me); err != nil {
		t.Fatalf("ensureSQLite with a linked database: %v", err)
	}
	if fi, _ := os.Stat(secret); fi.Mode().Perm() != 0o644 {
		t.Errorf("the database link's target became %v", fi.Mode())
	}
}
