package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasadna/conductor/internal/dbtest"
)

// Django drivers the example app needs on each engine, added to a copy of
// its requirements (examples/hello itself stays SQLite-only).
const (
	psycopgRequirement     = "psycopg[binary]==3.3.9"
	mysqlclientRequirement = "mysqlclient==2.3.2" // built against libmariadb-dev by pip
)

// dbWorkTree is examples/hello with a database driver in its requirements.
func (in *Instance) dbWorkTree(requirement string) string {
	in.t.Helper()
	work := in.WorkTree("hello")
	path := filepath.Join(work, "requirements.txt")
	reqs, err := os.ReadFile(path)
	if err != nil {
		in.t.Fatal(err)
	}
	if err := os.WriteFile(path, append(reqs, []byte(requirement+"\n")...), 0o644); err != nil {
		in.t.Fatal(err)
	}
	in.Commit(work, "database driver")
	return work
}

// pushOK pushes and fails the test unless the deploy went live.
func (in *Instance) pushOK(work, app string) Result {
	in.t.Helper()
	r := in.Push(work, app, "main")
	if r.Code != 0 || !strings.Contains(r.Stderr, "-----> Deployed "+app) {
		in.t.Fatalf("push of %s failed: %s", app, r)
	}
	return r
}

// greetings GETs the app's index, which writes one row and shows how many
// rows there are (the health check of each deploy writes one too), and
// returns that number.
func (in *Instance) greetings(app, version string) int {
	in.t.Helper()
	code, body, _ := in.Get(app, "/")
	var n int
	if i := strings.Index(body, "<p>greetings: "); i >= 0 {
		fmt.Sscanf(body[i:], "<p>greetings: %d<", &n)
	}
	if code != 200 || !strings.Contains(body, "Hello from Conductor "+version+"<") || n == 0 {
		in.t.Fatalf("GET / on %s = %d %q, want %s and a number of greetings", app, code, body, version)
	}
	return n
}

// checkAppConfig checks that the app reaches its database through
// local_settings.py and DATABASE_URL, with the stored credentials.
func (in *Instance) checkAppConfig(app, engine, wantURL string) {
	in.t.Helper()
	settings := filepath.Join(in.Data, "srv", "projects", app, "current", "local_settings.py")
	src, err := os.ReadFile(settings)
	if err != nil {
		in.t.Fatal(err)
	}
	if !strings.Contains(string(src), `"ENGINE": "django.db.backends.`+engine+`"`) || !strings.Contains(string(src), `"NAME": "`+app+`"`) {
		in.t.Errorf("local_settings.py of %s:\n%s", app, src)
	}
	if fi, err := os.Stat(settings); err != nil || fi.Mode().Perm() != 0o600 || fileOwner(fi) != app {
		in.t.Errorf("local_settings.py holds a password: want mode 0600 and owner %s, got %v", app, fi.Mode())
	}
	specs, _ := filepath.Glob(filepath.Join(in.Data, "srv", "projects", app, "run", app+"_web_*.json"))
	if len(specs) != 1 {
		in.t.Fatalf("web process specs of %s: %v", app, specs)
	}
	raw, err := os.ReadFile(specs[0])
	if err != nil {
		in.t.Fatal(err)
	}
	var spec struct{ Env map[string]string }
	if err := json.Unmarshal(raw, &spec); err != nil {
		in.t.Fatal(err)
	}
	if got := spec.Env["DATABASE_URL"]; got != wantURL {
		in.t.Errorf("DATABASE_URL of %s = %q, want %q", app, got, wantURL)
	}
}

// noSecret fails if a password shows in what people or logs see.
func noSecret(t *testing.T, password string, where map[string]string) {
	t.Helper()
	if len(password) < 16 {
		t.Fatalf("password %q is too short to be Conductor's", password)
	}
	for name, text := range where {
		if strings.Contains(text, password) {
			t.Errorf("the database password shows in %s", name)
		}
	}
}

