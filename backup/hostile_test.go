package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/sqlite"
)

// The app's code runs as its unix user and may put anything in its data
// dir: these tests play that app (as nobody), planting links, FIFOs and
// hard links, and check that root's backup and restore neither follow nor
// block on any of it.

const (
	sentinel    = "SENTINEL-root-only-7f3a9c"    // content of a root-only file outside the app
	stateMarker = "STATE-MARKER-every-secret-42" // a secret in a copy of a state database
	appRow      = "APP-ROW-written-by-the-app"   // a row of the app's own database
	hostileApp  = "evil"
)

// nobody stands in for the app's unix user.
var nobody = appUser{uid: 65534, gid: 65534}

// hostileEnv is a Conductor data dir with one SQLite app whose data dir
// belongs to nobody, and a root-only directory beside it holding a
// sentinel file and a copy of a state database with a marker secret.
type hostileEnv struct {
	data, srv, appData string
	secret, stateCopy  string
	layout             provision.Layout
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("plays an app's unix user against root: run as root")
	}
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	requireRoot(t)
	base := t.TempDir()
	// nobody traverses to its data dir, as an app user does to its own.
	for _, d := range []string{filepath.Dir(base), base} {
		must(t, os.Chmod(d, 0o711))
	}
	e := &hostileEnv{data: filepath.Join(base, "data")}
	outside := filepath.Join(base, "root-only")
	must(t, os.Mkdir(outside, 0o700))
	e.secret = filepath.Join(outside, "secret")
	must(t, os.WriteFile(e.secret, []byte(sentinel), 0o600))
	e.stateCopy = filepath.Join(outside, "conductor.db")
	writeState(t, e.stateCopy, "other", stateMarker)
	if raw, err := os.ReadFile(e.stateCopy); err != nil || !bytes.Contains(raw, []byte(stateMarker)) {
		t.Fatalf("the state copy should hold the marker: %v", err)
	}

	must(t, os.MkdirAll(e.data, 0o711))
	must(t, os.WriteFile(filepath.Join(e.data, hostKeyName), []byte("host key\n"), 0o600))
	writeState(t, filepath.Join(e.data, stateName), hostileApp, "k")
	e.srv = filepath.Join(e.data, "srv")
	e.layout = provision.Layout{Srv: e.srv}
	e.appData = e.layout.DataDir(hostileApp)
	must(t, os.MkdirAll(filepath.Dir(e.appData), 0o711))
	for _, d := range []string{e.appData, e.layout.MediaDir(hostileApp)} {
		must(t, os.Mkdir(d, 0o755))
		must(t, os.Chown(d, nobody.uid, nobody.gid))
	}
	e.appFile(t, "media/photo.jpg", "PHOTO")
	return e
}

// writeState makes a state database at path with one SQLite app whose
// secret key is secret.
func writeState(t *testing.T, path, app, secret string) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	a := &conductor.App{Name: app, DBKind: conductor.DBSQLite, Ports: [2]int{41000, 41001}, SecretKey: secret, Host: "local"}
	if err := store.CreateApp(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	must(t, store.Close())
}

// appFile writes a file of the app's, owned by nobody.
func (e *hostileEnv) appFile(t *testing.T, rel, body string) {
	t.Helper()
	p := filepath.Join(e.appData, rel)
	must(t, os.WriteFile(p, []byte(body), 0o644))
	must(t, os.Chown(p, nobody.uid, nobody.gid))
}

