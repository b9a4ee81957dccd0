package provision

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/dbtest"
	"github.com/hasadna/conductor/mysql"
	"github.com/hasadna/conductor/postgres"
	"github.com/hasadna/conductor/sqlite"
)

func TestCheckKind(t *testing.T) {
	var none *Databases
	pg := &Databases{Servers: map[string]conductor.DatabaseServer{conductor.DBPostgres: &postgres.Server{}}}
	for _, tt := range []struct {
		p    *Databases
		kind string
		ok   bool
	}{
		{none, conductor.DBSQLite, true},
		{none, conductor.DBPostgres, false},
		{pg, conductor.DBSQLite, true},
		{pg, conductor.DBPostgres, true},
		{pg, conductor.DBMySQL, false},
		{pg, "oracle", false},
		{pg, "", false},
	} {
		err := tt.p.CheckKind(tt.kind)
		if (err == nil) != tt.ok || (err != nil && conductor.ErrorCode(err) != conductor.EINVALID) {
			t.Errorf("CheckKind(%q) with %v servers = %v", tt.kind, tt.p != nil, err)
		}
	}
}

func TestServerDatabase(t *testing.T) {
	db := &conductor.AppDatabase{Kind: conductor.DBPostgres, Name: "my-app", User: "my-app", Password: "Secret123"}
	for _, tt := range []struct {
		kind, host, port, url string
	}{
		{conductor.DBPostgres, "127.0.0.1", "5432", "postgres://my-app:Secret123@127.0.0.1:5432/my-app"},
		{conductor.DBPostgres, "::1", "5433", "postgres://my-app:Secret123@[::1]:5433/my-app"},
		{conductor.DBPostgres, "/var/run/postgresql", "5432", "postgres://my-app:Secret123@%2Fvar%2Frun%2Fpostgresql/my-app"},
		{conductor.DBMySQL, "127.0.0.1", "3306", "mysql://my-app:Secret123@127.0.0.1:3306/my-app"},
		{conductor.DBMySQL, "/run/mysqld/mysqld.sock", "", "mysql://my-app:Secret123@%2Frun%2Fmysqld%2Fmysqld.sock/my-app"},
	} {
		db.Kind = tt.kind
		got := ServerDatabase(db, tt.host, tt.port)
		if got.URL != tt.url {
			t.Errorf("URL = %s, want %s", got.URL, tt.url)
		}
		if got.Engine != engines[tt.kind] || got.Name != "my-app" || got.User != "my-app" || got.Password != "Secret123" || got.Host != tt.host || got.Port != tt.port {
			t.Errorf("ServerDatabase(%s, %s) = %#v", tt.kind, tt.host, got)
		}
	}
}

// TestPasswordNotPrinted: printing or logging database values by mistake
// does not show the password.
func TestPasswordNotPrinted(t *testing.T) {
	const secret = "Sup3rSecretPassw0rd"
	app := &conductor.AppDatabase{Kind: conductor.DBPostgres, Name: "my-app", User: "my-app", Password: secret}
	db := ServerDatabase(app, "127.0.0.1", "5432")
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("x", "db", db, "app", app, "value", *app)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "db", db, "app", app)
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		fmt.Fprintf(&buf, format+"\n", db)
		fmt.Fprintf(&buf, format+"\n", app)
		fmt.Fprintf(&buf, format+"\n", &db)
		fmt.Fprintf(&buf, format+"\n", *app)
		fmt.Fprintf(&buf, format+"\n", []any{db, app})
	}
	if strings.Contains(buf.String(), secret) {
		t.Errorf("the password was printed:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `postgresql database "my-app" at 127.0.0.1:5432 as "my-app"`) {
		t.Errorf("the description lacks what it should say:\n%s", buf.String())
	}
}

