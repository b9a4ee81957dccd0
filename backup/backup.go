// Package backup writes Conductor's state to one .tar.gz and puts it back
// into an empty data dir: a consistent snapshot of the SQLite state (taken
// while conductor serve runs), the SSH host key, the NATS token, the TLS
// certificates, the git repositories, the
// apps' data dirs (their SQLite databases snapshotted the same way, media
// files) and SQL dumps of their PostgreSQL and MariaDB databases.
//
// Releases, virtualenvs, nginx sites and circus watchers are not in a
// backup: they are built again from the repositories by a deploy.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/sqlite"
)

// Format is the version of the archive layout.
const Format = 1

// Paths inside an archive.
const (
	manifestName = "manifest.json"
	stateName    = "conductor.db"
	hostKeyName  = "ssh_host_ed25519_key"
	natsToken    = "nats.token" // workers on other hosts log in to NATS with it
	certsDir     = "certs"      // TLS certificates and the ACME account key
	natsTLSDir   = "nats-tls"   // the embedded NATS server's CA, which workers trust
	reposDir     = "repos"
	srvDir       = "srv"       // the Layout's Srv: projects/<app>/data/…
	dumpsDir     = "databases" // <app>.sql
)

// Manifest is the first entry of an archive: what it holds.
type Manifest struct {
	Format    int       `json:"format"`
	Created   time.Time `json:"created"`
	Conductor string    `json:"conductor"` // version of the conductor that wrote it
	Data      string    `json:"data"`      // the data dir it was taken from
	Apps      []AppInfo `json:"apps"`
}

// AppInfo is one app in a backup.
type AppInfo struct {
	Name string `json:"name"`
	DB   string `json:"db"`             // sqlite, postgres or mysql
	Host string `json:"host,omitempty"` // the worker host that runs it
	Rev  string `json:"rev,omitempty"`  // commit of the release it was serving
	Data bool   `json:"data"`           // its data dir is in the archive (it was on this host)
	Dump string `json:"dump,omitempty"` // path of its database dump in the archive
}

// Backup takes backups of one Conductor.
type Backup struct {
	Data    string                              // the data dir: conductor.db, host key, repos
	Layout  provision.Layout                    // where the apps' data dirs are
	Servers map[string]conductor.DatabaseServer // by kind: where the apps' databases are
	Version string                              // written into the manifest
}