// appDB makes the app's database in WAL mode with its rows still in the
// WAL (the connection stays open and never checkpoints), as a running
// Django app leaves it.
func (e *hostileEnv) appDB(t *testing.T) {
	t.Helper()
	p := filepath.Join(e.appData, "db.sqlite3")
	f, err := os.Create(p)
	must(t, err)
	f.Close()
	must(t, os.Chown(p, nobody.uid, nobody.gid))
	db, err := sql.Open("sqlite3", "file:"+p+"?_journal_mode=WAL")
	must(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{"PRAGMA wal_autocheckpoint=0", "CREATE TABLE notes (body text)", "INSERT INTO notes VALUES ('" + appRow + "')"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	if fi, err := os.Stat(p + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("the app's rows should be in its WAL: %v %v", fi, err)
	}
	for _, s := range []string{"-wal", "-shm"} {
		must(t, os.Chown(p+s, nobody.uid, nobody.gid))
	}
}

// removeDB removes the app's database and its WAL files, as the app could
// before it plants something in their place.
func (e *hostileEnv) removeDB(t *testing.T) {
	t.Helper()
	for _, s := range []string{"", "-wal", "-shm"} {
		must(t, os.Remove(filepath.Join(e.appData, "db.sqlite3"+s)))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// backup runs a backup as conductor backup does (as root), failing the test
// if it blocks.
func (e *hostileEnv) backup(t *testing.T) ([]byte, *Manifest) {
	t.Helper()
	type result struct {
		m   *Manifest
		err error
	}
	var buf bytes.Buffer
	done := make(chan result, 1)
	go func() {
		b := &Backup{Data: e.data, Layout: e.layout, Version: "test",
			appUser: func(string) (appUser, error) { return nobody, nil }}
		m, err := b.Write(context.Background(), &buf)
		done <- result{m, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("backup: %v", r.err)
		}
		return buf.Bytes(), r.m
	case <-time.After(60 * time.Second):
		t.Fatal("backup blocked")
	}
	return nil, nil
}

// archived is one entry of an archive.
type archived struct {
	hdr  *tar.Header
	body []byte
}

func readArchive(t *testing.T, archive []byte) map[string]archived {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(archive))
	must(t, err)
	tr := tar.NewReader(gz)
	out := map[string]archived{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		must(t, err)
		body, err := io.ReadAll(tr)
		must(t, err)
		out[strings.TrimSuffix(hdr.Name, "/")] = archived{hdr, body}
	}
}

// sqliteRows reads the notes of a database snapshot.
func sqliteRows(t *testing.T, raw []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "snap.sqlite3")
	must(t, os.WriteFile(p, raw, 0o600))
	db, err := sql.Open("sqlite3", "file:"+p+"?mode=ro")
	must(t, err)
	defer db.Close()
	var body string
	if err := db.QueryRow("SELECT group_concat(body) FROM notes").Scan(&body); err != nil {
		t.Fatalf("the archived database: %v", err)
	}
	return body
}

// TestBackupHostileDataDir plants, in the app's data dir, what its code
// could: each case must leave no root-only content in the archive, must
// not block, and must keep the app's own files.
func TestBackupHostileDataDir(t *testing.T) {
	prefix := srvDir + "/projects/" + hostileApp + "/data"
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, e *hostileEnv)
		check func(t *testing.T, e *hostileEnv, entries map[string]archived, notes string)
	}{{
		name: "nothing planted: the database is snapshotted with the rows in its WAL",
		check: func(t *testing.T, e *hostileEnv, entries map[string]archived, notes string) {
			db, ok := entries[prefix+"/db.sqlite3"]
			if !ok || db.hdr.Typeflag != tar.TypeReg || db.hdr.Mode != 0o600 {
				t.Fatalf("db.sqlite3: %+v", db.hdr)
			}
			if got := sqliteRows(t, db.body); got != appRow {
				t.Errorf("snapshot rows: %q, want %q", got, appRow)
			}
			for _, s := range []string{"-wal", "-shm"} {
				if _, ok := entries[prefix+"/db.sqlite3"+s]; ok {
					t.Errorf("db.sqlite3%s archived: it is part of the snapshot", s)
				}
			}
			if notes != "" {
				t.Errorf("notes for a sound data dir: %s", notes)
			}
		},
	}, {
		name: "a link to a root-only file is archived as a link",
		plant: func(t *testing.T, e *hostileEnv) {
			must(t, os.Symlink(e.secret, filepath.Join(e.appData, "media", "a.jpg")))
		},
		check: func(t *testing.T, e *hostileEnv, entries map[string]archived, notes string) {
			if l := entries[prefix+"/media/a.jpg"]; l.hdr == nil || l.hdr.Typeflag != tar.TypeSymlink || l.hdr.Linkname != e.secret {
				t.Errorf("media/a.jpg should be a link to %s: %+v", e.secret, l.hdr)
			}
		},
	}, {
		name: "a link to a copy of the state database",
		plant: func(t *testing.T, e *hostileEnv) {
			must(t, os.Symlink(e.stateCopy, filepath.Join(e.appData, "media", "state.db")))
		},
	}, {
		name: "a directory link is not walked into",
		plant: func(t *testing.T, e *hostileEnv) {
			must(t, os.Symlink(filepath.Dir(e.secret), filepath.Join(e.appData, "media", "up")))
		},
		check: func(t *testing.T, e *hostileEnv, entries map[string]archived, notes string) {
			if l := entries[prefix+"/media/up"]; l.hdr == nil || l.hdr.Typeflag != tar.TypeSymlink {
				t.Errorf("media/up should be a link: %+v", l.hdr)
			}
			for name := range entries {
				if strings.HasPrefix(name, prefix+"/media/up/") {
					t.Errorf("walked through the link: %s", name)
				}
			}
		},
	}, {
		name: "a FIFO is left out without blocking",
		plant: func(t *testing.T, e *hostileEnv) {
			must(t, syscall.Mkfifo(filepath.Join(e.appData, "media", "pipe"), 0o644))
		},
		check: func(t *testing.T, e *hostileEnv, entries map[string]archived, notes string) {
			if _, ok := entries[prefix+"/media/pipe"]; ok {
				t.Errorf("a FIFO was archived")
			}
		},
	}, {
		name: "a hard link to a root-only file is left out",
		plant: func(t *testing.T, e *hostileEnv) {
			// What fs.protected_hardlinks=0 would let the app make.
			must(t, os.Link(e.secret, filepath.Join(e.appData, "media", "hard.jpg")))
		},
		check: func(t *testing.T, e *hostileEnv, entries map[string]archived, notes string) {
			if _, ok := entries[prefix+"/media/hard.jpg"]; ok {
				t.Errorf("a root-only file was archived from the app's data dir")
			}
			if !strings.Contains(notes, "media/hard.jpg") {
				t.Errorf("the backup should say why media/hard.jpg was left out: %q", notes)
			}
		},
	}, {
		name: "the database is a link to a copy of the state database",
		plant: func(t *testing.T, e *hostileEnv) {
			e.removeDB(t)
			must(t, os.Symlink(e.stateCopy, filepath.Join(e.appData, "db.sqlite3")))
		},
		check: func(t *testing.T, e *hostileEnv, entries map[string]archived, notes string) {
			if l := entries[prefix+"/db.sqlite3"]; l.hdr == nil || l.hdr.Typeflag != tar.TypeSymlink {
				t.Errorf("db.sqlite3 should be archived as the link it is: %+v", l.hdr)
			}
			if !strings.Contains(notes, "db.sqlite3: database not backed up: it is a symbolic link") {
				t.Errorf("the backup should say why the database is not in it: %q", notes)
			}
		},
	}, {
		name: "the database is a hard link to a copy of the state database",
		plant: func(t *testing.T, e *hostileEnv) {
			e.removeDB(t)
			must(t, os.Link(e.stateCopy, filepath.Join(e.appData, "db.sqlite3")))
		},
		check: func(t *testing.T, e *hostileEnv, entries map[string]archived, notes string) {
			if !strings.Contains(notes, "db.sqlite3: database not backed up") {
				t.Errorf("the backup should say why the database is not in it: %q", notes)
			}
		},
	}, {
		name: "the database is a FIFO",
		plant: func(t *testing.T, e *hostileEnv) {
			e.removeDB(t)
			must(t, syscall.Mkfifo(filepath.Join(e.appData, "db.sqlite3"), 0o644))
		},
		check: func(t *testing.T, e *hostileEnv, entries map[string]archived, notes string) {
			if !strings.Contains(notes, "db.sqlite3: database not backed up: it is not a regular file") {
				t.Errorf("the backup should say why the database is not in it: %q", notes)
			}
		},
	}, {
		name: "the database's WAL is a link to the state database",
		plant: func(t *testing.T, e *hostileEnv) {
			wal := filepath.Join(e.appData, "db.sqlite3-wal")
			must(t, os.Remove(wal))
			must(t, os.Symlink(e.stateCopy, wal))
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHostileEnv(t)
			e.appDB(t)
			if tc.plant != nil {
				tc.plant(t, e)
			}
			archive, m := e.backup(t)
			entries := readArchive(t, archive)
			for name, a := range entries {
				for _, secret := range []string{sentinel, stateMarker} {
					if bytes.Contains(a.body, []byte(secret)) {
						t.Errorf("%s in the archive holds %s", name, secret)
					}
				}
			}
			if p := entries[prefix+"/media/photo.jpg"]; string(p.body) != "PHOTO" {
				t.Errorf("the app's own media file: %q", p.body)
			}
			var notes string
			for _, app := range m.Apps {
				if app.Name == hostileApp {
					notes = strings.Join(app.Notes, "\n")
				}
			}
			t.Logf("notes: %s", notes)
			if tc.check != nil {
				tc.check(t, e, entries, notes)
			}
		})
	}
}

