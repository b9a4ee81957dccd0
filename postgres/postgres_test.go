package postgres

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/dbtest"
)

var shared = dbtest.NewShared(dbtest.StartPostgres)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := shared.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// setup returns a Server on the shared test cluster and an administrator
// connection to it.
func setup(t *testing.T) (*Server, *pgx.Conn) {
	t.Helper()
	srv := shared.Get(t)
	s, err := New(srv.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := pgx.Connect(context.Background(), srv.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	reset(t, admin)
	return s, admin
}

// reset drops what earlier tests created on the shared cluster (databases
// other than the templates and postgres, and roles other than the built-in
// ones), so each test starts from an empty cluster, also under
// go test -count=N.
func reset(t *testing.T, admin *pgx.Conn) {
	t.Helper()
	ctx := context.Background()
	drop := func(list, format string) {
		t.Helper()
		rows, err := admin.Query(ctx, list)
		if err != nil {
			t.Fatalf("reset: %v", err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("reset: %v", err)
		}
		for _, name := range names {
			stmt := fmt.Sprintf(format, pgx.Identifier{name}.Sanitize())
			if _, err := admin.Exec(ctx, stmt); err != nil {
				t.Fatalf("reset: %s: %v", stmt, err)
			}
		}
	}
	drop(`SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1')`,
		"DROP DATABASE %s WITH (FORCE)")
	drop(`SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' AND NOT rolsuper`, "DROP ROLE %s")
}

func newDB(name string) *conductor.AppDatabase {
	return &conductor.AppDatabase{Kind: conductor.DBPostgres, Name: name, User: name, Password: rand.Text()}
}

// login connects as the app would, with db's credentials, to database.
func login(t *testing.T, s *Server, db *conductor.AppDatabase, database string) (*pgx.Conn, error) {
	t.Helper()
	host, port := s.Endpoint()
	p, _ := strconv.Atoi(port)
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d sslmode=disable", host, p))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Password, cfg.Database = db.User, db.Password, database
	return pgx.ConnectConfig(context.Background(), cfg)
}

func mustLogin(t *testing.T, s *Server, db *conductor.AppDatabase) *pgx.Conn {
	t.Helper()
	conn, err := login(t, s, db, db.Name)
	if err != nil {
		t.Fatalf("log in as %s: %v", db.User, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func rolePassword(t *testing.T, admin *pgx.Conn, role string) string {
	t.Helper()
	var pw string
	if err := admin.QueryRow(context.Background(), `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&pw); err != nil {
		t.Fatalf("password of %s: %v", role, err)
	}
	return pw
}

func exists(t *testing.T, admin *pgx.Conn, query, name string) bool {
	t.Helper()
	var n int
	if err := admin.QueryRow(context.Background(), query, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}

func roleExists(t *testing.T, admin *pgx.Conn, name string) bool {
	return exists(t, admin, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, name)
}

func databaseExists(t *testing.T, admin *pgx.Conn, name string) bool {
	return exists(t, admin, `SELECT count(*) FROM pg_database WHERE datname = $1`, name)
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := conductor.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v has code %q, want %q", what, err, got, code)
	}
}

func TestCreate(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	db := newDB("my-app")
	if err := s.Create(ctx, db); err != nil {
		t.Fatal(err)
	}

	// The app logs in, owns its database and its public schema (PG15
	// gives that schema to the database owner), and is no superuser.
	app := mustLogin(t, s, db)
	if _, err := app.Exec(ctx, `CREATE TABLE notes (id serial PRIMARY KEY, body text)`); err != nil {
		t.Fatalf("the app cannot create a table in its database: %v", err)
	}
	var super, createdb, createrole bool
	var owner, comment string
	if err := admin.QueryRow(ctx, `SELECT rolsuper, rolcreatedb, rolcreaterole, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1`, "my-app").
		Scan(&super, &createdb, &createrole, &comment); err != nil {
		t.Fatal(err)
	}
	if super || createdb || createrole || comment != conductor.DatabaseMarker {
		t.Errorf("role my-app: super=%v createdb=%v createrole=%v comment=%q", super, createdb, createrole, comment)
	}
	var publicConnect bool
	if err := admin.QueryRow(ctx, `SELECT pg_get_userbyid(datdba),
		coalesce(aclcontains(datacl, makeaclitem(0, datdba, 'CONNECT', false)), true)
		FROM pg_database WHERE datname = $1`, "my-app").Scan(&owner, &publicConnect); err != nil {
		t.Fatal(err)
	}
	if owner != "my-app" || publicConnect {
		t.Errorf("database my-app: owner %q, PUBLIC may connect: %v", owner, publicConnect)
	}
	// The password went over as a SCRAM verifier.
	stored := rolePassword(t, admin, "my-app")
	if !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") || strings.Contains(stored, db.Password) {
		t.Errorf("stored password = %q", stored)
	}

	// A redeploy or a retried job: nothing changes, nothing fails.
	if err := s.Create(ctx, db); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if got := rolePassword(t, admin, "my-app"); got != stored {
		t.Error("a second Create changed the role's password")
	}
	var n int
	if err := app.QueryRow(ctx, `SELECT count(*) FROM notes`).Scan(&n); err != nil {
		t.Errorf("the app's table is gone after a second Create: %v", err)
	}

	// Other credentials for an existing role (an earlier install's): refused,
	// and the password is not changed behind the app's back.
	other := newDB("my-app")
	err := s.Create(ctx, other)
	wantCode(t, "Create with another password", err, conductor.ECONFLICT)
	if strings.Contains(err.Error(), other.Password) || strings.Contains(err.Error(), db.Password) {
		t.Errorf("error shows a password: %v", err)
	}
	if got := rolePassword(t, admin, "my-app"); got != stored {
		t.Error("Create with another password changed the role's password")
	}
	mustLogin(t, s, db)
}

// TestCreateAfterHalfRun: a provision that stopped half way (role made, no
// database; or database made but not closed to PUBLIC) is finished by the
// next one.
func TestCreateAfterHalfRun(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	db := newDB("half-run")
	if err := s.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, `DROP DATABASE "half-run"`); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, db); err != nil {
		t.Fatalf("Create with the role but no database: %v", err)
	}
	mustLogin(t, s, db)

	if _, err := admin.Exec(ctx, `GRANT CONNECT ON DATABASE "half-run" TO PUBLIC`); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	if exists(t, admin, `SELECT count(*) FROM pg_database WHERE datname = $1 AND aclcontains(datacl, makeaclitem(0, datdba, 'CONNECT', false))`, "half-run") {
		t.Error("Create left CONNECT granted to PUBLIC")
	}
}

// TestCreateRefusesForeign: a role or database of the app's name that
// Conductor did not create is never taken over.
func TestCreateRefusesForeign(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	if _, err := admin.Exec(ctx, `CREATE ROLE "legacy" LOGIN PASSWORD 'legacy-pw'`); err != nil {
		t.Fatal(err)
	}
	before := rolePassword(t, admin, "legacy")
	wantCode(t, "Create over a foreign role", s.Create(ctx, newDB("legacy")), conductor.ECONFLICT)
	if rolePassword(t, admin, "legacy") != before || databaseExists(t, admin, "legacy") {
		t.Error("Create touched a foreign role")
	}
	wantCode(t, "Drop of a foreign role", s.Drop(ctx, newDB("legacy")), conductor.ECONFLICT)
	if !roleExists(t, admin, "legacy") {
		t.Error("Drop removed a foreign role")
	}

	if _, err := admin.Exec(ctx, `CREATE DATABASE "shop"`); err != nil {
		t.Fatal(err)
	}
	db := newDB("shop")
	wantCode(t, "Create over a foreign database", s.Create(ctx, db), conductor.ECONFLICT)
	if roleExists(t, admin, "shop") {
		t.Error("Create made a role for a database name it then refused")
	}
	wantCode(t, "Drop of a foreign database", s.Drop(ctx, db), conductor.ECONFLICT)
	if !databaseExists(t, admin, "shop") {
		t.Error("Drop removed a foreign database")
	}
}

// TestIsolation: an app's credentials open its own database and no other.
func TestIsolation(t *testing.T) {
	ctx := context.Background()
	s, _ := setup(t)
	a, b := newDB("iso-a"), newDB("iso-b")
	for _, db := range []*conductor.AppDatabase{a, b} {
		if err := s.Create(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	mustLogin(t, s, a)
	mustLogin(t, s, b)
	for _, tt := range []struct {
		creds *conductor.AppDatabase
		db    string
	}{{a, "iso-b"}, {b, "iso-a"}} {
		conn, err := login(t, s, tt.creds, tt.db)
		if err == nil {
			conn.Close(ctx)
			t.Errorf("%s's credentials opened database %s", tt.creds.User, tt.db)
		} else if !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s → %s: %v, want permission denied", tt.creds.User, tt.db, err)
		}
	}
	// Nor does a's password open b's role.
	if conn, err := login(t, s, &conductor.AppDatabase{User: "iso-b", Password: a.Password}, "iso-b"); err == nil {
		conn.Close(ctx)
		t.Error("a's password logs in as b")
	}
}

func TestDrop(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	gone, kept := newDB("drop-me"), newDB("keep-me")
	for _, db := range []*conductor.AppDatabase{gone, kept} {
		if err := s.Create(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := mustLogin(t, s, kept).Exec(ctx, `CREATE TABLE precious (x int); INSERT INTO precious VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	// A session still open on the database does not block the drop.
	session := mustLogin(t, s, gone)
	if err := s.Drop(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if err := session.Ping(ctx); err == nil {
		t.Error("the app's session survived the drop of its database")
	}
	if roleExists(t, admin, "drop-me") || databaseExists(t, admin, "drop-me") {
		t.Error("Drop left the role or the database")
	}
	if err := s.Drop(ctx, gone); err != nil {
		t.Errorf("second Drop: %v", err)
	}
	var x int
	if err := mustLogin(t, s, kept).QueryRow(ctx, `SELECT x FROM precious`).Scan(&x); err != nil || x != 42 {
		t.Errorf("another app's data after Drop: %d, %v", x, err)
	}
	// Dropped, the name can be provisioned afresh.
	again := newDB("drop-me")
	if err := s.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	mustLogin(t, s, again)
}

// TestNames: names are quoted everywhere, so even hostile ones work as
// names and nothing else; too long ones are refused, not truncated.
func TestNames(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	for _, name := range []string{`we"ird`, `it's`, `back\slash`, `x"; DROP ROLE postgres; --`, "émoji-🌍", "a-" + strings.Repeat("b", 61)} {
		db := newDB(name)
		if err := s.Create(ctx, db); err != nil {
			t.Fatalf("Create(%q): %v", name, err)
		}
		mustLogin(t, s, db)
		if !roleExists(t, admin, name) || !databaseExists(t, admin, name) {
			t.Errorf("Create(%q) did not make a role and database of that exact name", name)
		}
		if err := s.Drop(ctx, db); err != nil {
			t.Fatalf("Drop(%q): %v", name, err)
		}
	}
	if !roleExists(t, admin, "postgres") {
		t.Fatal("a name was run as SQL")
	}
	for _, name := range []string{"", strings.Repeat("a", 64), "nul\x00"} {
		wantCode(t, fmt.Sprintf("Create(%q)", name), s.Create(ctx, newDB(name)), conductor.EINVALID)
	}
}

func TestConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	s, _ := setup(t)
	db := newDB("racy")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Create(ctx, db)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("concurrent Create: %v", err)
		}
	}
	mustLogin(t, s, db)
}

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          `'plain'`,
		"it's":           `'it''s'`,
		`back\slash`:     `E'back\\slash'`,
		`'\'`:            `E'''\\'''`,
		"SCRAM-SHA-256$": `'SCRAM-SHA-256$'`,
	} {
		if got := quoteLiteral(in); got != want {
			t.Errorf("quoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	s, err := New("postgres://admin:secret@db.example:6543/postgres")
	if err != nil {
		t.Fatal(err)
	}
	if h, p := s.Endpoint(); h != "db.example" || p != "6543" {
		t.Errorf("Endpoint() = %s, %s", h, p)
	}
	if _, err := New("postgres://admin:secret@host:notaport/x"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("New(bad DSN) error = %v: want an error without the password", err)
	}
}

// TestCreateAsNonSuperuser: an administrator with CREATEDB CREATEROLE but
// no superuser (managed PostgreSQL's master user; least privilege on your
// own server) creates, uses and drops an app's database.
func TestCreateAsNonSuperuser(t *testing.T) {
	ctx := context.Background()
	_, admin := setup(t)
	if _, err := admin.Exec(ctx, `CREATE ROLE "managed-admin" LOGIN CREATEDB CREATEROLE PASSWORD 'managed-secret'`); err != nil {
		t.Fatal(err)
	}
	cfg := admin.Config().Copy()
	dsn := fmt.Sprintf("postgres://managed-admin:managed-secret@%s:%d/postgres?sslmode=disable", cfg.Host, cfg.Port)
	s, err := New(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := newDB("managed-app")
	if err := s.Create(ctx, db); err != nil {
		t.Fatalf("Create as a CREATEDB CREATEROLE administrator: %v", err)
	}
	if _, err := mustLogin(t, s, db).Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Fatalf("the app cannot use its database: %v", err)
	}
	// Idempotent, as a redelivered job runs it again.
	if err := s.Create(ctx, db); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if err := s.Drop(ctx, db); err != nil {
		t.Fatalf("Drop as a CREATEDB CREATEROLE administrator: %v", err)
	}
	if roleExists(t, admin, "managed-app") || databaseExists(t, admin, "managed-app") {
		t.Error("Drop left the role or the database")
	}
}