// TestDatabasePostgres: an app created by its first push gets the
// server-wide default database, PostgreSQL: it writes a row through the app,
// a redeploy reads it back with the same credentials, a failed migration
// leaves the schema as it was, another app cannot open its database, and a
// database of that name that Conductor did not make is left alone.
func TestDatabasePostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := dbtest.Postgres(t)
	in := StartInstance(t, append(dsnFlag(t, pg), "--default-db", "postgres")...)
	work := in.dbWorkTree(psycopgRequirement)

	r := in.pushOK(work, "pg-app")
	wantLine := fmt.Sprintf(`Database: postgresql database "pg-app" at 127.0.0.1:%d as "pg-app"`, pg.Port)
	if !strings.Contains(r.Stderr, wantLine) || !strings.Contains(r.Stderr, "Applying greetings.0001_initial... OK") {
		t.Errorf("first push output lacks %q or the migration:\n%s", wantLine, r.Stderr)
	}
	creds := in.appCreds("pg-app")
	if creds.Kind != "postgres" || creds.Name != "pg-app" || creds.User != "pg-app" || len(creds.Password) != 32 {
		t.Errorf("stored credentials: %+v", creds)
	}
	rows := in.greetings("pg-app", "v1")
	in.checkAppConfig("pg-app", "postgresql", fmt.Sprintf("postgres://pg-app:%s@127.0.0.1:%d/pg-app", creds.Password, pg.Port))
	outputs := map[string]string{"first push": r.Stdout + r.Stderr}

	// Redeploy: the row written through v1 is read back by v2, with the
	// same credentials.
	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	r = in.pushOK(work, "pg-app")
	outputs["second push"] = r.Stdout + r.Stderr
	if n := in.greetings("pg-app", "v2"); n <= rows {
		t.Fatalf("after a redeploy the app counts %d greetings, had %d: its rows were lost", n, rows)
	} else {
		rows = n
	}
	if again := in.appCreds("pg-app"); again != creds {
		t.Errorf("credentials changed on redeploy: %+v", again)
	}
	admin := pgAdmin(t, pg, "pg-app")
	var stored int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM greetings_greeting`).Scan(&stored); err != nil || stored != rows {
		t.Errorf("rows in pg-app's greetings_greeting = %d, %v; the app counts %d", stored, err, rows)
	}

	// A migration that changes the schema and then fails: the push is
	// rejected and, DDL being transactional, the schema is as it was.
	schema := func() string {
		var s string
		if err := admin.QueryRow(ctx, `SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name)
			FROM information_schema.columns WHERE table_schema = 'public'`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := schema()
	mig, err := os.ReadFile(filepath.Join("..", "examples", "hello-bad-ddl-migration", "0002_ddl_then_fail.py"))
	if err != nil {
		t.Fatal(err)
	}
	migPath := filepath.Join(work, "greetings", "migrations", "0002_ddl_then_fail.py")
	if err := os.WriteFile(migPath, mig, 0o644); err != nil {
		t.Fatal(err)
	}
	setVersion(t, work, "v3")
	in.Commit(work, "failing migration")
	r = in.Push(work, "pg-app", "main")
	outputs["failed push"] = r.Stdout + r.Stderr
	if r.Code == 0 || !strings.Contains(r.Stderr, "intentional failure after schema changes") {
		t.Fatalf("push with a failing migration: %s", r)
	}
	if after := schema(); after != before || strings.Contains(after, "greetings_probe") || strings.Contains(after, "mood") {
		t.Errorf("schema after the failed migration:\n%s\nwant it as before:\n%s", after, before)
	}
	var applied int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM django_migrations WHERE name = '0002_ddl_then_fail'`).Scan(&applied); err != nil || applied != 0 {
		t.Errorf("failed migration recorded as applied: %d, %v", applied, err)
	}
	if n := in.greetings("pg-app", "v2"); n != rows+1 {
		t.Errorf("after the failed push the app counts %d greetings, want %d", n, rows+1)
	}
	os.Remove(migPath)
	in.Commit(work, "drop the failing migration")

	// A second app: neither opens the other's database.
	r = in.pushOK(work, "pg-other")
	outputs["other app push"] = r.Stdout + r.Stderr
	in.greetings("pg-other", "v3")
	other := in.appCreds("pg-other")
	for _, tt := range []struct {
		who      dbCreds
		database string
	}{{creds, "pg-other"}, {other, "pg-app"}} {
		if conn, err := pgConnect(pg, tt.who.User, tt.who.Password, tt.database); err == nil {
			conn.Close(ctx)
			t.Errorf("%s's credentials opened database %s", tt.who.User, tt.database)
		} else if !strings.Contains(err.Error(), "permission denied for database") {
			t.Errorf("%s → %s: %v, want permission denied", tt.who.User, tt.database, err)
		}
	}
	if conn, err := pgConnect(pg, "pg-other", creds.Password, "pg-other"); err == nil {
		conn.Close(ctx)
		t.Error("pg-app's password logs in as pg-other")
	}
	conn, err := pgConnect(pg, creds.User, creds.Password, "pg-app")
	if err != nil {
		t.Fatalf("pg-app's own credentials: %v", err)
	}
	conn.Close(ctx)

	// A database of an app's name that Conductor did not make: the push
	// fails with a clear message and the database is untouched.
	if _, err := pgAdmin(t, pg, "postgres").Exec(ctx, `CREATE DATABASE "taken"; `); err != nil {
		t.Fatal(err)
	}
	if _, err := pgAdmin(t, pg, "taken").Exec(ctx, `CREATE TABLE precious (x int); INSERT INTO precious VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	r = in.Push(work, "taken", "main")
	if r.Code == 0 || !strings.Contains(r.Stderr, `PostgreSQL database "taken" exists and belongs to "postgres"`) {
		t.Errorf("push to an app whose database name is taken: %s", r)
	}
	var roles int
	if err := pgAdmin(t, pg, "postgres").QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = 'taken'`).Scan(&roles); err != nil || roles != 0 {
		t.Errorf("a refused provision left %d roles named taken (%v)", roles, err)
	}
	var x int
	if err := pgAdmin(t, pg, "taken").QueryRow(ctx, `SELECT x FROM precious`).Scan(&x); err != nil || x != 7 {
		t.Errorf("the foreign database after the push: %d, %v", x, err)
	}

	// apps:info names the engine and the database, never the password.
	r = in.SSH(in.AdminKey, "apps:info pg-app")
	if r.Code != 0 || !strings.Contains(r.Stdout, "django.db.backends.postgresql") || !strings.Contains(r.Stdout, "pg-app") {
		t.Errorf("apps:info: %s", r)
	}
	outputs["apps:info"] = r.Stdout + r.Stderr

	// apps:destroy drops the app's database and role, only with --confirm,
	// and leaves the other app's data alone.
	gone := func() bool {
		var n int
		if err := pgAdmin(t, pg, "postgres").QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_roles WHERE rolname = 'pg-other')
			+ (SELECT count(*) FROM pg_database WHERE datname = 'pg-other')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	}
	if r = in.SSH(in.AdminKey, "apps:destroy pg-other"); r.Code == 0 || gone() {
		t.Errorf("apps:destroy without --confirm: %s (dropped: %v)", r, gone())
	}
	if r = in.SSH(in.AdminKey, "apps:destroy pg-other --confirm pg-other"); r.Code != 0 || !gone() {
		t.Errorf("apps:destroy --confirm: %s (dropped: %v)", r, gone())
	}
	if n := in.greetings("pg-app", "v2"); n <= rows {
		t.Errorf("pg-app after another app was destroyed counts %d greetings, had %d", n, rows)
	}

	outputs["conductor serve log"] = in.logs.String()
	outputs["postgres server log"] = pg.Log()
	noSecret(t, creds.Password, outputs)
	noSecret(t, other.Password, outputs)
}