// testUser is an app user for tests: nobody when root, so that ownership is
// really changed, else the current user.
func testUser(t *testing.T) *AppUser {
	name := "nobody"
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		name = u.Username
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	au, err := toAppUser(u, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return au
}

func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func TestEnsureSQLite(t *testing.T) {
	ctx := context.Background()
	l := Layout{Srv: t.TempDir()}
	u := testUser(t)
	p := &Databases{Store: openStore(t), Layout: l}
	app := &conductor.App{ID: 1, Name: "lite", DBKind: conductor.DBSQLite}
	if err := os.MkdirAll(l.DataDir("lite"), 0o711); err != nil {
		t.Fatal(err)
	}
	// A database Django made before Conductor made it private.
	path := filepath.Join(l.DataDir("lite"), "db.sqlite3")
	for _, f := range []string{path, path + "-wal"} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dbs, err := p.Ensure(ctx, app, u)
	if err != nil {
		t.Fatal(err)
	}
	db := dbs[0]
	if len(dbs) != 1 || db.Alias != conductor.DefaultAlias || db.Name != path || db.URL != "sqlite:///"+path || db.Host != "" {
		t.Errorf("Ensure = %#v", db)
	}
	for _, f := range []string{path, path + "-wal"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || int(fi.Sys().(*syscall.Stat_t).Uid) != u.UID {
			t.Errorf("%s: mode %v, uid %d; want 0600 and uid %d", f, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Uid, u.UID)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "x" {
		t.Error("Ensure changed an existing database")
	}
	info, err := p.Describe(ctx, app)
	if err != nil || info.Name != path || info.Kind != conductor.DBSQLite || !info.Provisioned {
		t.Errorf("Describe = %+v, %v", info, err)
	}
	if err := p.Drop(ctx, app); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Drop left %s: %v", path, err)
	}
	if _, err := os.Stat(path + "-wal"); !os.IsNotExist(err) {
		t.Errorf("Drop left the WAL: %v", err)
	}
}

// TestEnsureServer: an app's credentials are made once, stored before the
// server is touched, and reused by every later deploy; Drop removes the
// database and forgets them. Real servers, each in its own temp dir.
func TestEnsureServer(t *testing.T) {
	for _, kind := range []string{conductor.DBPostgres, conductor.DBMySQL} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var srv conductor.DatabaseServer
			var err error
			if kind == conductor.DBPostgres {
				srv, err = postgres.New(dbtest.Postgres(t).AdminDSN)
			} else {
				srv, err = mysql.New(dbtest.MariaDB(t).AdminDSN)
			}
			if err != nil {
				t.Fatal(err)
			}
			store := openStore(t)
			p := &Databases{Store: store, Layout: Layout{Srv: t.TempDir()}, Servers: map[string]conductor.DatabaseServer{kind: srv}}
			b := freeBlock(t, 4)
			app, err := NewApp(ctx, store, "my-app", kind, "local", PortRange{From: b, To: b + 3})
			if err != nil {
				t.Fatal(err)
			}

			info, err := p.Describe(ctx, app)
			if err != nil || info.Provisioned || info.Name != "my-app" || info.Kind != kind {
				t.Errorf("Describe before the first deploy = %+v, %v", info, err)
			}
			firsts, err := p.Ensure(ctx, app, nil)
			if err != nil {
				t.Fatal(err)
			}
			first := firsts[0]
			host, port := srv.Endpoint()
			if first.Name != "my-app" || first.User != "my-app" || first.Host != host || first.Port != port || len(first.Password) != 32 {
				t.Errorf("Ensure = %#v (password of %d characters)", first, len(first.Password))
			}
			stored, err := store.FindAppDatabase(ctx, app.ID, conductor.DefaultAlias)
			if err != nil || stored.Password != first.Password {
				t.Fatalf("stored credentials %v, %v: not the ones given to the app", stored, err)
			}
			agains, err := p.Ensure(ctx, app, nil)
			if err != nil {
				t.Fatal(err)
			}
			if again := agains[0]; len(agains) != 1 || again.Password != first.Password || again.URL != first.URL {
				t.Error("a second Ensure changed the credentials")
			}
			info, err = p.Describe(ctx, app)
			if err != nil || !info.Provisioned || info.Host != host || info.Port != port || info.User != "my-app" {
				t.Errorf("Describe = %+v, %v", info, err)
			}

			if err := p.Drop(ctx, app); err != nil {
				t.Fatal(err)
			}
			if _, err := store.FindAppDatabase(ctx, app.ID, conductor.DefaultAlias); conductor.ErrorCode(err) != conductor.ENOTFOUND {
				t.Errorf("credentials after Drop: %v", err)
			}
			if err := p.Drop(ctx, app); err != nil {
				t.Errorf("second Drop: %v", err)
			}
			// Recreated with new credentials after a drop.
			fresh, err := p.Ensure(ctx, app, nil)
			if err != nil {
				t.Fatal(err)
			}
			if fresh[0].Password == first.Password {
				t.Error("a dropped database came back with its old password")
			}

			// A kind this Conductor has no server for.
			other := conductor.DBMySQL
			if kind == conductor.DBMySQL {
				other = conductor.DBPostgres
			}
			app.DBKind = other
			if _, err := p.Ensure(ctx, app, nil); conductor.ErrorCode(err) != conductor.EINVALID {
				t.Errorf("Ensure without a %s server: %v", other, err)
			}
		})
	}
}