// TestBackupSwappedFile swaps a media file with a link to a root-only file
// of the same size (renameat2 RENAME_EXCHANGE, as fast as it can) while
// backups run: none may read through the link, as a check by name
// followed by an open by name would now and then.
func TestBackupSwappedFile(t *testing.T) {
	e := newHostileEnv(t)
	media := e.layout.MediaDir(hostileApp)
	plain, link := filepath.Join(media, "swap.jpg"), filepath.Join(media, "swap-other.jpg")
	e.appFile(t, "media/swap.jpg", strings.Repeat("x", len(sentinel)))
	must(t, os.Symlink(e.secret, link))
	stop, done := make(chan struct{}), make(chan struct{})
	swaps := 0
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 100 {
				if err := unix.Renameat2(unix.AT_FDCWD, plain, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE); err != nil {
					t.Error(err)
					return
				}
				swaps++
			}
		}
	}()
	defer func() { close(stop); <-done; t.Logf("%d swaps", swaps) }()
	for i := 0; i < 50; i++ {
		archive, _ := e.backup(t)
		for name, a := range readArchive(t, archive) {
			if bytes.Contains(a.body, []byte(sentinel)) {
				t.Fatalf("backup %d: %s holds root-only content, read through a swapped-in link", i, name)
			}
		}
	}
}