// TestDatabaseMySQL: `apps:create --db mysql` gives an app a MariaDB
// database that keeps its rows across deploys, with the same credentials,
// closed to another app; a kind without a server is refused at creation.
func TestDatabaseMySQL(t *testing.T) {
	t.Parallel()
	my := dbtest.MariaDB(t)
	in := StartInstance(t, dsnFlag(t, my)...)

	r := in.SSH(in.AdminKey, "apps:create my-shop --db mysql")
	if r.Code != 0 || !strings.Contains(r.Stdout, "database: mysql") {
		t.Fatalf("apps:create --db mysql: %s", r)
	}
	r = in.SSH(in.AdminKey, "apps:create pg-less --db postgres")
	if r.Code == 0 || !strings.Contains(r.Stderr, "no PostgreSQL server") {
		t.Errorf("apps:create --db postgres without a server: %s", r)
	}

	work := in.dbWorkTree(mysqlclientRequirement)
	r = in.pushOK(work, "my-shop")
	outputs := map[string]string{"first push": r.Stdout + r.Stderr}
	wantLine := fmt.Sprintf(`Database: mysql database "my-shop" at 127.0.0.1:%d as "my-shop"`, my.Port)
	if !strings.Contains(r.Stderr, wantLine) || !strings.Contains(r.Stderr, "Applying greetings.0001_initial... OK") {
		t.Errorf("first push output lacks %q or the migration:\n%s", wantLine, r.Stderr)
	}
	creds := in.appCreds("my-shop")
	if creds.Kind != "mysql" || creds.Name != "my-shop" || creds.User != "my-shop" || len(creds.Password) != 32 {
		t.Errorf("stored credentials: %+v", creds)
	}
	rows := in.greetings("my-shop", "v1")
	in.checkAppConfig("my-shop", "mysql", fmt.Sprintf("mysql://my-shop:%s@127.0.0.1:%d/my-shop", creds.Password, my.Port))

	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	r = in.pushOK(work, "my-shop")
	outputs["second push"] = r.Stdout + r.Stderr
	if n := in.greetings("my-shop", "v2"); n <= rows {
		t.Fatalf("after a redeploy the app counts %d greetings, had %d: its rows were lost", n, rows)
	} else {
		rows = n
	}
	if again := in.appCreds("my-shop"); again != creds {
		t.Errorf("credentials changed on redeploy: %+v", again)
	}
	admin := myAdmin(t, my)
	var stored int
	if err := admin.QueryRow("SELECT COUNT(*) FROM `my-shop`.greetings_greeting").Scan(&stored); err != nil || stored != rows {
		t.Errorf("rows in my-shop's greetings_greeting = %d, %v; the app counts %d", stored, err, rows)
	}

	// A second app, created by its push: neither opens the other's database.
	r = in.SSH(in.AdminKey, "apps:create my-other --db mysql")
	if r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}
	r = in.pushOK(work, "my-other")
	outputs["other app push"] = r.Stdout + r.Stderr
	in.greetings("my-other", "v2")
	other := in.appCreds("my-other")
	for _, tt := range []struct {
		who      dbCreds
		database string
	}{{creds, "my-other"}, {other, "my-shop"}} {
		if db, err := myConnect(my, tt.who.User, tt.who.Password, tt.database); err == nil {
			db.Close()
			t.Errorf("%s's credentials opened database %s", tt.who.User, tt.database)
		} else if !strings.Contains(err.Error(), "Access denied") {
			t.Errorf("%s → %s: %v, want access denied", tt.who.User, tt.database, err)
		}
	}
	if db, err := myConnect(my, "my-other", creds.Password, "my-other"); err == nil {
		db.Close()
		t.Error("my-shop's password logs in as my-other")
	}
	db, err := myConnect(my, creds.User, creds.Password, "my-shop")
	if err != nil {
		t.Fatalf("my-shop's own credentials: %v", err)
	}
	if _, err := db.Exec("SELECT COUNT(*) FROM `my-other`.greetings_greeting"); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Errorf("my-shop reading my-other's table: %v, want denied", err)
	}
	db.Close()

	r = in.SSH(in.AdminKey, "apps:info my-shop")
	if r.Code != 0 || !strings.Contains(r.Stdout, "django.db.backends.mysql") || !strings.Contains(r.Stdout, "my-shop") {
		t.Errorf("apps:info: %s", r)
	}
	outputs["apps:info"] = r.Stdout + r.Stderr

	// apps:destroy drops the app's database and user, only with --confirm,
	// and leaves the other app's data alone.
	gone := func() bool {
		var n int
		if err := admin.QueryRow("SELECT (SELECT COUNT(*) FROM mysql.user WHERE User = 'my-other') + " +
			"(SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'my-other')").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	}
	if r = in.SSH(in.AdminKey, "apps:destroy my-other"); r.Code == 0 || gone() {
		t.Errorf("apps:destroy without --confirm: %s (dropped: %v)", r, gone())
	}
	if r = in.SSH(in.AdminKey, "apps:destroy my-other --confirm my-other"); r.Code != 0 || !gone() {
		t.Errorf("apps:destroy --confirm: %s (dropped: %v)", r, gone())
	}
	if n := in.greetings("my-shop", "v2"); n <= rows {
		t.Errorf("my-shop after another app was destroyed counts %d greetings, had %d", n, rows)
	}

	outputs["conductor serve log"] = in.logs.String()
	outputs["mariadb server log"] = my.Log()
	noSecret(t, creds.Password, outputs)
	noSecret(t, other.Password, outputs)
}
