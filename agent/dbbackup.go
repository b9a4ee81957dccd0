package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/backup"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/provision"
)

// db:backup and db:restore run on the app's host: its SQLite file is
// there, and so are the backups' files, in BackupDir/<app>/ (root's, 0700,
// like BackupDir itself). The state (which backups exist) is the main
// host's; this side only writes, reads and removes files.

type dbBackupRequest struct {
	App    *conductor.App `json:"app"`
	Alias  string         `json:"alias"`
	Kind   string         `json:"kind,omitempty"`
	File   string         `json:"file,omitempty"`
	SHA256 string         `json:"sha256,omitempty"`
	Files  []string       `json:"files,omitempty"` // db-backup-remove, db-backup-where
	// Remote is the backup's off-host object (db-restore from it when the
	// file is gone); Remotes those db-backup-remove deletes; Size the
	// backup's size.
	Remote  string   `json:"remote,omitempty"`
	Remotes []string `json:"remotes,omitempty"`
	Size    int64    `json:"size,omitempty"`
}

// DBBackupResult is what db-backup wrote.
type DBBackupResult struct {
	Kind   string `json:"kind"`
	File   string `json:"file"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Offsite is the host's off-host target ("": none): the SSH server
	// then asks for the upload (db-backup-upload) once it recorded the
	// backup.
	Offsite string `json:"offsite,omitempty"`
}

// DBBackupUploadResult is where db-backup-upload put the file.
type DBBackupUploadResult struct {
	Key string `json:"key"`
}

// DBBackupWhere tells which of an app's backup files are on its host and
// which are in its off-host target.
type DBBackupWhere struct {
	Local       []string `json:"local"`
	Offsite     string   `json:"offsite,omitempty"` // "": no target
	Remote      []string `json:"remote"`            // keys
	RemoteError string   `json:"remote_error,omitempty"`
}

// backupTimeout bounds a backup or a restore as the SSH server waits.
const backupTimeout = 2 * time.Hour

func (h *Host) dbBackupRequest(data []byte) (dbBackupRequest, error) {
	req, err := decode[dbBackupRequest](data)
	if err != nil {
		return req, err
	}
	if req.App == nil || conductor.ValidateAppName(req.App.Name) != nil {
		return req, conductor.Errorf(conductor.EINVALID, "db backup: bad app")
	}
	if req.Alias != "" {
		if err := conductor.ValidateDatabaseAlias(req.Alias); err != nil {
			return req, err
		}
	}
	if h.BackupDir == "" || h.Databases == nil {
		return req, conductor.Errorf(conductor.EUNAVAILABLE, "host %s takes no database backups", h.Name)
	}
	return req, nil
}

// appBackupDir makes (or checks) BackupDir/<app>, root-only.
func (h *Host) appBackupDir(app string) (string, error) {
	if err := os.MkdirAll(h.BackupDir, 0o700); err != nil {
		return "", err
	}
	dir := filepath.Join(h.BackupDir, app)
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return "", err
	}
	// Both are Conductor's own: chmod keeps them private even if an
	// older or hand-made directory was wider.
	for _, d := range []string{h.BackupDir, dir} {
		fi, err := os.Lstat(d)
		if err != nil {
			return "", err
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s is not a directory", d)
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// target finds the database of an alias.
func (h *Host) target(ctx context.Context, app *conductor.App, alias string) (backup.AppDB, error) {
	if alias == "" {
		alias = conductor.DefaultAlias
	}
	t := backup.AppDB{App: app.Name, Alias: alias}
	if alias == conductor.DefaultAlias && app.DBKind == conductor.DBSQLite {
		t.Kind = conductor.DBSQLite
		t.SQLite = provision.SQLiteDatabase(h.Layout, app.Name).Name
		if !h.Databases.SQLiteExists(app.Name) {
			return t, conductor.Errorf(conductor.ENOTFOUND, "%s has no SQLite database yet (its first deploy makes it)", app.Name)
		}
		return t, nil
	}
	db, err := h.Databases.Store.FindAppDatabase(ctx, app.ID, alias)
	if err != nil {
		return t, err
	}
	srv := h.Databases.Servers[db.Kind]
	if srv == nil {
		return t, conductor.Errorf(conductor.EUNAVAILABLE, "host %s has no %s server configured", h.Name, db.Kind)
	}
	t.Kind, t.DB, t.Server = db.Kind, db, srv
	return t, nil
}

// dbBackup writes a backup of one of an app's databases.
func (h *Host) dbBackup(ctx context.Context, data []byte) (any, error) {
	req, err := h.dbBackupRequest(data)
	if err != nil {
		return nil, err
	}
	t, err := h.target(ctx, req.App, req.Alias)
	if err != nil {
		return nil, err
	}
	dir, err := h.appBackupDir(req.App.Name)
	if err != nil {
		return nil, err
	}
	if err := checkFileName(req.File); err != nil {
		return nil, err
	}
	res, err := backup.DumpApp(ctx, t, dir, req.File)
	if err != nil {
		return nil, err
	}
	out := DBBackupResult{Kind: t.Kind, File: req.File, Size: res.Size, SHA256: res.SHA256}
	if h.Offsite != nil {
		out.Offsite = h.Offsite.String()
	}
	return out, nil
}

// dbRestore restores one of an app's backups with the app's processes
// stopped, and starts them again however the restore ended.
func (h *Host) dbRestore(ctx context.Context, data []byte) (any, error) {
	req, err := h.dbBackupRequest(data)
	if err != nil {
		return nil, err
	}
	t, err := h.target(ctx, req.App, req.Alias)
	if err != nil {
		return nil, err
	}
	if t.Kind != req.Kind {
		return nil, conductor.Errorf(conductor.EINVALID, "this backup is of a %s database; %s's %s database is %s now", req.Kind, req.App.Name, t.Alias, t.Kind)
	}
	if err := checkFileName(req.File); err != nil {
		return nil, err
	}
	dir, err := h.appBackupDir(req.App.Name)
	if err != nil {
		return nil, err
	}
	name := req.File
	if _, err := os.Lstat(filepath.Join(dir, req.File)); errors.Is(err, os.ErrNotExist) {
		// The local file was pruned or lost: the off-host copy is
		// fetched (and checked) before the app is stopped.
		if req.Remote == "" || h.Offsite == nil {
			return nil, conductor.Errorf(conductor.ENOTFOUND, "the file of this backup is gone from host %s and there is no off-host copy of it to restore from", h.Name)
		}
		if name, err = h.fetchRemote(ctx, req, dir); err != nil {
			return nil, err
		}
		defer os.Remove(filepath.Join(dir, name))
	} else if err != nil {
		return nil, err
	}
	restart, err := h.stopApp(ctx, req.App.Name)
	// The processes come back whatever happened, with their own context:
	// a cancelled request must not leave the app down.
	defer func() {
		if rerr := restart(context.WithoutCancel(ctx)); rerr != nil {
			slog.Error("start the app's processes again after a restore", "app", req.App.Name, "err", rerr)
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("stop %s's processes for the restore: %w", req.App.Name, err)
	}
	return nil, backup.RestoreApp(ctx, t, dir, name, req.SHA256)
}

// fetchRemote downloads a backup's off-host copy into a new root-only file
// in the app's backups directory (itself root-only), checks its size and
// SHA-256 against the state's, and returns the file's name.
func (h *Host) fetchRemote(ctx context.Context, req dbBackupRequest, dir string) (string, error) {
	name := "s3-" + req.File
	path := filepath.Join(dir, name)
	// A leftover of an interrupted restore: Conductor's own file, in
	// Conductor's own directory.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return "", err
	}
	err = h.Offsite.Download(ctx, req.App.Name, req.Remote, f, req.Size, req.SHA256)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", conductor.Errorf(conductor.EUNAVAILABLE, "fetch the off-host copy: %v", err)
	}
	slog.Info("fetched a backup's off-host copy for a restore", "app", req.App.Name, "object", req.Remote, "size", req.Size)
	return name, nil
}

// dbBackupUpload copies a backup file to the host's off-host target.
func (h *Host) dbBackupUpload(ctx context.Context, data []byte) (any, error) {
	req, err := h.dbBackupRequest(data)
	if err != nil {
		return nil, err
	}
	if h.Offsite == nil {
		return nil, conductor.Errorf(conductor.EUNAVAILABLE, "host %s has no off-host target (--backup-s3-url)", h.Name)
	}
	if err := checkFileName(req.File); err != nil {
		return nil, err
	}
	dir, err := h.appBackupDir(req.App.Name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, req.File), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("open the backup file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || (req.Size > 0 && fi.Size() != req.Size) {
		return nil, conductor.Errorf(conductor.EINVALID, "the backup file is not the one recorded (%d bytes, %d recorded)", fi.Size(), req.Size)
	}
	key, err := h.Offsite.Upload(ctx, req.App.Name, req.File, f, fi.Size(), req.SHA256)
	if err != nil {
		return nil, conductor.Errorf(conductor.EUNAVAILABLE, "%v", err)
	}
	return DBBackupUploadResult{Key: key}, nil
}

// dbBackupWhere tells which of req.Files are on this host, and lists the
// app's off-host objects.
func (h *Host) dbBackupWhere(ctx context.Context, data []byte) (any, error) {
	req, err := h.dbBackupRequest(data)
	if err != nil {
		return nil, err
	}
	dir, err := h.appBackupDir(req.App.Name)
	if err != nil {
		return nil, err
	}
	out := DBBackupWhere{Local: []string{}, Remote: []string{}}
	for _, f := range req.Files {
		if checkFileName(f) != nil {
			continue
		}
		if fi, err := os.Lstat(filepath.Join(dir, f)); err == nil && fi.Mode().IsRegular() {
			out.Local = append(out.Local, f)
		}
	}
	if h.Offsite != nil {
		out.Offsite = h.Offsite.String()
		objs, err := h.Offsite.List(ctx, req.App.Name)
		if err != nil {
			out.RemoteError = err.Error()
		}
		for _, o := range objs {
			out.Remote = append(out.Remote, o.Key)
		}
	}
	return out, nil
}

// stopApp scales each of the app's watchers to 0 and waits for their
// processes to be gone; the function it returns scales them back.
func (h *Host) stopApp(ctx context.Context, app string) (func(context.Context) error, error) {
	counts := map[string]int{}
	restart := func(ctx context.Context) error {
		var errs []error
		for n, c := range counts {
			errs = append(errs, h.Processes.Scale(ctx, n, c))
		}
		// The app comes out of maintenance once its web answers again.
		for n := range counts {
			if typ, port, ok := process.ParseWatcher(app, n); ok && typ == "web" && port > 0 {
				errs = append(errs, waitListening(ctx, port))
			}
		}
		return errors.Join(errs...)
	}
	names, err := h.Processes.Watchers()
	if err != nil {
		return restart, err
	}
	for _, n := range names {
		if _, ok := WatcherType(app, n); !ok {
			continue
		}
		pids, err := h.Processes.Pids(ctx, n)
		if err != nil {
			return restart, err
		}
		if len(pids) == 0 {
			continue
		}
		counts[n] = len(pids)
		if err := h.Processes.Scale(ctx, n, 0); err != nil {
			return restart, err
		}
	}
	// circus stops them in the background: wait until none is left.
	deadline := time.Now().Add(time.Minute)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		left := 0
		for n := range counts {
			pids, err := h.Processes.Pids(ctx, n)
			if err != nil {
				return restart, err
			}
			left += len(pids)
		}
		if left == 0 {
			return restart, nil
		}
		if time.Now().After(deadline) {
			return restart, fmt.Errorf("%d processes still running after a minute", left)
		}
		select {
		case <-ctx.Done():
			return restart, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// dbBackupRemove deletes backup files (retention, or a failed backup's).
func (h *Host) dbBackupRemove(ctx context.Context, data []byte) (any, error) {
	req, err := h.dbBackupRequest(data)
	if err != nil {
		return nil, err
	}
	dir, err := h.appBackupDir(req.App.Name)
	if err != nil {
		return nil, err
	}
	for _, f := range req.Files {
		if err := checkFileName(f); err != nil {
			return nil, err
		}
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if len(req.Remotes) > 0 && h.Offsite == nil {
		return nil, conductor.Errorf(conductor.EUNAVAILABLE, "host %s has no off-host target (--backup-s3-url) to remove %d objects from", h.Name, len(req.Remotes))
	}
	for _, k := range req.Remotes {
		if err := h.Offsite.Remove(ctx, req.App.Name, k); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// checkFileName accepts only the names the SSH server gives backups.
func checkFileName(name string) error {
	if name == "" || name != filepath.Base(name) || name[0] == '.' || len(name) > 100 {
		return conductor.Errorf(conductor.EINVALID, "bad backup file name %q", name)
	}
	return nil
}

// DBBackup has the app's host write a backup of one of its databases
// into the file name (in its backups directory).
func (c *Client) DBBackup(ctx context.Context, app *conductor.App, alias, file string) (*DBBackupResult, error) {
	var res DBBackupResult
	err := c.callWithin(ctx, backupTimeout, app.Host, "db-backup", dbBackupRequest{App: app, Alias: alias, File: file}, &res)
	return &res, err
}

// DBRestore has the app's host restore a backup, its processes stopped
// meanwhile.
func (c *Client) DBRestore(ctx context.Context, app *conductor.App, b *conductor.DBBackup) error {
	return c.callWithin(ctx, backupTimeout, app.Host, "db-restore",
		dbBackupRequest{App: app, Alias: b.Alias, Kind: b.Kind, File: b.File, SHA256: b.SHA256, Size: b.Size, Remote: b.Remote}, nil)
}

// DBBackupRemove has the app's host delete backup files, and objects of
// its off-host target.
func (c *Client) DBBackupRemove(ctx context.Context, app *conductor.App, files, remotes []string) error {
	return c.callWithin(ctx, backupTimeout, app.Host, "db-backup-remove", dbBackupRequest{App: app, Files: files, Remotes: remotes}, nil)
}

// DBBackupUpload has the app's host copy a backup file to its off-host
// target, and returns the object's key.
func (c *Client) DBBackupUpload(ctx context.Context, app *conductor.App, b *conductor.DBBackup) (string, error) {
	var res DBBackupUploadResult
	err := c.callWithin(ctx, backupTimeout, app.Host, "db-backup-upload",
		dbBackupRequest{App: app, File: b.File, SHA256: b.SHA256, Size: b.Size}, &res)
	return res.Key, err
}

// DBBackupWhere asks the app's host which of the files it has, and which
// objects its off-host target has of the app.
func (c *Client) DBBackupWhere(ctx context.Context, app *conductor.App, files []string) (*DBBackupWhere, error) {
	var res DBBackupWhere
	// A listing does not wait long for a host that is down.
	err := c.callWithin(ctx, 15*time.Second, app.Host, "db-backup-where", dbBackupRequest{App: app, Files: files}, &res)
	return &res, err
}

// waitListening waits (up to a minute) for a web process to accept
// connections on its port again.
func waitListening(ctx context.Context, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(time.Minute)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the web process on port %d does not answer after a minute: %w", port, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