// tarEntry is an entry of a hand-made archive: a file (body), a link
// (link) or a directory (dir), with mode.
type tarEntry struct {
	name, body, link string
	dir              bool
	mode             int64
}

// tarballApps makes a backup archive listing apps (with data dirs), then
// entries.
func tarballApps(t *testing.T, apps []string, entries []tarEntry) []byte {
	t.Helper()
	m := Manifest{Format: Format}
	for _, a := range apps {
		m.Apps = append(m.Apps, AppInfo{Name: a, DB: conductor.DBSQLite, Data: true})
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	aw := &archiveWriter{tw: tw}
	raw, err := json.Marshal(m)
	must(t, err)
	must(t, aw.bytes(manifestName, raw))
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Mode: mode, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case e.link != "":
			hdr = &tar.Header{Name: e.name, Mode: 0o777, Linkname: e.link, Typeflag: tar.TypeSymlink}
		case e.dir:
			hdr = &tar.Header{Name: e.name + "/", Mode: mode, Typeflag: tar.TypeDir}
		}
		must(t, tw.WriteHeader(hdr))
		_, err := tw.Write([]byte(e.body))
		must(t, err)
	}
	must(t, tw.Close())
	must(t, gz.Close())
	return buf.Bytes()
}

// nobodyUser stands in for provision.EnsureUser in restores.
func nobodyUser(ctx context.Context, app, home string) (*provision.AppUser, error) {
	return &provision.AppUser{Name: app, UID: nobody.uid, GID: nobody.gid, Home: home}, nil
}

// TestRestoreNeverThroughLinks feeds restore archives in which a link is
// followed by entries beneath it or over it: nothing may be written, made
// or chmodded through the link, even where it stays inside the restored
// tree (into another app's data dir).
func TestRestoreNeverThroughLinks(t *testing.T) {
	requireRoot(t)
	a, b := "srv/projects/a/data", "srv/projects/b/data"
	dirs := []tarEntry{{name: a, dir: true, mode: 0o700}, {name: b, dir: true, mode: 0o700}}
	for _, tc := range []struct {
		name    string
		entries []tarEntry
		// untouched: paths (under the restored data dir) that must not
		// exist afterwards, or keep mode 0700 when they are b's data dir.
		absent []string
	}{{
		name:    "a file under a link into another app's data dir",
		entries: []tarEntry{{name: a + "/l", link: "../../b/data"}, {name: a + "/l/planted", body: "x"}},
		absent:  []string{b + "/planted"},
	}, {
		name:    "a directory under a link into another app's data dir",
		entries: []tarEntry{{name: a + "/l", link: "../../b/data"}, {name: a + "/l/sub", dir: true, mode: 0o777}},
		absent:  []string{b + "/sub"},
	}, {
		name:    "a directory entry over a link: its mode is not set through it",
		entries: []tarEntry{{name: a + "/l", link: "../../b/data"}, {name: a + "/l", dir: true, mode: 0o777}},
	}, {
		name:    "a data dir that is a link to another app's",
		entries: []tarEntry{{name: "srv/projects/c/data", link: "../b/data"}, {name: "srv/projects/c/data/planted", body: "x"}},
		absent:  []string{b + "/planted"},
	}, {
		name:    "a project dir that is a link",
		entries: []tarEntry{{name: "srv/projects/c", link: "b"}, {name: "srv/projects/c/data/planted", body: "x"}},
		absent:  []string{b + "/planted"},
	}, {
		name:    "a file under a link in the state dir",
		entries: []tarEntry{{name: "certs/l", link: "../repos"}, {name: "certs/l/planted", body: "x"}},
		absent:  []string{"repos/planted"},
	}, {
		name:    "a file outside the apps' data dirs",
		entries: []tarEntry{{name: "srv/projects/b/run/b_web.json", body: "{}"}},
		absent:  []string{"srv/projects/b/run/b_web.json"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			into := filepath.Join(t.TempDir(), "data")
			archive := tarballApps(t, []string{"a", "b", "c"}, append(append([]tarEntry{}, dirs...), tc.entries...))
			rs := &Restore{Data: into, Layout: provision.Layout{Srv: filepath.Join(into, "srv")}, ensureUser: nobodyUser}
			_, err := rs.Run(context.Background(), bytes.NewReader(archive))
			if err == nil {
				t.Errorf("restore accepted it")
			} else {
				t.Logf("refused: %v", err)
			}
			for _, p := range tc.absent {
				if _, err := os.Lstat(filepath.Join(into, p)); err == nil {
					t.Errorf("restore wrote %s", p)
				}
			}
			if fi, err := os.Stat(filepath.Join(into, b)); err != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("b's data dir: %v %v, want mode 0700", fi, err)
			}
		})
	}
}

