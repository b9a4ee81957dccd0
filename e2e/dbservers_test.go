package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"

	"github.com/hasadna/conductor/internal/dbtest"
)

// Database servers for end-to-end tests are real ones, each in its own temp
// dir on a free loopback port (internal/dbtest), stopped when the test ends.

// dsnFlag writes a server's admin DSN to a 0600 file and returns the serve
// flags that read it: the password stays off conductor's command line.
func dsnFlag(t *testing.T, s *dbtest.Server) []string {
	t.Helper()
	path := filepath.Join(t.TempDir(), s.Kind+".dsn")
	if err := os.WriteFile(path, []byte(s.AdminDSN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--" + s.Kind + "-dsn-file", path}
}

// stateQuery runs a query on the instance's SQLite state with the sqlite3
// command line tool and returns its output.
func (in *Instance) stateQuery(query string, args ...any) string {
	in.t.Helper()
	out, err := exec.Command("sqlite3", filepath.Join(in.Data, "conductor.db"), fmt.Sprintf(query, args...)).CombinedOutput()
	if err != nil {
		in.t.Fatalf("sqlite3: %v %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// dbCreds is what Conductor stored for an app's database.
type dbCreds struct{ Kind, Name, User, Password string }

// appCreds reads an app's database credentials from Conductor's state.
func (in *Instance) appCreds(app string) dbCreds {
	in.t.Helper()
	out := in.stateQuery(`SELECT d.kind || '|' || d.name || '|' || d.user || '|' || d.password
		FROM app_databases d JOIN apps a ON a.id = d.app_id WHERE a.name = '%s' AND d.alias = 'default'`, app)
	f := strings.Split(out, "|")
	if len(f) != 4 {
		in.t.Fatalf("no database recorded for %s: %q", app, out)
	}
	return dbCreds{f[0], f[1], f[2], f[3]}
}

// pgConnect opens a PostgreSQL database as user.
func pgConnect(s *dbtest.Server, user, password, database string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d sslmode=disable connect_timeout=10", s.Host, s.Port))
	if err != nil {
		return nil, err
	}
	cfg.User, cfg.Password, cfg.Database = user, password, database
	return pgx.ConnectConfig(context.Background(), cfg)
}

// pgAdmin opens a database as the cluster's superuser.
func pgAdmin(t *testing.T, s *dbtest.Server, database string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(s.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = database
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// myConnect opens a MariaDB database as user and checks the login.
func myConnect(s *dbtest.Server, user, password, database string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", fmt.Sprintf("%s:%d", s.Host, s.Port)
	cfg.User, cfg.Passwd, cfg.DBName = user, password, database
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// myAdmin opens the MariaDB server as its administrator.
func myAdmin(t *testing.T, s *dbtest.Server) *sql.DB {
	t.Helper()
	cfg, err := mysql.ParseDSN(s.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}