// Write writes a backup archive (tar, gzip) to w and returns its manifest.
// The state is snapshotted first, and everything else follows that
// snapshot's list of apps.
func (b *Backup) Write(ctx context.Context, w io.Writer) (*Manifest, error) {
	tmp, err := os.MkdirTemp("", "conductor-backup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	state := filepath.Join(tmp, stateName)
	if err := sqlite.Snapshot(ctx, filepath.Join(b.Data, stateName), state); err != nil {
		return nil, err
	}
	m, dbs, err := b.manifest(ctx, state)
	if err != nil {
		return nil, err
	}

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	aw := &archiveWriter{tw: tw}
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := aw.bytes(manifestName, raw); err != nil {
		return nil, err
	}
	if err := aw.file(stateName, state); err != nil {
		return nil, err
	}
	if err := aw.file(hostKeyName, filepath.Join(b.Data, hostKeyName)); err != nil {
		return nil, err
	}
	if err := aw.file(natsToken, filepath.Join(b.Data, natsToken)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := aw.tree(certsDir, filepath.Join(b.Data, certsDir), nil); err != nil {
		return nil, err
	}
	if err := aw.tree(natsTLSDir, filepath.Join(b.Data, natsTLSDir), nil); err != nil {
		return nil, err
	}
	for _, app := range m.Apps {
		if err := aw.repo(reposDir+"/"+app.Name+".git", filepath.Join(b.Data, reposDir, app.Name+".git")); err != nil {
			return nil, err
		}
		if app.Data {
			if err := b.appData(ctx, aw, tmp, app); err != nil {
				return nil, err
			}
		}
		if app.Dump != "" {
			if err := b.dump(ctx, aw, tmp, app, dbs[app.Name]); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return m, nil
}

// manifest lists the apps of the state snapshot at path, with their
// server databases' credentials.
func (b *Backup) manifest(ctx context.Context, path string) (*Manifest, map[string]*conductor.AppDatabase, error) {
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, nil, fmt.Errorf("read the state snapshot: %w", err)
	}
	defer store.Close()
	apps, err := store.ListApps(ctx)
	if err != nil {
		return nil, nil, err
	}
	m := &Manifest{Format: Format, Created: time.Now().UTC(), Conductor: b.Version, Data: b.Data}
	dbs := map[string]*conductor.AppDatabase{}
	for _, app := range apps {
		info := AppInfo{Name: app.Name, DB: app.DBKind, Host: app.Host}
		if r, err := store.CurrentRelease(ctx, app.ID); err == nil {
			info.Rev = r.Rev
		} else if conductor.ErrorCode(err) != conductor.ENOTFOUND {
			return nil, nil, err
		}
		if _, err := os.Stat(b.Layout.DataDir(app.Name)); err == nil {
			info.Data = true
		}
		if app.DBKind != conductor.DBSQLite {
			db, err := store.FindAppDatabase(ctx, app.ID)
			switch {
			case err == nil:
				if b.Servers[db.Kind] == nil {
					return nil, nil, fmt.Errorf("app %s has a %s database: give its server's administrator DSN (--%s-dsn-file) to dump it", app.Name, db.Kind, db.Kind)
				}
				dbs[app.Name] = db
				info.Dump = dumpsDir + "/" + app.Name + ".sql"
			case conductor.ErrorCode(err) != conductor.ENOTFOUND: // not provisioned yet: nothing to dump
				return nil, nil, err
			}
		}
		m.Apps = append(m.Apps, info)
	}
	return m, dbs, nil
}

// appData archives an app's data dir; its SQLite database is snapshotted,
// not copied, since the app may be writing to it.
func (b *Backup) appData(ctx context.Context, aw *archiveWriter, tmp string, app AppInfo) error {
	dir := b.Layout.DataDir(app.Name)
	rel, err := filepath.Rel(b.Layout.Srv, dir)
	if err != nil {
		return err
	}
	prefix := srvDir + "/" + filepath.ToSlash(rel)
	dbFile := provision.SQLiteDatabase(b.Layout, app.Name).Name
	return aw.tree(prefix, dir, func(path string) (replacement string, skip bool, err error) {
		if app.DB != conductor.DBSQLite || !strings.HasPrefix(path, dbFile) {
			return "", false, nil
		}
		if path != dbFile {
			return "", true, nil // -wal, -shm, -journal: part of the snapshot
		}
		snap := filepath.Join(tmp, app.Name+".sqlite3")
		if err := sqlite.Snapshot(ctx, dbFile, snap); err != nil {
			return "", false, fmt.Errorf("app %s: %w", app.Name, err)
		}
		return snap, false, nil
	})
}

// dump archives an app's server database as SQL.
func (b *Backup) dump(ctx context.Context, aw *archiveWriter, tmp string, app AppInfo, db *conductor.AppDatabase) error {
	path := filepath.Join(tmp, app.Name+".sql")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	host, port := b.Servers[db.Kind].Endpoint()
	err = dumpDatabase(ctx, db, host, port, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dump the database of %s: %w", app.Name, err)
	}
	slog.Info("dumped app database", "app", app.Name, "db", db)
	defer os.Remove(path)
	return aw.file(app.Dump, path)
}

// archiveWriter adds files to a tar stream.
type archiveWriter struct {
	tw *tar.Writer
}

func (a *archiveWriter) bytes(name string, data []byte) error {
	if err := a.tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := a.tw.Write(data)
	return err
}

// file adds the regular file at path as name.
func (a *archiveWriter) file(name, path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	return a.entry(name, path, fi)
}

// entry adds one file, directory or symlink.
func (a *archiveWriter) entry(name, path string, fi fs.FileInfo) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(path); err != nil {
			return err
		}
	} else if !fi.Mode().IsRegular() && !fi.IsDir() {
		return nil // sockets, fifos: nothing to keep
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("archive %s: %w", path, err)
	}
	hdr.Name = name
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("archive %s: %w", path, err)
	}
	defer f.Close()
	// A file that shrinks while it is read (a log rotated) is padded to
	// the size the header promised; one that grows is cut there.
	n, err := io.CopyN(a.tw, f, hdr.Size)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("archive %s: %w", path, err)
	}
	if n < hdr.Size {
		if _, err := io.CopyN(a.tw, zeros{}, hdr.Size-n); err != nil {
			return err
		}
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// tree adds the directory dir as prefix, in name order. replace may give
// another file to store in place of one (a snapshot), or skip it. Files
// that vanish while the tree is walked (git's temporary files) are left
// out.
func (a *archiveWriter) tree(prefix, dir string, replace func(path string) (string, bool, error)) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		name := prefix
		if rel != "." {
			name += "/" + filepath.ToSlash(rel)
		}
		src := path
		if replace != nil && d.Type().IsRegular() {
			r, skip, err := replace(path)
			if err != nil {
				return err
			}
			if skip {
				return nil
			}
			if r != "" {
				src = r
			}
		}
		fi, err := os.Lstat(src)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		return a.entry(name, src, fi)
	})
}

// repo adds a bare repository with its refs before its objects: a push
// that lands while the backup runs adds objects before it moves a ref, so
// every ref archived points at objects archived after it.
func (a *archiveWriter) repo(prefix, dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // never pushed to
	} else if err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if err := a.entry(prefix, dir, fi); err != nil {
		return err
	}
	sort.Slice(entries, func(i, j int) bool {
		oi, oj := entries[i].Name() == "objects", entries[j].Name() == "objects"
		if oi != oj {
			return oj
		}
		return entries[i].Name() < entries[j].Name()
	})
	for _, e := range entries {
		if e.Name() == "hooks" {
			continue // conductor serve uses its own hooks dir
		}
		if err := a.tree(prefix+"/"+e.Name(), filepath.Join(dir, e.Name()), nil); err != nil {
			return err
		}
	}
	return nil
}
