package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hasadna/conductor"
)

// Dumps of the apps' PostgreSQL and MariaDB databases are taken by the
// servers' own client programs, logged in as the app (it owns everything in
// its database), never through a shell. The password goes in the
// environment (PostgreSQL) or an option file (MariaDB), never on a command
// line, where `ps` would show it.

// dumpDatabase writes a plain SQL dump of db, on the server at host:port,
// to w.
func dumpDatabase(ctx context.Context, db *conductor.AppDatabase, host, port string, w io.Writer) error {
	switch db.Kind {
	case conductor.DBPostgres:
		return runClient(ctx, postgresEnv(db, host, port), nil, w,
			"pg_dump", "--no-owner", "--no-privileges", "--format=plain", "--quote-all-identifiers")
	case conductor.DBMySQL:
		opts, cleanup, err := mariadbOptions(db, host, port)
		if err != nil {
			return err
		}
		defer cleanup()
		return runClient(ctx, nil, nil, w, "mariadb-dump", "--defaults-extra-file="+opts,
			"--single-transaction", "--no-tablespaces", "--skip-dump-date", "--", db.Name)
	}
	return fmt.Errorf("no dump for a %s database", db.Kind)
}

// loadDatabase runs the SQL dump r in db, which must be empty, as the app's
// user: what it creates is the app's.
func loadDatabase(ctx context.Context, db *conductor.AppDatabase, host, port string, r io.Reader) error {
	switch db.Kind {
	case conductor.DBPostgres:
		return runClient(ctx, postgresEnv(db, host, port), r, io.Discard,
			"psql", "--no-psqlrc", "--quiet", "--single-transaction", "--set=ON_ERROR_STOP=1", "--file=-")
	case conductor.DBMySQL:
		opts, cleanup, err := mariadbOptions(db, host, port)
		if err != nil {
			return err
		}
		defer cleanup()
		return runClient(ctx, nil, r, io.Discard, "mariadb", "--defaults-extra-file="+opts, "--batch", "--database="+db.Name)
	}
	return fmt.Errorf("no load for a %s database", db.Kind)
}

// tableCount counts the tables in db, to refuse loading a dump on top of
// data.
func tableCount(ctx context.Context, db *conductor.AppDatabase, host, port string) (int, error) {
	var out bytes.Buffer
	var err error
	switch db.Kind {
	case conductor.DBPostgres:
		err = runClient(ctx, postgresEnv(db, host, port), nil, &out, "psql", "--no-psqlrc", "--tuples-only", "--no-align",
			"--command=SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
	case conductor.DBMySQL:
		opts, cleanup, oerr := mariadbOptions(db, host, port)
		if oerr != nil {
			return 0, oerr
		}
		defer cleanup()
		err = runClient(ctx, nil, nil, &out, "mariadb", "--defaults-extra-file="+opts, "--batch", "--skip-column-names",
			"--database="+db.Name, "--execute=SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE()")
	default:
		return 0, fmt.Errorf("no %s server", db.Kind)
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out.String()))
}

// postgresEnv is libpq's environment for logging in as the app.
func postgresEnv(db *conductor.AppDatabase, host, port string) []string {
	return []string{"PGHOST=" + host, "PGPORT=" + port, "PGUSER=" + db.User, "PGPASSWORD=" + db.Password,
		"PGDATABASE=" + db.Name, "PGCONNECT_TIMEOUT=10", "PGAPPNAME=conductor-backup"}
}

// mariadbOptions writes a private option file for logging in as the app
// and returns its path and a function that removes it.
func mariadbOptions(db *conductor.AppDatabase, host, port string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "conductor-mariadb-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	// Values come from Conductor: names are app names and passwords are
	// [A-Za-z0-9], so nothing here can start another option.
	for _, v := range []string{db.User, db.Password, host, port} {
		if strings.ContainsAny(v, "\n\r\"'\\") {
			cleanup()
			return "", nil, fmt.Errorf("unsafe value in the MariaDB options of %s", db.Name)
		}
	}
	opts := "[client]\nuser=" + db.User + "\npassword=" + db.Password + "\n"
	if strings.HasPrefix(host, "/") {
		opts += "protocol=socket\nsocket=" + host + "\n"
	} else {
		opts += "protocol=tcp\nhost=" + host + "\nport=" + port + "\n"
	}
	path := filepath.Join(dir, "client.cnf")
	if err := os.WriteFile(path, []byte(opts), 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}

// runClient runs a database client with env added to a minimal
// environment, stdin from r (when not nil), stdout to w, and returns its
// stderr in the error when it fails.
func runClient(ctx context.Context, env []string, r io.Reader, w io.Writer, name string, args ...string) error {
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("%s is not installed (apt-get install postgresql-client mariadb-client): %w", name, err)
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "HOME=/nonexistent"}, env...)
	cmd.Stdin, cmd.Stdout = r, w
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