// TestDatabaseAliases: db:create's Add gives an app more databases, each in
// DATABASES and in its own variable; the default replaces a SQLite one and
// keeps its file; a refused provision leaves nothing behind; Remove and
// Drop remove them. A real PostgreSQL and MariaDB.
func TestDatabaseAliases(t *testing.T) {
	ctx := context.Background()
	pgServer := dbtest.Postgres(t)
	pg, err := postgres.New(pgServer.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	my, err := mysql.New(dbtest.MariaDB(t).AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	store := openStore(t)
	l := Layout{Srv: t.TempDir()}
	p := &Databases{Store: store, Layout: l, Servers: map[string]conductor.DatabaseServer{conductor.DBPostgres: pg, conductor.DBMySQL: my}}
	b := freeBlock(t, 4)
	app, err := NewApp(ctx, store, "alias-app", conductor.DBSQLite, "local", PortRange{From: b, To: b + 3})
	if err != nil {
		t.Fatal(err)
	}
	u := testUser(t)
	if err := os.MkdirAll(l.DataDir(app.Name), 0o711); err != nil {
		t.Fatal(err)
	}
	sqlitePath := filepath.Join(l.DataDir(app.Name), "db.sqlite3")
	if err := os.WriteFile(sqlitePath, []byte("old rows"), 0o600); err != nil {
		t.Fatal(err)
	}

	// Refused inputs change nothing.
	for _, tt := range []struct{ kind, alias, code string }{
		{conductor.DBPostgres, "Metrics", conductor.EINVALID},
		{conductor.DBPostgres, "1x", conductor.EINVALID},
		{conductor.DBPostgres, "a-b", conductor.EINVALID},
		{conductor.DBPostgres, strings.Repeat("a", 31), conductor.EINVALID},
		{conductor.DBSQLite, "metrics", conductor.EINVALID},
		{"oracle", "metrics", conductor.EINVALID},
	} {
		if _, err := p.Add(ctx, app, tt.kind, tt.alias); conductor.ErrorCode(err) != tt.code {
			t.Errorf("Add(%s, %q) = %v, want %s", tt.kind, tt.alias, err, tt.code)
		}
	}
	if all, _ := store.AppDatabases(ctx, app.ID); len(all) != 0 {
		t.Fatalf("refused Adds recorded %v", all)
	}

	metrics, err := p.Add(ctx, app, conductor.DBMySQL, "metrics")
	if err != nil {
		t.Fatal(err)
	}
	if metrics.DB.Name != "alias-app_metrics" || metrics.KeptSQLite != "" || app.DBKind != conductor.DBSQLite {
		t.Errorf("Add(metrics) = %+v, app kind %s", metrics, app.DBKind)
	}
	if _, err := p.Add(ctx, app, conductor.DBPostgres, "metrics"); conductor.ErrorCode(err) != conductor.ECONFLICT {
		t.Errorf("Add of a taken alias: %v", err)
	}
	dbs, err := p.Ensure(ctx, app, u)
	if err != nil {
		t.Fatal(err)
	}
	if len(dbs) != 2 || dbs[0].Alias != "default" || dbs[0].Name != sqlitePath || dbs[1].Alias != "metrics" || !strings.HasPrefix(dbs[1].URL, "mysql://alias-app_metrics:") {
		t.Errorf("Ensure = %v", dbs)
	}

	// The default moves to PostgreSQL; the SQLite file stays as it was.
	def, err := p.Add(ctx, app, conductor.DBPostgres, conductor.DefaultAlias)
	if err != nil {
		t.Fatal(err)
	}
	if def.KeptSQLite != sqlitePath || def.DB.Name != "alias-app" || app.DBKind != conductor.DBPostgres {
		t.Errorf("Add(default) = %+v, app kind %s", def, app.DBKind)
	}
	if got, err := store.FindApp(ctx, app.Name); err != nil || got.DBKind != conductor.DBPostgres {
		t.Errorf("stored app after Add(default): %v, %v", got, err)
	}
	if b, err := os.ReadFile(sqlitePath); err != nil || string(b) != "old rows" {
		t.Errorf("the SQLite file after the default moved: %q, %v", b, err)
	}
	if _, err := p.Add(ctx, app, conductor.DBMySQL, conductor.DefaultAlias); conductor.ErrorCode(err) != conductor.ECONFLICT {
		t.Errorf("Add of a second server default: %v", err)
	}
	dbs, err = p.Ensure(ctx, app, u)
	if err != nil {
		t.Fatal(err)
	}
	if len(dbs) != 2 || dbs[0].Alias != "default" || dbs[0].Engine != "django.db.backends.postgresql" || dbs[1].Alias != "metrics" {
		t.Errorf("Ensure after the move = %v", dbs)
	}
	list, err := p.List(ctx, app)
	if err != nil || len(list) != 2 || list[0].Env != "DATABASE_URL" || list[0].Kind != conductor.DBPostgres || list[1].Env != "METRICS_DATABASE_URL" || list[1].User != "alias-app_metrics" {
		t.Errorf("List = %+v, %v", list, err)
	}

	// A name taken on the server by something Conductor did not make: the
	// Add fails and leaves neither credentials nor a role behind.
	admin, err := pgx.Connect(ctx, pgServer.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE DATABASE "alias-app_legacy"`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Add(ctx, app, conductor.DBPostgres, "legacy"); conductor.ErrorCode(err) != conductor.ECONFLICT {
		t.Errorf("Add over a foreign database: %v", err)
	}
	if _, err := store.FindAppDatabase(ctx, app.ID, "legacy"); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Errorf("a failed Add left credentials: %v", err)
	}
	var roles int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = 'alias-app_legacy'`).Scan(&roles); err != nil || roles != 0 {
		t.Errorf("a failed Add left %d roles (%v)", roles, err)
	}

	// Remove: an unknown alias, then metrics, then the default (back to
	// the SQLite file); the SQLite default itself cannot go.
	if _, err := p.Remove(ctx, app, "nope"); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Errorf("Remove of an unknown alias: %v", err)
	}
	if _, err := p.Remove(ctx, app, "metrics"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Remove(ctx, app, conductor.DefaultAlias); err != nil {
		t.Fatal(err)
	}
	if app.DBKind != conductor.DBSQLite {
		t.Errorf("after removing the default, the app's kind is %s", app.DBKind)
	}
	if _, err := p.Remove(ctx, app, conductor.DefaultAlias); conductor.ErrorCode(err) != conductor.EINVALID {
		t.Errorf("Remove of the SQLite default: %v", err)
	}
	var dbCount int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = 'alias-app'`).Scan(&dbCount); err != nil || dbCount != 0 {
		t.Errorf("the removed default is still on the server (%d, %v)", dbCount, err)
	}

	// Drop (apps:destroy) takes every alias and the SQLite file.
	if _, err := p.Add(ctx, app, conductor.DBPostgres, "reports"); err != nil {
		t.Fatal(err)
	}
	if err := p.Drop(ctx, app); err != nil {
		t.Fatal(err)
	}
	if all, _ := store.AppDatabases(ctx, app.ID); len(all) != 0 {
		t.Errorf("Drop left %v", all)
	}
	if _, err := os.Stat(sqlitePath); !os.IsNotExist(err) {
		t.Errorf("Drop left the SQLite file: %v", err)
	}
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = 'alias-app_reports'`).Scan(&dbCount); err != nil || dbCount != 0 {
		t.Errorf("Drop left the reports database (%d, %v)", dbCount, err)
	}
}
