package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasadna/conductor/internal/dbtest"
)

// multidbWorkTree is examples/hello with both database drivers and the
// files of examples/hello-multidb: a legacy alias of the project's own and
// a /dbs/ page that writes through every alias.
func (in *Instance) multidbWorkTree() string {
	in.t.Helper()
	work := in.dbWorkTree(psycopgRequirement + "\n" + mysqlclientRequirement)
	overlay := filepath.Join("..", "examples", "hello-multidb")
	copyFile := func(name string) {
		b, err := os.ReadFile(filepath.Join(overlay, name))
		if err != nil {
			in.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, name), b, 0o644); err != nil {
			in.t.Fatal(err)
		}
	}
	copyFile("hello/urls.py")
	copyFile("greetings/dbinfo.py")
	legacy, err := os.ReadFile(filepath.Join(overlay, "hello", "settings_legacy.py"))
	if err != nil {
		in.t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(work, "hello", "settings.py"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		in.t.Fatal(err)
	}
	if _, err := f.Write(legacy); err != nil {
		in.t.Fatal(err)
	}
	f.Close()
	in.Commit(work, "multidb")
	return work
}

// dbsPage GETs /dbs/ and returns its lines by their first field.
func (in *Instance) dbsPage(app string) map[string]string {
	in.t.Helper()
	code, body, _ := in.Get(app, "/dbs/")
	if code != 200 {
		in.t.Fatalf("GET /dbs/ on %s = %d %q", app, code, body)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
		k, _, _ := strings.Cut(l, " ")
		if k == "env" {
			k, _, _ = strings.Cut(l, "=")
		}
		lines[k] = l
	}
	return lines
}

type dbRow struct {
	Alias, Env, Kind, Engine, Name, User, Host, Port string
	Provisioned                                      bool
}