// TestBackupRestoreHostile backs up a data dir with links, a FIFO and a
// hard link planted in it and restores it: the app gets its files (owned
// by it, links included, given as they were made), its links stay links,
// and no root-only content reaches the restored tree.
func TestBackupRestoreHostile(t *testing.T) {
	e := newHostileEnv(t)
	e.appDB(t)
	media := e.layout.MediaDir(hostileApp)
	must(t, os.Mkdir(filepath.Join(media, "sub"), 0o750))
	must(t, os.Chown(filepath.Join(media, "sub"), nobody.uid, nobody.gid))
	e.appFile(t, "media/sub/doc.txt", "DOC")
	must(t, os.Symlink(e.secret, filepath.Join(media, "secret.jpg")))
	must(t, os.Symlink(filepath.Dir(e.secret), filepath.Join(media, "up")))
	must(t, os.Link(e.stateCopy, filepath.Join(media, "state.db")))
	must(t, syscall.Mkfifo(filepath.Join(media, "pipe"), 0o644))
	archive, _ := e.backup(t)

	into := filepath.Join(t.TempDir(), "data")
	layout := provision.Layout{Srv: filepath.Join(into, "srv")}
	rs := &Restore{Data: into, Layout: layout, ensureUser: nobodyUser}
	if _, err := rs.Run(context.Background(), bytes.NewReader(archive)); err != nil {
		t.Fatal(err)
	}
	data := layout.DataDir(hostileApp)
	for rel, want := range map[string]string{"media/photo.jpg": "PHOTO", "media/sub/doc.txt": "DOC"} {
		if b, err := os.ReadFile(filepath.Join(data, rel)); err != nil || string(b) != want {
			t.Errorf("restored %s: %q %v", rel, b, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(data, "media", "secret.jpg")); err != nil || l != e.secret {
		t.Errorf("media/secret.jpg should be restored as the link it was: %q %v", l, err)
	}
	if fi, err := os.Lstat(filepath.Join(data, "media", "up")); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("media/up should be restored as the link it was: %v %v", fi, err)
	}
	for _, rel := range []string{"media/state.db", "media/pipe"} {
		if _, err := os.Lstat(filepath.Join(data, rel)); err == nil {
			t.Errorf("restored %s", rel)
		}
	}
	if got := sqliteRowsAt(t, filepath.Join(data, "db.sqlite3")); got != appRow {
		t.Errorf("restored database rows: %q", got)
	}
	err := filepath.WalkDir(into, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		uid := int(fi.Sys().(*syscall.Stat_t).Uid)
		inData := p == data || strings.HasPrefix(p, data+"/")
		if inData && uid != nobody.uid {
			t.Errorf("%s is owned by uid %d, not the app's", p, uid)
		}
		if !inData && strings.HasPrefix(p, filepath.Join(into, "srv", "projects")) && uid != 0 && fi.IsDir() && p != layout.HomeDir(hostileApp) {
			t.Errorf("%s (not the app's data) is owned by uid %d", p, uid)
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, secret := range []string{sentinel, stateMarker} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("restored %s holds %s", p, secret)
				}
			}
		}
		return nil
	})
	must(t, err)
}

func sqliteRowsAt(t *testing.T, p string) string {
	t.Helper()
	raw, err := os.ReadFile(p)
	must(t, err)
	return sqliteRows(t, raw)
}
