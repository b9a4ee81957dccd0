package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/dbtest"
	"github.com/hasadna/conductor/mysql"
	"github.com/hasadna/conductor/postgres"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/sqlite"
)

// newState makes a data dir with a host key and one app whose database is
// on srv, provisioned there, holding one row the app wrote.
func newState(t *testing.T, srv conductor.DatabaseServer, app string) (string, *conductor.AppDatabase) {
	t.Helper()
	ctx := context.Background()
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(data, "srv"), 0o711); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{hostKeyName: "host key\n", natsToken: "token\n", "certs/www.example.org.pem": "chain and key\n", "nats-tls/ca.key": "nats ca key\n", "db-backups/" + app + "/1-default-20260101T000000Z.pgdump": "a db:backup file\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(data, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	store, err := sqlite.Open(ctx, filepath.Join(data, stateName))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a := &conductor.App{Name: app, DBKind: srv.Kind(), Ports: [2]int{41000, 41001}, SecretKey: "k", Host: "local"}
	if err := store.CreateApp(ctx, a); err != nil {
		t.Fatal(err)
	}
	db, err := store.EnsureAppDatabase(ctx, &conductor.AppDatabase{AppID: a.ID, Kind: srv.Kind(), Name: app, User: app, Password: provision.RandomString(32)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	host, port := srv.Endpoint()
	if err := loadDatabase(ctx, db, host, port, strings.NewReader(
		"CREATE TABLE notes (id integer PRIMARY KEY, body varchar(100));\nINSERT INTO notes VALUES (1, 'written before the backup');\n")); err != nil {
		t.Fatal(err)
	}
	return data, db
}

// query runs one query as the app and returns its output.
func query(t *testing.T, db *conductor.AppDatabase, srv conductor.DatabaseServer, sql string) string {
	t.Helper()
	host, port := srv.Endpoint()
	var out bytes.Buffer
	var err error
	if db.Kind == conductor.DBPostgres {
		err = runClient(context.Background(), postgresEnv(db, host, port), nil, &out, "psql", "--no-psqlrc", "--tuples-only", "--no-align", "--command="+sql)
	} else {
		opts, cleanup, oerr := mariadbOptions(db, host, port)
		if oerr != nil {
			t.Fatal(oerr)
		}
		defer cleanup()
		err = runClient(context.Background(), nil, nil, &out, "mariadb", "--defaults-extra-file="+opts, "--batch", "--skip-column-names", "--database="+db.Name, "--execute="+sql)
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// addAlias gives the app of newState a second database, under alias, with
// one row.
func addAlias(t *testing.T, data string, srv conductor.DatabaseServer, appID int64, app, alias string) *conductor.AppDatabase {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(data, stateName))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db, err := store.EnsureAppDatabase(ctx, &conductor.AppDatabase{AppID: appID, Alias: alias, Kind: srv.Kind(), Name: app + "_" + alias, User: app + "_" + alias, Password: provision.RandomString(32)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	host, port := srv.Endpoint()
	if err := loadDatabase(ctx, db, host, port, strings.NewReader(
		"CREATE TABLE notes (id integer PRIMARY KEY, body varchar(100));\nINSERT INTO notes VALUES (1, 'metrics row');\n")); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestServerDatabases backs up an app's databases (its default and a
// second alias) on a real PostgreSQL and a real MariaDB, drops them,
// restores into a new data dir and finds the row
// again, in a database owned by the app; a restore over a database that
// has tables is refused.
func TestServerDatabases(t *testing.T) {
	for _, kind := range []string{conductor.DBPostgres, conductor.DBMySQL} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var srv conductor.DatabaseServer
			if kind == conductor.DBPostgres {
				s, err := postgres.New(dbtest.Postgres(t).AdminDSN)
				if err != nil {
					t.Fatal(err)
				}
				srv = s
			} else {
				s, err := mysql.New(dbtest.MariaDB(t).AdminDSN)
				if err != nil {
					t.Fatal(err)
				}
				srv = s
			}
			servers := map[string]conductor.DatabaseServer{kind: srv}
			data, db := newState(t, srv, "bk-"+kind)
			metrics := addAlias(t, data, srv, db.AppID, "bk-"+kind, "metrics")

			var archive bytes.Buffer
			m, err := (&Backup{Data: data, Layout: provision.Layout{Srv: filepath.Join(data, "srv")}, Servers: servers, Version: "test"}).Write(ctx, &archive)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Apps) != 1 || m.Apps[0].Dump != "databases/bk-"+kind+".sql" || len(m.Apps[0].Dumps) != 1 ||
				m.Apps[0].Dumps[0] != (AliasDump{Alias: "metrics", Kind: kind, Path: "databases/bk-" + kind + ".metrics.sql"}) {
				t.Fatalf("manifest: %+v", m.Apps)
			}
			// Without the server's DSN, restore refuses before writing anything.
			empty := filepath.Join(t.TempDir(), "none")
			if _, err := (&Restore{Data: empty, Layout: provision.Layout{Srv: filepath.Join(empty, "srv")}}).Run(ctx, bytes.NewReader(archive.Bytes())); err == nil || !strings.Contains(err.Error(), "--"+kind+"-dsn-file") {
				t.Errorf("restore without a DSN: %v", err)
			}
			if _, err := os.Stat(empty); !os.IsNotExist(err) {
				t.Errorf("a refused restore wrote %s", empty)
			}

			// The database is refused while it still has its table.
			into := filepath.Join(t.TempDir(), "data")
			restore := &Restore{Data: into, Layout: provision.Layout{Srv: filepath.Join(into, "srv")}, Servers: servers}
			if _, err := restore.Run(ctx, bytes.NewReader(archive.Bytes())); err == nil || !strings.Contains(err.Error(), "has 1 tables already") {
				t.Fatalf("restore over a database with tables: %v", err)
			}

			// Lost: the database and its user. Restored: both, with the row.
			for _, d := range []*conductor.AppDatabase{db, metrics} {
				if err := srv.Drop(ctx, d); err != nil {
					t.Fatal(err)
				}
			}
			into = filepath.Join(t.TempDir(), "data")
			restore = &Restore{Data: into, Layout: provision.Layout{Srv: filepath.Join(into, "srv")}, Servers: servers}
			if _, err := restore.Run(ctx, bytes.NewReader(archive.Bytes())); err != nil {
				t.Fatal(err)
			}
			if got := query(t, db, srv, "SELECT body FROM notes WHERE id = 1"); got != "written before the backup" {
				t.Errorf("restored row: %q", got)
			}
			if got := query(t, metrics, srv, "SELECT body FROM notes WHERE id = 1"); got != "metrics row" {
				t.Errorf("restored row of the metrics alias: %q", got)
			}
			for name, body := range map[string]string{hostKeyName: "host key\n", natsToken: "token\n", "certs/www.example.org.pem": "chain and key\n", "nats-tls/ca.key": "nats ca key\n", "db-backups/bk-" + kind + "/1-default-20260101T000000Z.pgdump": "a db:backup file\n"} {
				fi, err := os.Stat(filepath.Join(into, name))
				if b, rerr := os.ReadFile(filepath.Join(into, name)); err != nil || rerr != nil || string(b) != body || fi.Mode().Perm() != 0o600 {
					t.Errorf("restored %s: %q %v %v", name, b, fi, err)
				}
			}
			if kind == conductor.DBPostgres {
				if owner := query(t, db, srv, "SELECT tableowner FROM pg_tables WHERE tablename = 'notes'"); owner != db.User {
					t.Errorf("restored table owned by %q, want the app's role %q", owner, db.User)
				}
			}
		})
	}
}

// TestRestoreRefusesEscapes feeds restore archives whose names or links try
// to leave the data dir.
func TestRestoreRefusesEscapes(t *testing.T) {
	ctx := context.Background()
	for name, entries := range map[string][]entry{
		"dot-dot":      {{name: "repos/../../escaped", body: "x"}},
		"absolute":     {{name: "/tmp/escaped", body: "x"}},
		"unknown":      {{name: "etc/passwd", body: "x"}},
		"symlink-out":  {{name: "repos/link", link: "/tmp"}, {name: "repos/link/escaped", body: "x"}},
		"srv-link-out": {{name: "srv/projects", link: "../../.."}, {name: "srv/projects/escaped", body: "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			outside := t.TempDir()
			data := filepath.Join(outside, "a", "b", "data")
			archive := tarball(t, entries)
			_, err := (&Restore{Data: data, Layout: provision.Layout{Srv: filepath.Join(data, "srv")}}).Run(ctx, bytes.NewReader(archive))
			if err == nil {
				t.Fatalf("restore accepted %v", entries)
			}
			t.Logf("refused: %v", err)
			for _, p := range []string{"/tmp/escaped", filepath.Join(outside, "escaped"), filepath.Join(outside, "a", "escaped")} {
				if _, err := os.Stat(p); err == nil {
					os.Remove(p)
					t.Errorf("restore wrote %s", p)
				}
			}
		})
	}
}

// entry is a file (body) or symlink (link) in a hand-made archive.
type entry struct{ name, body, link string }

// tarball makes a backup archive: a valid manifest, then entries.
func tarball(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	manifest := `{"format": 1, "apps": []}`
	all := append([]entry{{name: manifestName, body: manifest}}, entries...)
	for _, e := range all {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		if e.link != "" {
			hdr = &tar.Header{Name: e.name, Mode: 0o777, Linkname: e.link, Typeflag: tar.TypeSymlink}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
