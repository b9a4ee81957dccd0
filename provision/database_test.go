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
	db, err := p.Ensure(ctx, app, u)
	if err != nil {
		t.Fatal(err)
	}
	if db.Name != path || db.URL != "sqlite:///"+path || db.Host != "" {
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
			first, err := p.Ensure(ctx, app, nil)
			if err != nil {
				t.Fatal(err)
			}
			host, port := srv.Endpoint()
			if first.Name != "my-app" || first.User != "my-app" || first.Host != host || first.Port != port || len(first.Password) != 32 {
				t.Errorf("Ensure = %#v (password of %d characters)", first, len(first.Password))
			}
			stored, err := store.FindAppDatabase(ctx, app.ID)
			if err != nil || stored.Password != first.Password {
				t.Fatalf("stored credentials %v, %v: not the ones given to the app", stored, err)
			}
			again, err := p.Ensure(ctx, app, nil)
			if err != nil {
				t.Fatal(err)
			}
			if again.Password != first.Password || again.URL != first.URL {
				t.Error("a second Ensure changed the credentials")
			}
			info, err = p.Describe(ctx, app)
			if err != nil || !info.Provisioned || info.Host != host || info.Port != port || info.User != "my-app" {
				t.Errorf("Describe = %+v, %v", info, err)
			}

			if err := p.Drop(ctx, app); err != nil {
				t.Fatal(err)
			}
			if _, err := store.FindAppDatabase(ctx, app.ID); conductor.ErrorCode(err) != conductor.ENOTFOUND {
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
			if fresh.Password == first.Password {
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