// TestDatabaseAliases: db:create adds a MariaDB database under an alias to
// a deployed SQLite app, which sees it in DATABASES and
// METRICS_DATABASE_URL after the redeploy, its own legacy alias kept; db
// lists it without a password; refusals change nothing; db:destroy drops
// it; apps:destroy drops every alias.
func TestDatabaseAliases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg, my := dbtest.Postgres(t), dbtest.MariaDB(t)
	in := StartInstance(t, append(dsnFlag(t, pg), dsnFlag(t, my)...)...)
	work := in.multidbWorkTree()
	in.pushOK(work, "multi")

	page := in.dbsPage("multi")
	if !strings.Contains(page["alias=default"], "vendor=sqlite") || !strings.Contains(page["alias=legacy"], "vendor=sqlite") ||
		!strings.Contains(page["alias=legacy"], "legacy.sqlite3") || page["env DATABASE_URL"] != "env DATABASE_URL=sqlite" || len(page) != 3 {
		t.Fatalf("/dbs/ before db:create: %q", page)
	}

	// Refusals change nothing: a bad alias, kind, a developer.
	dev := in.NewKey("dev")
	must(t, "keys:add dev", in.SSHIn(in.AdminKey, "keys:add dev", readFile(t, dev+".pub")))
	must(t, "access:grant", in.SSH(in.AdminKey, "access:grant multi dev"))
	refused(t, "bad alias", in.SSH(in.AdminKey, "db:create multi mysql --alias Metrics"), "invalid database alias")
	refused(t, "bad alias", in.SSH(in.AdminKey, "db:create multi mysql --alias 'a;b'"), "invalid database alias")
	refused(t, "bad kind", in.SSH(in.AdminKey, "db:create multi sqlite --alias metrics"), "use postgres or mysql")
	refused(t, "developer", in.SSH(dev, "db:create multi mysql --alias metrics"), "needs an admin")
	refused(t, "developer", in.SSH(dev, "db:destroy multi --alias default --confirm"), "needs an admin")
	// Moving a deployed SQLite default needs --confirm.
	refused(t, "default without --confirm", in.SSH(in.AdminKey, "db:create multi postgres"), "--confirm")
	if out := in.stateQuery(`SELECT count(*) FROM app_databases`); out != "0" {
		t.Fatalf("refused db:create recorded %s databases", out)
	}
	if out := in.stateQuery(`SELECT db_kind FROM apps WHERE name = 'multi'`); out != "sqlite" {
		t.Fatalf("refused db:create changed the app's kind to %s", out)
	}

	r := in.SSH(in.AdminKey, "db:create multi mysql --alias metrics")
	if r.Code != 0 || !strings.Contains(r.Stdout, "METRICS_DATABASE_URL") || !strings.Contains(r.Stdout, "-----> Deployed multi") {
		t.Fatalf("db:create --alias metrics: %s", r)
	}
	if !strings.Contains(r.Stdout, `Database metrics: mysql database "multi_metrics"`) {
		t.Errorf("the redeploy does not name the new database:\n%s", r.Stdout)
	}
	page = in.dbsPage("multi")
	if !strings.Contains(page["alias=metrics"], "vendor=mysql") || !strings.Contains(page["alias=metrics"], "name=multi_metrics rows=1") ||
		page["env METRICS_DATABASE_URL"] != "env METRICS_DATABASE_URL=mysql" || !strings.HasSuffix(page["alias=legacy"], "rows=2") ||
		!strings.Contains(page["alias=default"], "vendor=sqlite") {
		t.Errorf("/dbs/ after db:create: %q", page)
	}
	var probe int
	if err := myAdmin(t, my).QueryRow("SELECT COUNT(*) FROM `multi_metrics`.conductor_probe").Scan(&probe); err != nil || probe != 1 {
		t.Errorf("rows the app wrote through metrics, read on the server: %d, %v", probe, err)
	}
	refused(t, "taken alias", in.SSH(in.AdminKey, "db:create multi postgres --alias metrics"), "has a database metrics already")

	// db (and db:list) list aliases, kinds and names; no password.
	creds := strings.Split(in.stateQuery(`SELECT password FROM app_databases WHERE alias = 'metrics'`), "\n")
	var rows []dbRow
	out := must(t, "db --json", in.SSH(dev, "db multi --json"))
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Alias != "default" || rows[0].Kind != "sqlite" || rows[1].Alias != "metrics" || rows[1].Kind != "mysql" ||
		rows[1].Env != "METRICS_DATABASE_URL" || rows[1].Name != "multi_metrics" || rows[1].User != "multi_metrics" {
		t.Errorf("db --json = %+v", rows)
	}
	text := must(t, "db:list", in.SSH(dev, "db:list multi"))
	if !strings.Contains(text, "metrics") || !strings.Contains(text, "METRICS_DATABASE_URL") {
		t.Errorf("db:list = %q", text)
	}
	noSecret(t, creds[0], map[string]string{"db --json": out, "db:list": text, "log": in.logs.String()})

	// A redeploy keeps the alias and its rows.
	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	in.pushOK(work, "multi")
	if page = in.dbsPage("multi"); !strings.Contains(page["alias=metrics"], "rows=2") {
		t.Errorf("/dbs/ after a push: %q", page)
	}

	// db:destroy needs --confirm, then drops it; the app no longer has it.
	refused(t, "db:destroy without --confirm", in.SSH(in.AdminKey, "db:destroy multi --alias metrics"), "--confirm")
	refused(t, "db:destroy unknown", in.SSH(in.AdminKey, "db:destroy multi --alias nope --confirm"), "has no database nope")
	refused(t, "db:destroy SQLite default", in.SSH(in.AdminKey, "db:destroy multi --alias default --confirm"), "SQLite file")
	must(t, "db:destroy", in.SSH(in.AdminKey, "db:destroy multi --alias metrics --confirm"))
	if page = in.dbsPage("multi"); page["alias=metrics"] != "" || page["env METRICS_DATABASE_URL"] != "" || page["alias=legacy"] == "" {
		t.Errorf("/dbs/ after db:destroy: %q", page)
	}
	var n int
	if err := myAdmin(t, my).QueryRow("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'multi_metrics'").Scan(&n); err != nil || n != 0 {
		t.Errorf("multi_metrics after db:destroy: %d, %v", n, err)
	}

	// The audit trail has the changes and the refusals.
	var trail []auditRow
	if err := json.Unmarshal([]byte(must(t, "audit", in.SSH(in.AdminKey, "audit -n 200 --json"))), &trail); err != nil {
		t.Fatal(err)
	}
	var created, destroyed, denied bool
	for _, e := range trail {
		switch {
		case e.Op == "db:create" && e.Outcome == "ok" && e.Detail == "mysql --alias metrics":
			created = true
		case e.Op == "db:destroy" && e.Outcome == "ok" && e.Detail == "--alias metrics":
			destroyed = true
		case e.Op == "db:create" && e.User == "dev" && e.Outcome == "denied":
			denied = true
		}
	}
	if !created || !destroyed || !denied {
		t.Errorf("audit trail (create %v, destroy %v, denied %v): %+v", created, destroyed, denied, trail)
	}

	// apps:destroy drops every alias.
	must(t, "db:create reports", in.SSH(in.AdminKey, "db:create multi postgres --alias reports --no-restart"))
	must(t, "apps:destroy", in.SSH(in.AdminKey, "apps:destroy multi --confirm multi"))
	if err := pgAdmin(t, pg, "postgres").QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = 'multi_reports'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("multi_reports after apps:destroy: %d, %v", n, err)
	}
	if out := in.stateQuery(`SELECT count(*) FROM app_databases`); out != "0" {
		t.Errorf("apps:destroy left %s database records", out)
	}
}

