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
	"time"

	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
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
	// The per-app database backups of this host (db:backup, kept in
	// <data>/db-backups/<app>/): the state lists them, and for a restore
	// after losing the host they are what matters most.
	dbBackupsDir = "db-backups"
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
	Dump string `json:"dump,omitempty"` // path of its default database's dump in the archive
	// Dumps are its other aliases' databases (db:create --alias).
	Dumps []AliasDump `json:"dumps,omitempty"`

	// Notes say what of its data dir was left out of the archive, and
	// why (a link to its database, a file it could not read itself).
	// They are learnt while the archive is written, after the manifest
	// in it: Write returns them, the archive does not hold them.
	Notes []string `json:"-"`
}

// AliasDump is the dump of an app's database under an alias other than
// the default.
type AliasDump struct {
	Alias string `json:"alias"`
	Kind  string `json:"kind"` // postgres or mysql
	Path  string `json:"path"` // in the archive
}

// Backup takes backups of one Conductor.
type Backup struct {
	Data    string                              // the data dir: conductor.db, host key, repos
	Layout  provision.Layout                    // where the apps' data dirs are
	Servers map[string]conductor.DatabaseServer // by kind: where the apps' databases are
	Version string                              // written into the manifest
	// SkipDBBackups leaves <data>/db-backups out (they are copied
	// off-host already, or too large to carry in every archive).
	SkipDBBackups bool

	appUser func(app string) (appUser, error) // tests: who the app's code runs as (lookupAppUser)
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
	// The apps' users write their database snapshots, each into a
	// directory of its own under this one (root's, 0711), never next to
	// the state's snapshot, which they must not reach.
	snaps, err := os.MkdirTemp("", "conductor-snapshots-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(snaps)
	if err := os.Chmod(snaps, 0o711); err != nil {
		return nil, err
	}
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
	if err := aw.fileIn(natsToken, b.Data, natsToken, true); err != nil {
		return nil, err
	}
	if err := aw.treeIn(certsDir, filepath.Join(b.Data, certsDir), &source{}); err != nil {
		return nil, err
	}
	if err := aw.treeIn(natsTLSDir, filepath.Join(b.Data, natsTLSDir), &source{}); err != nil {
		return nil, err
	}
	if !b.SkipDBBackups {
		// Conductor's own root-only files, never written by an app.
		if err := aw.treeIn(dbBackupsDir, filepath.Join(b.Data, dbBackupsDir), &source{}); err != nil {
			return nil, err
		}
	}
	for i := range m.Apps {
		app := &m.Apps[i]
		if err := aw.repo(reposDir+"/"+app.Name+".git", filepath.Join(b.Data, reposDir, app.Name+".git")); err != nil {
			return nil, err
		}
		if app.Data {
			if err := b.appData(ctx, aw, snaps, app); err != nil {
				return nil, err
			}
		}
		if app.Dump != "" {
			if err := b.dump(ctx, aw, tmp, app.Name, app.Dump, dbs[app.Name][conductor.DefaultAlias]); err != nil {
				return nil, err
			}
		}
		for _, d := range app.Dumps {
			if err := b.dump(ctx, aw, tmp, app.Name, d.Path, dbs[app.Name][d.Alias]); err != nil {
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
// server databases' credentials, by app and alias.
func (b *Backup) manifest(ctx context.Context, path string) (*Manifest, map[string]map[string]*conductor.AppDatabase, error) {
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
	dbs := map[string]map[string]*conductor.AppDatabase{}
	for _, app := range apps {
		info := AppInfo{Name: app.Name, DB: app.DBKind, Host: app.Host}
		if r, err := store.CurrentRelease(ctx, app.ID); err == nil {
			info.Rev = r.Rev
		} else if conductor.ErrorCode(err) != conductor.ENOTFOUND {
			return nil, nil, err
		}
		// Reached without a link: the data dir is the app's, and its
		// project dir was too in earlier layouts.
		if d, err := safefs.OpenDir(b.Layout.ProjectsDir(), app.Name+"/data"); err == nil {
			d.Close()
			info.Data = true
		} else if !errors.Is(err, fs.ErrNotExist) {
			info.Notes = append(info.Notes, "data dir not backed up: "+printable(err.Error()))
		}
		// Every alias is dumped; one not provisioned yet (apps:create
		// --db before the first deploy) has no row and nothing to dump.
		all, err := store.AppDatabases(ctx, app.ID)
		if err != nil {
			return nil, nil, err
		}
		for _, db := range all {
			if b.Servers[db.Kind] == nil {
				return nil, nil, fmt.Errorf("app %s has a %s database: give its server's administrator DSN (--%s-dsn-file) to dump it", app.Name, db.Kind, db.Kind)
			}
			if dbs[app.Name] == nil {
				dbs[app.Name] = map[string]*conductor.AppDatabase{}
			}
			dbs[app.Name][db.Alias] = db
			if db.Alias == conductor.DefaultAlias {
				info.Dump = dumpsDir + "/" + app.Name + ".sql"
			} else {
				// Aliases have no dot, so this never meets another name.
				info.Dumps = append(info.Dumps, AliasDump{Alias: db.Alias, Kind: db.Kind, Path: dumpsDir + "/" + app.Name + "." + db.Alias + ".sql"})
			}
		}
		m.Apps = append(m.Apps, info)
	}
	return m, dbs, nil
}

// appData archives an app's data dir (see walk.go); its SQLite database is
// snapshotted by the app's user (see appdb.go), not copied, since the app
// may be writing to it. What is left out is noted in app.Notes.
func (b *Backup) appData(ctx context.Context, aw *archiveWriter, snaps string, app *AppInfo) error {
	lookup := b.appUser
	if lookup == nil {
		lookup = lookupAppUser
	}
	u, err := lookup(app.Name)
	if err != nil {
		app.Notes = append(app.Notes, "data dir not backed up: "+printable(err.Error()))
		return nil
	}
	d, err := safefs.OpenDir(b.Layout.ProjectsDir(), app.Name+"/data")
	if err != nil {
		app.Notes = append(app.Notes, "data dir not backed up: "+printable(err.Error()))
		return nil
	}
	defer d.Close()
	dir := b.Layout.DataDir(app.Name)
	rel, err := filepath.Rel(b.Layout.Srv, dir)
	if err != nil {
		return err
	}
	src := &source{app: app.Name, uid: u.uid, gid: u.gid, check: os.Geteuid() == 0}
	// The SQLite file is snapshotted whatever the default's kind: an app
	// moved to a server (db:create) keeps its old file, which is data too.
	{
		db, err := filepath.Abs(provision.SQLiteDatabase(b.Layout, app.Name).Name)
		if err != nil {
			return err
		}
		if filepath.Dir(db) != dir {
			return fmt.Errorf("app %s: its database %s is not in its data dir", app.Name, db)
		}
		src.special = func(a *archiveWriter, dirfd int, base, name, rel string) (bool, error) {
			return b.sqliteEntry(ctx, a, src, u, snaps, db, dirfd, base, name, rel)
		}
	}
	err = aw.walkOpen(d, srvDir+"/"+filepath.ToSlash(rel), ".", src, 0)
	app.Notes = append(app.Notes, src.notes...)
	return err
}

// sqliteEntry archives the app's database (at db) and its companion files
// when rel is one of them, and reports whether it was.
func (b *Backup) sqliteEntry(ctx context.Context, a *archiveWriter, src *source, u appUser, snaps, db string, dirfd int, base, name, rel string) (bool, error) {
	dbName := filepath.Base(db)
	switch rel {
	case dbName + "-wal", dbName + "-shm", dbName + "-journal":
		return true, nil // part of the snapshot
	case dbName:
	default:
		return false, nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
		return true, nil
	} else if err != nil {
		src.note(rel, "database not backed up: "+err.Error())
		return true, nil
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
	case unix.S_IFLNK:
		src.note(rel, "database not backed up: it is a symbolic link (kept as a link, its target not read)")
		return false, nil // archived as the link it is
	default:
		src.note(rel, "database not backed up: it is not a regular file")
		return true, nil
	}
	f, err := snapshotAsApp(ctx, src.app, u, db, snaps)
	if err != nil {
		src.note(rel, "database not backed up: "+err.Error())
		return true, nil
	}
	defer f.Close()
	var snap unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &snap); err != nil {
		return true, err
	}
	snap.Mode = unix.S_IFREG | 0o600
	return true, a.content(name, &snap, f)
}

// dump archives an app's server database as SQL, at name in the archive.
func (b *Backup) dump(ctx context.Context, aw *archiveWriter, tmp, app, name string, db *conductor.AppDatabase) error {
	path := filepath.Join(tmp, filepath.Base(name))
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
		return fmt.Errorf("dump the database %s of %s: %w", db.Alias, app, err)
	}
	slog.Info("dumped app database", "app", app, "db", db)
	defer os.Remove(path)
	return aw.file(name, path)
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

// file adds the file at path (in a directory only root can write) as name.
func (a *archiveWriter) file(name, path string) error {
	return a.fileIn(name, filepath.Dir(path), filepath.Base(path), false)
}

// repo adds a bare repository with its refs before its objects: a push
// that lands while the backup runs adds objects before it moves a ref, so
// every ref archived points at objects archived after it.
func (a *archiveWriter) repo(prefix, dir string) error {
	d, err := openDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // never pushed to
	} else if err != nil {
		return err
	}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &st); err != nil {
		return err
	}
	if err := a.tw.WriteHeader(header(prefix, &st, tar.TypeDir, "")); err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	sort.Slice(names, func(i, j int) bool {
		oi, oj := names[i] == "objects", names[j] == "objects"
		if oi != oj {
			return oj
		}
		return names[i] < names[j]
	})
	src := &source{}
	for _, n := range names {
		if n == "hooks" {
			continue // conductor serve uses its own hooks dir
		}
		if err := a.at(int(d.Fd()), n, prefix+"/"+n, n, src, 1); err != nil {
			return err
		}
	}
	return nil
}
