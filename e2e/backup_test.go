package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestBackupRestore backs up an instance while it serves an app with a
// SQLite database, loses everything (data dir and the app's unix user),
// restores into a new data dir, serves again and redeploys: the app's rows,
// its media file, the admin's access and the host key are back.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	const app = "bk-app"
	work := in.WorkTree("hello")
	in.pushOK(work, app)
	rows := in.greetings(app, "v1") // writes a row
	media := filepath.Join(in.Data, "srv", "projects", app, "data", "media", "upload.txt")
	if err := os.WriteFile(media, []byte("uploaded before the backup\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostKey, err := os.ReadFile(filepath.Join(in.Data, "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}

	// Back up while conductor serve runs and the app writes rows.
	stop, wrote := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				wrote <- n
				return
			default:
			}
			if code, _, _ := in.Get(app, "/"); code == 200 {
				n++
			}
		}
	}()
	archive := filepath.Join(in.Dir, "backup.tar.gz")
	r := runCmd(t, "", nil, nil, conductorBin, "backup", "--data", in.Data, "--out", archive)
	close(stop)
	during := <-wrote
	if r.Code != 0 || !strings.Contains(r.Stdout, "Backed up "+in.Data+" (1 apps) to "+archive) {
		t.Fatalf("backup: %s", r)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup holds secrets: want mode 0600, got %v %v", fi, err)
	}
	// A row written after the backup is not in it.
	after := in.greetings(app, "v1")
	if after != rows+during+1 {
		t.Fatalf("greetings after the backup: %d, want %d + %d written during it + 1", after, rows, during)
	}

	// Lose everything: the instance, its apps, its data dir and the app's user.
	in.StopAll()
	if err := os.RemoveAll(in.Data); err != nil {
		t.Fatal(err)
	}
	// The app's processes may take a moment to exit after circusd stopped.
	waitFor(t, "userdel "+app, func() bool {
		return exec.Command("userdel", app).Run() == nil
	})

	dir, err := os.MkdirTemp("", "conductor-e2e-restored-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	restored := &Instance{t: t, Dir: dir, Data: filepath.Join(dir, "data"), SSHAddr: freeAddr(t), HTTPAddr: freeAddr(t),
		Ports: in.Ports, AdminKey: in.AdminKey}
	t.Cleanup(func() {
		restored.Stop()
		if t.Failed() && restored.logs != nil {
			t.Logf("restored conductor serve output:\n%s", restored.logs.String())
		}
		tearDown(t, dir)
	})
	r = runCmd(t, "", nil, nil, conductorBin, "restore", "--data", restored.Data, "--from", archive)
	if r.Code != 0 || !strings.Contains(r.Stdout, "Restored 1 apps") || !strings.Contains(r.Stdout, "deploy "+app+" ") {
		t.Fatalf("restore: %s", r)
	}

	// The app's database is a snapshot of one instant during the backup:
	// intact, with every row written before it and none written after it,
	// owned by the (new) app user and private to it.
	db := filepath.Join(restored.Data, "srv", "projects", app, "data", "db.sqlite3")
	out, err := exec.Command("sqlite3", db, "PRAGMA quick_check; SELECT count(*) FROM greetings_greeting;").CombinedOutput()
	check, count, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	n, _ := strconv.Atoi(count)
	if err != nil || check != "ok" || n < rows || n >= after {
		t.Fatalf("restored database: %v %q, want ok and %d to %d rows", err, out, rows, after-1)
	}
	t.Logf("%d rows at the start of the backup, %d written during it; the snapshot has %d", rows, during, n)
	if fi, err := os.Stat(db); err != nil || fileOwner(fi) != app || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored database: want owner %s and mode 0600, got %v %v", app, fi, err)
	}
	if b, err := os.ReadFile(filepath.Join(restored.Data, "srv", "projects", app, "data", "media", "upload.txt")); err != nil || string(b) != "uploaded before the backup\n" {
		t.Errorf("restored media file: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(restored.Data, "ssh_host_ed25519_key")); err != nil || !bytes.Equal(b, hostKey) {
		t.Errorf("the host key changed: clients would refuse the restored server")
	}
	if r := runCmd(t, "", nil, nil, conductorBin, "restore", "--data", restored.Data, "--from", archive); r.Code == 0 || !strings.Contains(r.Stderr, "is not empty") {
		t.Errorf("restore into a non-empty data dir: %s", r)
	}

	// Serve again: the admin's key still works, and a deploy of the
	// restored repository brings the app back with its rows.
	restored.Start()
	r = restored.SSH(in.AdminKey, "deploy "+app+" main")
	if r.Code != 0 || !strings.Contains(r.Stdout+r.Stderr, "-----> Deployed "+app) {
		t.Fatalf("redeploy after restore: %s", r)
	}
	if now := restored.greetings(app, "v1"); now <= n {
		t.Errorf("after restore the app counts %d greetings, the snapshot had %d", now, n)
	}
	r = restored.SSH(in.AdminKey, "releases "+app)
	if r.Code != 0 || !strings.Contains(r.Stdout, "v2") {
		t.Errorf("releases after restore: the history should go on from v1: %s", r)
	}
}
