package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor/mysql"
	"github.com/hasadna/conductor/postgres"
)

// databases:init-local gives a Conductor on one machine (make run) the
// PostgreSQL and MariaDB servers `make setup` started: it creates, once,
// an administrator account on each with a random password — PostgreSQL a
// CREATEDB CREATEROLE role, MariaDB a user with mysql.AdminGrants, never a
// superuser — and writes its DSN to <data>/<kind>-admin.dsn (0600), which
// serve reads with --postgres-dsn-file and --mysql-dsn-file. A DSN file
// that still logs in is kept; one that does not is replaced (the account's
// password is reset).

// sqlRunner runs a script as the server's superuser and returns its output.
type sqlRunner func(ctx context.Context, script string) ([]byte, error)

func databasesInitLocalCommand() *cobra.Command {
	var data, mysqlSocket string
	cmd := &cobra.Command{
		Use:   "databases:init-local",
		Short: "Create Conductor's administrator accounts on this machine's PostgreSQL and MariaDB (make run)",
		Long: "Create, once, an administrator account with a random password on the local PostgreSQL (a role\n" +
			"with CREATEDB CREATEROLE, as the postgres user over its socket) and MariaDB (a user with only the\n" +
			"grants Conductor needs, as root over the socket), and write their DSNs to <data>/postgres-admin.dsn\n" +
			"and <data>/mysql-admin.dsn (mode 0600) for serve's --postgres-dsn-file and --mysql-dsn-file.\n" +
			"A server that is not installed or does not answer is skipped with a warning.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if data == "" {
				return errors.New("--data is required")
			}
			out := cmd.OutOrStdout()
			psql := func(ctx context.Context, script string) ([]byte, error) {
				return runScript(ctx, script, "runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-d", "postgres", "-f", "-")
			}
			mariadb := func(ctx context.Context, script string) ([]byte, error) {
				return runScript(ctx, script, "mariadb", "--no-defaults", "--user=root", "--socket="+mysqlSocket, "--batch")
			}
			failed := 0
			for _, kind := range []string{"postgres", "mysql"} {
				var path string
				var created bool
				var err error
				if kind == "postgres" {
					path, created, err = initLocalPostgres(cmd.Context(), data, "127.0.0.1", psql)
				} else {
					path, created, err = initLocalMySQL(cmd.Context(), data, mysqlSocket, mariadb)
				}
				switch {
				case err != nil:
					failed++
					fmt.Fprintf(out, "databases:init-local: no %s administrator: %v\n", kind, err)
				case created:
					fmt.Fprintf(out, "databases:init-local: %s administrator created, DSN in %s\n", kind, path)
				default:
					fmt.Fprintf(out, "databases:init-local: %s administrator in %s logs in\n", kind, path)
				}
			}
			if failed == 2 {
				return errors.New("no local database server was set up")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the data dir serve runs with (the DSN files go there)")
	cmd.Flags().StringVar(&mysqlSocket, "mysql-socket", "/run/mysqld/mysqld.sock", "MariaDB's unix socket (root logs in over it; so do Conductor and the apps)")
	return cmd
}

// runScript runs name with script on its stdin (passwords stay off every
// command line).
func runScript(ctx context.Context, script, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// localAdminName names the account after the data dir, so two Conductors
// on one machine keep apart.
func localAdminName(data string) string {
	abs, err := filepath.Abs(data)
	if err != nil {
		abs = data
	}
	sum := sha256.Sum256([]byte(abs))
	return "conductor_" + hex.EncodeToString(sum[:4])
}

func initLocalPostgres(ctx context.Context, data, host string, psql sqlRunner) (string, bool, error) {
	return ensureLocalAdmin(ctx, filepath.Join(data, "postgres-admin.dsn"),
		func(ctx context.Context, dsn string) error {
			s, err := postgres.New(dsn)
			if err != nil {
				return err
			}
			return s.Ping(ctx)
		},
		func(ctx context.Context, password string) (string, error) {
			user := localAdminName(data)
			script, err := postgres.AdminSetup(user, password)
			if err != nil {
				return "", err
			}
			out, err := psql(ctx, script)
			if err != nil {
				return "", err
			}
			fields := strings.Fields(string(out))
			if len(fields) == 0 {
				return "", fmt.Errorf("psql printed no port")
			}
			port, err := strconv.Atoi(fields[len(fields)-1])
			if err != nil {
				return "", fmt.Errorf("psql printed no port: %q", out)
			}
			return fmt.Sprintf("postgres://%s:%s@%s:%d/postgres", user, password, host, port), nil
		})
}

func initLocalMySQL(ctx context.Context, data, socket string, mariadb sqlRunner) (string, bool, error) {
	return ensureLocalAdmin(ctx, filepath.Join(data, "mysql-admin.dsn"),
		func(ctx context.Context, dsn string) error {
			s, err := mysql.New(dsn)
			if err != nil {
				return err
			}
			return s.Ping(ctx)
		},
		func(ctx context.Context, password string) (string, error) {
			user := localAdminName(data)
			stmts, err := mysql.AdminSetup(user, password)
			if err != nil {
				return "", err
			}
			if _, err := mariadb(ctx, strings.Join(stmts, ";\n")+";\n"); err != nil {
				return "", err
			}
			return fmt.Sprintf("%s:%s@unix(%s)/", user, password, socket), nil
		})
}

// ensureLocalAdmin keeps the DSN file at path if it logs in, and otherwise
// sets the account up with a new password and writes the file (0600, by
// rename, so a reader never sees half of it).
func ensureLocalAdmin(ctx context.Context, path string, ping func(context.Context, string) error,
	setup func(ctx context.Context, password string) (dsn string, err error)) (string, bool, error) {
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if b, err := os.ReadFile(path); err == nil && ping(pingCtx, strings.TrimSpace(string(b))) == nil {
		return path, false, nil
	}
	password := strings.ToLower(rand.Text()) // a-z and 2-7: plain in a DSN
	dsn, err := setup(ctx, password)
	if err != nil {
		return "", false, err
	}
	if err := ping(pingCtx, dsn); err != nil {
		return "", false, fmt.Errorf("the new administrator cannot log in: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dsn-*")
	if err != nil {
		return "", false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", false, err
	}
	if _, err := io.WriteString(tmp, dsn+"\n"); err != nil {
		tmp.Close()
		return "", false, err
	}
	if err := tmp.Close(); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", false, fmt.Errorf("write %s: %w", path, err)
	}
	return path, true, nil
}