// TestDatabaseSQLiteToPostgres: the documented move of a deployed app from
// SQLite to PostgreSQL keeping its rows: dumpdata through run, db:create
// --confirm (the redeploy migrates the new database), loaddata through run.
// The SQLite file stays.
func TestDatabaseSQLiteToPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := dbtest.Postgres(t)
	in := StartInstance(t, dsnFlag(t, pg)...)
	work := in.dbWorkTree(psycopgRequirement)
	in.pushOK(work, "mover")
	for range 3 {
		in.greetings("mover", "v1")
	}
	rows := in.greetings("mover", "v1")

	dump := in.SSH(in.AdminKey, "run mover -- python manage.py dumpdata --natural-foreign --natural-primary -e contenttypes -e auth.Permission")
	if dump.Code != 0 || !strings.Contains(dump.Stdout, `"model": "greetings.greeting"`) {
		t.Fatalf("dumpdata: %s", dump)
	}
	r := in.SSH(in.AdminKey, "db:create mover postgres --confirm")
	if r.Code != 0 || !strings.Contains(r.Stdout, "is kept with its data") || !strings.Contains(r.Stdout, "Applying greetings.0001_initial... OK") ||
		!strings.Contains(r.Stdout, "-----> Deployed mover") {
		t.Fatalf("db:create mover postgres --confirm: %s", r)
	}
	sqlite := filepath.Join(in.Data, "srv", "projects", "mover", "data", "db.sqlite3")
	if fi, err := os.Stat(sqlite); err != nil || fi.Size() == 0 {
		t.Errorf("the SQLite database after the move: %v", err)
	}
	load := in.SSHIn(in.AdminKey, "run mover -- python manage.py loaddata --format=json -", dump.Stdout)
	if load.Code != 0 || !strings.Contains(load.Stdout, "Installed") {
		t.Fatalf("loaddata: %s", load)
	}
	var stored int
	if err := pgAdmin(t, pg, "mover").QueryRow(ctx, `SELECT count(*) FROM greetings_greeting`).Scan(&stored); err != nil || stored < rows {
		t.Errorf("PostgreSQL has %d greetings after loaddata (%v); SQLite had %d", stored, err, rows)
	}
	// The app counts them through PostgreSQL, and writes more (the
	// sequence was reset by loaddata).
	if n := in.greetings("mover", "v1"); n != stored+1 {
		t.Errorf("the app counts %d greetings, want %d", n, stored+1)
	}
	if out := in.stateQuery(`SELECT db_kind FROM apps WHERE name = 'mover'`); out != "postgres" {
		t.Errorf("the app's default kind is %s", out)
	}
	if r := in.SSH(in.AdminKey, "db:create mover postgres --confirm"); r.Code == 0 || !strings.Contains(r.Stderr, "default database is PostgreSQL already") {
		t.Errorf("a second server default: %s", r)
	}
}
