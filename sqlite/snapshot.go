package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
)

// openReadOnly opens a SQLite file for reading only: no migration, no
// journal-mode change, nothing written to it or next to it that would
// belong to root when the file is an app's.
func openReadOnly(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", "10000")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// Snapshot writes a consistent copy of the SQLite database at src to dst
// (which must not exist) with VACUUM INTO: one read transaction, so the
// copy is the database as of one moment even while other processes (a
// running conductor serve, an app) write to it. The copy has no WAL
// pending and is mode 0600.
func Snapshot(ctx context.Context, src, dst string) error {
	db, err := openReadOnly(src)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return fmt.Errorf("snapshot %s: %w", src, err)
	}
	if err := os.Chmod(dst, 0o600); err != nil {
		return fmt.Errorf("snapshot %s: %w", src, err)
	}
	return nil
}

// MigrationState is how a database's schema compares with the migrations
// this binary carries.
type MigrationState struct {
	Applied int      // migrations recorded in the database
	Pending []string // known to this binary, not applied yet (serve applies them at start)
	Unknown []int    // recorded versions this binary does not know: a newer conductor wrote them
}

// Migrations reads which migrations the database at path has, without
// changing it (Open would apply the missing ones).
func Migrations(ctx context.Context, path string) (MigrationState, error) {
	var st MigrationState
	db, err := openReadOnly(path)
	if err != nil {
		return st, err
	}
	defer db.Close()
	applied := map[int]bool{}
	rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil && !strings.Contains(err.Error(), "no such table") {
		return st, fmt.Errorf("read migrations of %s: %w", path, err)
	}
	if err == nil {
		defer rows.Close()
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				return st, err
			}
			applied[v] = true
		}
		if err := rows.Err(); err != nil {
			return st, fmt.Errorf("read migrations of %s: %w", path, err)
		}
	}
	st.Applied = len(applied)
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return st, err
	}
	sort.Strings(names)
	known := map[int]bool{}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return st, errors.New("migration " + base + ": name must start with a number")
		}
		known[v] = true
		if !applied[v] {
			st.Pending = append(st.Pending, base)
		}
	}
	for v := range applied {
		if !known[v] {
			st.Unknown = append(st.Unknown, v)
		}
	}
	sort.Ints(st.Unknown)
	return st, nil
}

// QuickCheck runs SQLite's quick_check on the database at path, read-only,
// and returns what it found wrong ("" when the database is intact).
func QuickCheck(ctx context.Context, path string) (string, error) {
	db, err := openReadOnly(path)
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return "", fmt.Errorf("quick_check %s: %w", path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return "", err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	return strings.Join(problems, "; "), rows.Err()
}

// makePrivate creates the state file, or makes the existing one, mode 0600,
// its WAL and shared-memory files too: it holds every app's database
// password and secret key, and the data dir is traversable by app users,
// so a file readable by others is readable by every app. SQLite gives the
// files it creates next to a database that database's mode.
func makePrivate(path string) error {
	if path == ":memory:" {
		return nil // tests' in-memory databases have no file
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	f.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("make %s private: %w", path+suffix, err)
		}
	}
	return nil
}
