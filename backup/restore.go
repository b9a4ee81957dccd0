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

	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/sqlite"
)

// Restore puts a backup back into an empty data dir.
type Restore struct {
	Data    string                              // the data dir to fill: must be empty or not exist
	Layout  provision.Layout                    // where the apps' data dirs go
	Servers map[string]conductor.DatabaseServer // by kind: where the apps' databases go

	ensureUser func(ctx context.Context, app, home string) (*provision.AppUser, error) // tests: provision.EnsureUser
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
		for _, d := range app.Dumps {
			if rs.Servers[d.Kind] == nil {
				return nil, fmt.Errorf("app %s has a %s database (%s) in this backup: give its server's administrator DSN (--%s-dsn-file)", app.Name, d.Kind, d.Alias, d.Kind)
			}
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
	// The apps' unix users are made first, so that every file of an app's
	// data dir is given to it as it is made (fchown on its descriptor),
	// never later by name: the app may already run on this host.
	users := map[string]*provision.AppUser{}
	ensure := rs.ensureUser
	if ensure == nil {
		ensure = provision.EnsureUser
	}
	for _, app := range m.Apps {
		if !app.Data {
			continue
		}
		if err := conductor.ValidateAppName(app.Name); err != nil {
			return nil, fmt.Errorf("app %q in the backup: %w", app.Name, err)
		}
		u, err := ensure(ctx, app.Name, rs.Layout.ProjectDir(app.Name))
		if err != nil {
			return nil, err
		}
		users[app.Name] = u
	}
	data := &tree{base: rs.Data}
	srv := &tree{base: rs.Layout.Srv, owner: func(rel string) *provision.AppUser {
		parts := strings.SplitN(rel, "/", 4)
		if len(parts) >= 3 && parts[0] == "projects" && parts[2] == "data" {
			return users[parts[1]]
		}
		return nil
	}}
	dumps, err := os.MkdirTemp("", "conductor-restore-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dumps)
	dumpTree := &tree{base: dumps}

	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("read the backup: %w", err)
		}
		name := path.Clean(hdr.Name)
		if !filepath.IsLocal(name) {
			return nil, fmt.Errorf("unexpected entry %q in the backup", hdr.Name)
		}
		dst, rel := data, name
		switch {
		case name == stateName || name == hostKeyName || name == natsToken,
			name == reposDir || strings.HasPrefix(name, reposDir+"/"),
			name == certsDir || strings.HasPrefix(name, certsDir+"/"),
			name == natsTLSDir || strings.HasPrefix(name, natsTLSDir+"/"),
			name == dbBackupsDir || strings.HasPrefix(name, dbBackupsDir+"/"):
		case name == srvDir || strings.HasPrefix(name, srvDir+"/"):
			dst, rel = srv, strings.TrimPrefix(strings.TrimPrefix(name, srvDir), "/")
			// Only the data dirs of the backup's apps are under srv;
			// their parents are made as root's.
			if rel != "" && srv.owner(rel) == nil {
				return nil, fmt.Errorf("unexpected entry %q in the backup: not in the data dir of an app it lists", hdr.Name)
			}
		case strings.HasPrefix(name, dumpsDir+"/"):
			dst, rel = dumpTree, strings.TrimPrefix(name, dumpsDir+"/")
		default:
			return nil, fmt.Errorf("unexpected entry %q in the backup", hdr.Name)
		}
		if rel == "" {
			continue
		}
		if err := dst.extract(rel, hdr, tr); err != nil {
			return nil, fmt.Errorf("restore %s: %w", hdr.Name, err)
		}
	}
	if err := rs.finish(ctx, m, users, dumps); err != nil {
		return nil, err
	}
	return m, nil
}

