package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hasadna/conductor"
)

// Per-app database backups (db:backup, db:restore) are files in a
// directory of Conductor's on the app's host, root-only (0700), never in
// a directory the app's user can write. Root writes them from what the
// servers' dump programs or the app's own sqlite3 process hand it, and
// reads them back only from that directory.

// AppDB is one of an app's databases as a backup sees it.
type AppDB struct {
	App    string
	Alias  string
	Kind   string                   // conductor.DBSQLite, DBPostgres or DBMySQL
	SQLite string                   // the SQLite file (in the app's data dir), for DBSQLite
	DB     *conductor.AppDatabase   // the server database, for the others
	Server conductor.DatabaseServer // where it is
}

// DumpResult is what a dump wrote.
type DumpResult struct {
	Size   int64
	SHA256 string
}

// DumpApp writes a backup of db to the file name in dir (a root-only
// directory): a consistent SQLite snapshot taken by the app's user, a
// pg_dump custom-format archive, or a mariadb-dump --single-transaction
// SQL dump. The file appears under its name only once complete.
func DumpApp(ctx context.Context, db AppDB, dir, name string) (DumpResult, error) {
	if err := checkBackupName(name); err != nil {
		return DumpResult{}, err
	}
	part := filepath.Join(dir, name+".part")
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return DumpResult{}, err
	}
	defer os.Remove(part)
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := dumpTo(ctx, db, cw); err != nil {
		f.Close()
		return DumpResult{}, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return DumpResult{}, err
	}
	if err := f.Close(); err != nil {
		return DumpResult{}, err
	}
	if err := os.Rename(part, filepath.Join(dir, name)); err != nil {
		return DumpResult{}, err
	}
	return DumpResult{Size: cw.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func dumpTo(ctx context.Context, db AppDB, w io.Writer) error {
	switch db.Kind {
	case conductor.DBSQLite:
		u, err := lookupAppUser(db.App)
		if err != nil {
			return err
		}
		snaps, err := appTempDir()
		if err != nil {
			return err
		}
		defer os.RemoveAll(snaps)
		f, err := snapshotAsApp(ctx, db.App, u, db.SQLite, snaps)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	case conductor.DBPostgres:
		host, port := db.Server.Endpoint()
		return runClient(ctx, postgresEnv(db.DB, host, port), nil, w,
			"pg_dump", "--format=custom", "--no-owner", "--no-privileges")
	case conductor.DBMySQL:
		host, port := db.Server.Endpoint()
		return dumpDatabase(ctx, db.DB, host, port, w)
	}
	return fmt.Errorf("no backup for a %q database", db.Kind)
}

// RestoreApp puts the backup file name of dir back into db, after checking
// it against its recorded SHA-256. A restore that fails leaves db as it
// was:
//   - SQLite: the app's user checks the copy (PRAGMA integrity_check), then
//     sqlite3's .restore copies it in with SQLite's backup API, in one write
//     transaction on the app's file: rolled back if it fails.
//   - PostgreSQL: pg_restore turns the archive into SQL first (a damaged
//     archive fails there, before the database is touched), then psql runs,
//     in one transaction (PostgreSQL's DDL is transactional), DROP SCHEMA
//     public CASCADE, CREATE SCHEMA public and that SQL: what was made
//     after the backup goes too.
//   - MariaDB has no transactional DDL: the current database is dumped
//     first (a file next to the backup), the backup loaded, and on failure
//     the first dump loaded back.
func RestoreApp(ctx context.Context, db AppDB, dir, name, sum string) error {
	if err := checkBackupName(name); err != nil {
		return err
	}
	path := filepath.Join(dir, name)
	if err := checkSum(path, sum); err != nil {
		return err
	}
	switch db.Kind {
	case conductor.DBSQLite:
		return restoreSQLite(ctx, db, path)
	case conductor.DBPostgres:
		return restorePostgres(ctx, db, dir, name)
	case conductor.DBMySQL:
		return restoreMariaDB(ctx, db, dir, name)
	}
	return fmt.Errorf("no restore for a %q database", db.Kind)
}

// checkSum compares the file's SHA-256 with the one recorded when it was
// written: a damaged or replaced file is refused before anything changes.
func checkSum(path, sum string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("open the backup file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("read the backup file: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); sum == "" || got != sum {
		return conductor.Errorf(conductor.EINVALID, "the backup file is damaged: its SHA-256 is %s, %s was recorded when it was written; nothing was changed", got, sum)
	}
	return nil
}

func restoreSQLite(ctx context.Context, db AppDB, path string) error {
	u, err := lookupAppUser(db.App)
	if err != nil {
		return err
	}
	tmp, err := appTempDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	own := filepath.Join(tmp, db.App)
	if err := os.Mkdir(own, 0o700); err != nil {
		return err
	}
	root := os.Geteuid() == 0
	if root {
		if err := os.Lchown(own, u.uid, u.gid); err != nil {
			return err
		}
	}
	// The copy is made by root in its own temp dir, given to the app's
	// user by descriptor: the app's sqlite3 reads it from there.
	copyPath := filepath.Join(own, "restore.sqlite3")
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(copyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if root {
		if err := dst.Chown(u.uid, u.gid); err != nil {
			dst.Close()
			return err
		}
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	out, err := sqliteAsApp(ctx, u, own, copyPath, "-readonly", "PRAGMA integrity_check")
	if err != nil {
		return fmt.Errorf("check the backup: %w; nothing was changed", err)
	}
	if strings.TrimSpace(out) != "ok" {
		return conductor.Errorf(conductor.EINVALID, "the backup is not a sound SQLite database (%s); nothing was changed", firstLine(out))
	}
	if _, err := sqliteAsApp(ctx, u, own, db.SQLite, "", ".restore "+sqlString(copyPath)); err != nil {
		return fmt.Errorf("restore as the app's user: %w; SQLite rolled the copy back: the database is as it was", err)
	}
	return nil
}

// sqliteAsApp runs the sqlite3 CLI on file as the app's user u, with one
// command, and returns the start of what it printed.
func sqliteAsApp(ctx context.Context, u appUser, dir, file, flag, command string) (string, error) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		return "", fmt.Errorf("the sqlite3 program is needed (apt-get install sqlite3): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	args := []string{"-batch", "-bail", "-init", "/dev/null", "-cmd", ".timeout " + strconv.Itoa(int(sqliteTimeout/time.Millisecond))}
	if flag != "" {
		args = append(args, flag)
	}
	cmd := exec.CommandContext(ctx, sqlite3, append(args, file, command)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "HOME=/nonexistent"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{}}
	}
	cmd.WaitDelay = 5 * time.Second
	out := &headBuffer{max: 2000}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("sqlite3: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// mariadbDumpEnd is how mariadb-dump ends a complete dump: a plain SQL
// file cut short at a statement's end would otherwise load without error.
const mariadbDumpEnd = "-- Dump completed"

func restoreMariaDB(ctx context.Context, db AppDB, dir, name string) error {
	if err := checkDumpEnd(filepath.Join(dir, name)); err != nil {
		return err
	}
	host, port := db.Server.Endpoint()
	pre := filepath.Join(dir, name+".pre-restore")
	f, err := os.OpenFile(pre, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(pre)
	err = dumpDatabase(ctx, db.DB, host, port, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dump the current database before the restore: %w; nothing was changed", err)
	}
	load := func(path string) error {
		r, err := os.Open(path)
		if err != nil {
			return err
		}
		defer r.Close()
		return loadDatabase(ctx, db.DB, host, port, bufio.NewReader(r))
	}
	if err := load(filepath.Join(dir, name)); err != nil {
		// The dump has DROP TABLE IF EXISTS before each table: loading
		// the first one back puts its tables back as they were.
		if berr := load(pre); berr != nil {
			return fmt.Errorf("restore: %w; and loading back the database as it was failed too: %v", err, berr)
		}
		return fmt.Errorf("restore: %w; the database was put back as it was", err)
	}
	return nil
}

// appTempDir is a new root-owned directory app users may traverse (0711),
// where each gets a directory of its own.
func appTempDir() (string, error) {
	dir, err := os.MkdirTemp("", "conductor-dbbackup-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// checkBackupName refuses a file name that is not one Conductor makes.
func checkBackupName(name string) error {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") || strings.ContainsAny(name, "/\x00") {
		return conductor.Errorf(conductor.EINVALID, "bad backup file name %q", name)
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// checkDumpEnd refuses a MariaDB dump without mariadb-dump's last line.
func checkDumpEnd(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	tail := make([]byte, min(fi.Size(), 200))
	if _, err := f.ReadAt(tail, fi.Size()-int64(len(tail))); err != nil && err != io.EOF {
		return err
	}
	if !strings.Contains(string(tail), mariadbDumpEnd) {
		return conductor.Errorf(conductor.EINVALID, "the backup is not a complete mariadb-dump (no %q at its end); nothing was changed", mariadbDumpEnd)
	}
	return nil
}

// restorePostgres restores a pg_dump archive as described at RestoreApp.
func restorePostgres(ctx context.Context, db AppDB, dir, name string) error {
	host, port := db.Server.Endpoint()
	sqlPath := filepath.Join(dir, name+".restore.sql")
	f, err := os.OpenFile(sqlPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer os.Remove(sqlPath)
	// The public schema is dropped and made again first, in the same
	// transaction: the tables of the backup are then made afresh, and
	// those made since it are gone.
	_, err = io.WriteString(f, "SET client_min_messages = warning;\nDROP SCHEMA IF EXISTS public CASCADE;\nCREATE SCHEMA public;\n")
	if err == nil {
		err = runClient(ctx, nil, nil, f, "pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--file=-", "--", filepath.Join(dir, name))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("read the backup: %w; nothing was changed", err)
	}
	if err := runClient(ctx, postgresEnv(db.DB, host, port), nil, io.Discard,
		"psql", "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1", "--file="+sqlPath); err != nil {
		return fmt.Errorf("%w; the transaction was rolled back: the database is as it was", err)
	}
	return nil
}
