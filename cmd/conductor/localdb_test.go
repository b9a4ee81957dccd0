package main

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/dbtest"
	"github.com/hasadna/conductor/mysql"
	"github.com/hasadna/conductor/postgres"
)

// dbServer is what the local administrator's DSN must do: the app
// databases of Conductor's database servers.
type dbServer interface {
	Create(ctx context.Context, db *conductor.AppDatabase) error
	Drop(ctx context.Context, db *conductor.AppDatabase) error
}

// checkLocalAdmin runs init, and checks that it writes a 0600 DSN that
// creates and drops an app database, keeps it on a second run, and makes
// a new one when the file no longer logs in.
func checkLocalAdmin(t *testing.T, kind string, init func() (string, bool, error), open func(dsn string) dbServer) string {
	t.Helper()
	ctx := context.Background()
	path, created, err := init()
	if err != nil || !created {
		t.Fatalf("first init-local of %s: created=%v err=%v", kind, created, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want 0600", path, err, fi.Mode())
	}
	dsn, _ := os.ReadFile(path)
	srv := open(string(dsn[:len(dsn)-1]))
	db := &conductor.AppDatabase{Kind: kind, Name: "local-app", User: "local-app", Password: rand.Text()}
	if err := srv.Create(ctx, db); err != nil {
		t.Fatalf("create an app database as the local %s administrator: %v", kind, err)
	}
	if err := srv.Drop(ctx, db); err != nil {
		t.Fatalf("drop it: %v", err)
	}
	if _, created, err := init(); err != nil || created {
		t.Errorf("second init-local of %s: created=%v err=%v, want the file kept", kind, created, err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(dsn) {
		t.Errorf("second init-local rewrote %s", path)
	}
	// A DSN that no longer logs in (a reinstalled server, a changed password)
	// is replaced.
	if err := os.WriteFile(path, []byte("nonsense\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, created, err := init(); err != nil || !created {
		t.Errorf("init-local over a stale %s: created=%v err=%v", path, created, err)
	}
	return string(dsn)
}

func TestInitLocalPostgres(t *testing.T) {
	pg := dbtest.Postgres(t)
	data := t.TempDir()
	psql := func(ctx context.Context, script string) ([]byte, error) {
		return runScript(ctx, script, "runuser", "-u", "postgres", "--", filepath.Join(pgBin(t), "psql"), pg.AdminDSN, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-f", "-")
	}
	checkLocalAdmin(t, conductor.DBPostgres,
		func() (string, bool, error) { return initLocalPostgres(context.Background(), data, "127.0.0.1", psql) },
		func(dsn string) dbServer {
			s, err := postgres.New(dsn)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	conn, err := pgx.Connect(context.Background(), pg.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var super, createdb, createrole bool
	if err := conn.QueryRow(context.Background(), `SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1`,
		localAdminName(data)).Scan(&super, &createdb, &createrole); err != nil {
		t.Fatal(err)
	}
	if super || !createdb || !createrole {
		t.Errorf("the local administrator: superuser=%v createdb=%v createrole=%v; want CREATEDB CREATEROLE only", super, createdb, createrole)
	}
}

func TestInitLocalMySQL(t *testing.T) {
	my := dbtest.MariaDB(t)
	data := t.TempDir()
	sock := filepath.Join(my.Dir, "mysqld.sock")
	mariadb := func(ctx context.Context, script string) ([]byte, error) {
		return runScript(ctx, script, "mariadb", "--no-defaults", "--user=root", "--socket="+sock, "--batch")
	}
	checkLocalAdmin(t, conductor.DBMySQL,
		func() (string, bool, error) { return initLocalMySQL(context.Background(), data, sock, mariadb) },
		func(dsn string) dbServer {
			s, err := mysql.New(dsn)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
}

// pgBin is the newest installed PostgreSQL's bin dir (Debian keeps psql's
// wrapper on PATH, which wants a cluster; the real one is here).
func pgBin(t *testing.T) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	if len(dirs) == 0 {
		t.Skip("PostgreSQL is not installed")
	}
	return dirs[len(dirs)-1]
}