// finish gives the apps their files back and loads their databases.
func (rs *Restore) finish(ctx context.Context, m *Manifest, users map[string]*provision.AppUser, dumps string) error {
	store, err := sqlite.Open(ctx, filepath.Join(rs.Data, stateName))
	if err != nil {
		return fmt.Errorf("open the restored state: %w", err)
	}
	defer store.Close()
	for _, info := range m.Apps {
		if u := users[info.Name]; u != nil {
			// Its files were given to it as they were extracted.
			if err := provision.Dirs(ctx, rs.Layout, info.Name, u); err != nil {
				return err
			}
		}
		type dump struct{ alias, path string }
		var todo []dump
		if info.Dump != "" {
			todo = append(todo, dump{conductor.DefaultAlias, info.Dump})
		}
		for _, d := range info.Dumps {
			todo = append(todo, dump{d.Alias, d.Path})
		}
		if len(todo) == 0 {
			continue
		}
		app, err := store.FindApp(ctx, info.Name)
		if err != nil {
			return err
		}
		for _, d := range todo {
			db, err := store.FindAppDatabase(ctx, app.ID, d.alias)
			if err != nil {
				return fmt.Errorf("app %s: the backup has the dump of its database %s but not its credentials: %w", info.Name, d.alias, err)
			}
			if err := rs.load(ctx, db, filepath.Join(dumps, strings.TrimPrefix(d.path, dumpsDir+"/"))); err != nil {
				return fmt.Errorf("app %s: %w", info.Name, err)
			}
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

// tree is where a restore writes entries: beneath base, a directory root
// made or trusts, never through a symbolic link. Each entry's parents are
// opened one by one with O_NOFOLLOW from base's descriptor (made when
// missing), so neither a link the archive put there earlier nor one an app
// planted leads a write elsewhere; an entry under a link is refused. Files,
// directories and links are made exclusively, and their owner and mode are
// set on the descriptor (fchown, fchmod) or, for a link, with
// fchownat(AT_SYMLINK_NOFOLLOW).
type tree struct {
	base string
	// owner is the app user to give rel to (nil: root's, as made).
	owner func(rel string) *provision.AppUser
}

func (t *tree) ownerOf(rel string) (uid, gid int) {
	if t.owner == nil || os.Geteuid() != 0 {
		return -1, -1
	}
	if u := t.owner(rel); u != nil {
		return u.UID, u.GID
	}
	return -1, -1
}

// setOwnerMode gives the open fd to rel's owner, then sets its mode (after
// the chown, which may clear mode bits).
func (t *tree) setOwnerMode(fd int, rel string, mode uint32) error {
	if uid, gid := t.ownerOf(rel); uid >= 0 {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return err
		}
	}
	return unix.Fchmod(fd, mode)
}

// openDir opens the directory rel beneath base, making missing ones
// (impliedDirMode, given to their owner); a component that is a link or
// not a directory is an error.
func (t *tree) openDir(rel string) (int, error) {
	fd, err := unix.Open(t.base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: t.base, Err: err}
	}
	if rel == "." {
		return fd, nil
	}
	comps := strings.Split(rel, "/")
	for i, c := range comps {
		sub := strings.Join(comps[:i+1], "/")
		made := true
		if err := unix.Mkdirat(fd, c, 0o700); errors.Is(err, unix.EEXIST) {
			made = false
		} else if err != nil {
			unix.Close(fd)
			return -1, &fs.PathError{Op: "mkdir", Path: sub, Err: err}
		}
		next, err := openDirNoFollow(fd, c)
		unix.Close(fd)
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: sub, Err: err}
		}
		if made {
			if err := t.setOwnerMode(next, sub, impliedDirMode); err != nil {
				unix.Close(next)
				return -1, &fs.PathError{Op: "chown", Path: sub, Err: err}
			}
		}
		fd = next
	}
	return fd, nil
}

// openDirNoFollow opens the directory name in dirfd; a symlink there is
// an error saying so.
func openDirNoFollow(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, errors.New("is a symbolic link: nothing is restored through one")
		}
	}
	return fd, err
}

// extract writes one entry at rel (clean, local) beneath the tree's base.
func (t *tree) extract(rel string, hdr *tar.Header, r io.Reader) error {
	mode := uint32(fs.FileMode(hdr.Mode).Perm())
	dirfd, err := t.openDir(path.Dir(rel))
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	base := path.Base(rel)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(dirfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		fd, err := openDirNoFollow(dirfd, base)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return t.setOwnerMode(fd, rel, mode)
	case tar.TypeReg:
		fd, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), rel)
		_, err = io.Copy(f, r)
		if err == nil {
			err = t.setOwnerMode(fd, rel, mode)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, dirfd, base); err != nil {
			return err
		}
		uid, gid := t.ownerOf(rel)
		if uid < 0 {
			return nil
		}
		// Chowned through a descriptor of the link itself (O_PATH):
		// the app may have swapped the name for a hard link to
		// another file since the symlinkat.
		fd, err := unix.Openat(dirfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return errors.New("replaced while it was restored")
		}
		return unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
	}
	return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
}
