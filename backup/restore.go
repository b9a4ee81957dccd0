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
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/sqlite"
)

// Restore puts a backup back into an empty data dir.
type Restore struct {
	Data    string                              // the data dir to fill: must be empty or not exist
	Layout  provision.Layout                    // where the apps' data dirs go
	Servers map[string]conductor.DatabaseServer // by kind: where the apps' databases go
}

// Run reads the archive r and restores it: the state, host key and
// repositories into Data, the apps' data dirs under Layout (given to each
// app's unix user, made if needed), and each dumped database into a new,
// empty database on its server, made with the app's stored credentials.
// Nothing is written before the manifest shows that every server the
// dumps need is configured.
func (rs *Restore) Run(ctx context.Context, r io.Reader) (*Manifest, error) {
	if err := emptyDir(rs.Data); err != nil {
		return nil, err
	}
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a Conductor backup (gzip): %w", err)
	}
	tr := tar.NewReader(gz)
	m, err := readManifest(tr)
	if err != nil {
		return nil, err
	}
	for _, app := range m.Apps {
		if app.Dump != "" && rs.Servers[app.DB] == nil {
			return nil, fmt.Errorf("app %s has a %s database in this backup: give its server's administrator DSN (--%s-dsn-file)", app.Name, app.DB, app.DB)
		}
	}
	if err := os.MkdirAll(rs.Data, 0o711); err != nil {
		return nil, err
	}
	// 0711: app users traverse the data dir to their releases, as init makes it.
	if err := os.Chmod(rs.Data, 0o711); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(rs.Layout.Srv, 0o755); err != nil {
		return nil, err
	}
	data, err := os.OpenRoot(rs.Data)
	if err != nil {
		return nil, err
	}
	defer data.Close()
	srv, err := os.OpenRoot(rs.Layout.Srv)
	if err != nil {
		return nil, err
	}
	defer srv.Close()
	dumps, err := os.MkdirTemp("", "conductor-restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dumps)
	dumpRoot, err := os.OpenRoot(dumps)
	if err != nil {
		return nil, err
	}
	defer dumpRoot.Close()

	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read the backup: %w", err)
		}
		name := path.Clean(hdr.Name)
		root, rel := data, name
		switch {
		case name == stateName || name == hostKeyName || name == natsToken,
			name == reposDir || strings.HasPrefix(name, reposDir+"/"),
			name == certsDir || strings.HasPrefix(name, certsDir+"/"),
			name == natsTLSDir || strings.HasPrefix(name, natsTLSDir+"/"):
		case name == srvDir || strings.HasPrefix(name, srvDir+"/"):
			root, rel = srv, strings.TrimPrefix(strings.TrimPrefix(name, srvDir), "/")
		case strings.HasPrefix(name, dumpsDir+"/"):
			root, rel = dumpRoot, strings.TrimPrefix(name, dumpsDir+"/")
		default:
			return nil, fmt.Errorf("unexpected entry %q in the backup", hdr.Name)
		}
		if rel == "" {
			continue
		}
		if err := extract(root, rel, hdr, tr); err != nil {
			return nil, fmt.Errorf("restore %s: %w", hdr.Name, err)
		}
	}
	if err := rs.finish(ctx, m, dumps); err != nil {
		return nil, err
	}
	return m, nil
}

// finish gives the apps their files back and loads their databases.
func (rs *Restore) finish(ctx context.Context, m *Manifest, dumps string) error {
	store, err := sqlite.Open(ctx, filepath.Join(rs.Data, stateName))
	if err != nil {
		return fmt.Errorf("open the restored state: %w", err)
	}
	defer store.Close()
	for _, info := range m.Apps {
		if info.Data {
			// The app's unix user may not exist on this host (or have
			// another uid): make it as a deploy would, and give it its files.
			u, err := provision.EnsureUser(ctx, info.Name, rs.Layout.ProjectDir(info.Name))
			if err != nil {
				return err
			}
			if err := provision.Dirs(ctx, rs.Layout, info.Name, u); err != nil {
				return err
			}
			if err := u.ChownTree(ctx, rs.Layout.DataDir(info.Name)); err != nil {
				return err
			}
		}
		if info.Dump == "" {
			continue
		}
		app, err := store.FindApp(ctx, info.Name)
		if err != nil {
			return err
		}
		db, err := store.FindAppDatabase(ctx, app.ID)
		if err != nil {
			return fmt.Errorf("app %s: the backup has its dump but not its credentials: %w", info.Name, err)
		}
		if err := rs.load(ctx, db, filepath.Join(dumps, strings.TrimPrefix(info.Dump, dumpsDir+"/"))); err != nil {
			return fmt.Errorf("app %s: %w", info.Name, err)
		}
	}
	return nil
}

// load makes the app's database and user (with its stored password) and
// runs the dump in it; a database that has tables already is left alone.
func (rs *Restore) load(ctx context.Context, db *conductor.AppDatabase, dump string) error {
	srv := rs.Servers[db.Kind]
	if err := srv.Create(ctx, db); err != nil {
		return err
	}
	host, port := srv.Endpoint()
	n, err := tableCount(ctx, db, host, port)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%s has %d tables already: drop it (or restore elsewhere) to load the backup's dump", db, n)
	}
	f, err := os.Open(dump)
	if err != nil {
		return err
	}
	defer f.Close()
	return loadDatabase(ctx, db, host, port, f)
}

// emptyDir checks that dir does not exist or is empty.
func emptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty: restore into a new data dir", dir)
	}
	return nil
}

// readManifest reads the archive's first entry.
func readManifest(tr *tar.Reader) (*Manifest, error) {
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("not a Conductor backup: %w", err)
	}
	if hdr.Name != manifestName {
		return nil, fmt.Errorf("not a Conductor backup: it starts with %q, not %s", hdr.Name, manifestName)
	}
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("read the backup's manifest: %w", err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("backup format %d: this conductor reads format %d", m.Format, Format)
	}
	return &m, nil
}

// ReadManifest returns the manifest of the archive r, to see what a backup
// holds.
func ReadManifest(r io.Reader) (*Manifest, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a Conductor backup (gzip): %w", err)
	}
	return readManifest(tar.NewReader(gz))
}

// impliedDirMode is the mode of directories an archive does not list
// (srv/projects, repos): app users must traverse them to their own
// directories, and need not list them.
const impliedDirMode = 0o711

// extract writes one entry under root, which no name or symlink in the
// archive can leave.
func extract(root *os.Root, name string, hdr *tar.Header, r io.Reader) error {
	mode := fs.FileMode(hdr.Mode).Perm()
	if dir := path.Dir(name); dir != "." && hdr.Typeflag != tar.TypeDir {
		if err := root.MkdirAll(dir, impliedDirMode); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.MkdirAll(name, impliedDirMode); err != nil {
			return err
		}
		return root.Chmod(name, mode)
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, r); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		return root.Chmod(name, mode)
	case tar.TypeSymlink:
		return root.Symlink(hdr.Linkname, name)
	}
	return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
}
