package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
)

// Databases provisions each app's database: a file in its data dir for
// SQLite, a database and a user on a server for PostgreSQL and MariaDB.
type Databases struct {
	Store   conductor.DatabaseStore
	Servers map[string]conductor.DatabaseServer // by kind; only the configured ones
	Layout  Layout
}

// CheckKind tells whether apps can be created with that database kind here.
func (p *Databases) CheckKind(kind string) error {
	switch kind {
	case conductor.DBSQLite:
		return nil
	case conductor.DBPostgres, conductor.DBMySQL:
		if p != nil && p.Servers[kind] != nil {
			return nil
		}
		return conductor.Errorf(conductor.EINVALID, "this Conductor has no %s server: start it with --%s-dsn, or use sqlite", kindName(kind), kind)
	default:
		return conductor.Errorf(conductor.EINVALID, "unknown database %q: use sqlite, postgres or mysql", kind)
	}
}

func kindName(kind string) string {
	switch kind {
	case conductor.DBPostgres:
		return "PostgreSQL"
	case conductor.DBMySQL:
		return "MariaDB"
	}
	return "SQLite"
}

func (p *Databases) server(kind string) (conductor.DatabaseServer, error) {
	if err := p.CheckKind(kind); err != nil {
		return nil, err
	}
	return p.Servers[kind], nil
}

// Ensure makes sure the app's database exists and returns what Django needs
// to reach it. On a server, credentials are generated on the first call and
// stored before the server is touched, so every later call, a redeploy or a
// retried job, uses the same ones.
func (p *Databases) Ensure(ctx context.Context, app *conductor.App, u *AppUser) (Database, error) {
	if app.DBKind == conductor.DBSQLite {
		return p.ensureSQLite(app, u)
	}
	srv, err := p.server(app.DBKind)
	if err != nil {
		return Database{}, err
	}
	db, err := p.Store.EnsureAppDatabase(ctx, &conductor.AppDatabase{
		AppID: app.ID, Kind: app.DBKind, Name: app.Name, User: app.Name, Password: RandomString(32),
	})
	if err != nil {
		return Database{}, err
	}
	if db.Kind != app.DBKind {
		return Database{}, fmt.Errorf("app %s has a %s database recorded, not %s", app.Name, db.Kind, app.DBKind)
	}
	if err := srv.Create(ctx, db); err != nil {
		return Database{}, err
	}
	host, port := srv.Endpoint()
	return ServerDatabase(db, host, port), nil
}

// SQLite's own files next to a database.
var sqliteSuffixes = []string{"", "-wal", "-shm", "-journal"}

// ensureSQLite creates the app's database file, private to its user (0600):
// SQLite gives its journal files the database's mode, so a file Django
// created (0644) would be readable by whoever reaches the data dir.
//
// The data dir is the app user's: each file is reached and changed through
// a descriptor (safefs), never through a link the app planted. A database
// the app made a symlink is the app's choice and is left alone.
func (p *Databases) ensureSQLite(app *conductor.App, u *AppUser) (Database, error) {
	db := SQLiteDatabase(p.Layout, app.Name)
	base, rel := p.Layout.ProjectsDir(), app.Name+"/data/db.sqlite3"
	for _, suffix := range sqliteSuffixes {
		var err error
		if suffix == "" {
			err = safefs.EnsureFile(base, rel, 0o600, u.UID, u.GID)
		} else {
			err = safefs.SetOwnerIfExists(base, rel+suffix, 0o600, u.UID, u.GID)
		}
		if errors.Is(err, safefs.ErrSymlink) {
			continue
		} else if err != nil {
			return Database{}, fmt.Errorf("the SQLite database of %s: %w", app.Name, err)
		}
	}
	return db, nil
}

// Drop removes the app's database and all its data, then forgets its
// credentials; stop the app's processes first. Only what Conductor created
// for this app is dropped: a server refuses a database or user of that name
// that it did not create. An app that was never deployed has nothing to
// drop. apps:destroy calls it.
func (p *Databases) Drop(ctx context.Context, app *conductor.App) error {
	if app.DBKind == conductor.DBSQLite {
		path := SQLiteDatabase(p.Layout, app.Name).Name
		for _, suffix := range sqliteSuffixes {
			if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	}
	db, err := p.Store.FindAppDatabase(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		return nil // never provisioned: credentials are stored before anything is created
	} else if err != nil {
		return err
	}
	srv, err := p.server(db.Kind)
	if err != nil {
		return err
	}
	if err := srv.Drop(ctx, db); err != nil {
		return err
	}
	slog.Info("dropped app database", "app", app.Name, "db", db)
	return p.Store.DeleteAppDatabase(ctx, app.ID)
}

// DatabaseInfo is what may be shown about an app's database: never the
// password.
type DatabaseInfo struct {
	Kind        string `json:"kind"`           // sqlite, postgres or mysql
	Engine      string `json:"engine"`         // Django's ENGINE
	Name        string `json:"name"`           // database name, or the SQLite file
	User        string `json:"user,omitempty"` // role or user the app logs in as
	Host        string `json:"host,omitempty"` // host or unix socket
	Port        string `json:"port,omitempty"`
	Provisioned bool   `json:"provisioned"` // false until the first deploy created it
}

// Describe tells which database the app has (or will have once deployed),
// for apps:info.
func (p *Databases) Describe(ctx context.Context, app *conductor.App) (DatabaseInfo, error) {
	info := DatabaseInfo{Kind: app.DBKind, Engine: engines[app.DBKind]}
	if app.DBKind == conductor.DBSQLite {
		info.Name = SQLiteDatabase(p.Layout, app.Name).Name
		_, err := os.Stat(info.Name)
		info.Provisioned = err == nil
		return info, nil
	}
	info.Name, info.User = app.Name, app.Name
	db, err := p.Store.FindAppDatabase(ctx, app.ID)
	if err == nil {
		info.Name, info.User, info.Provisioned = db.Name, db.User, true
	} else if conductor.ErrorCode(err) != conductor.ENOTFOUND {
		return info, err
	}
	if srv := p.Servers[app.DBKind]; srv != nil {
		info.Host, info.Port = srv.Endpoint()
	}
	return info, nil
}

// engines are Django's database backends by kind.
var engines = map[string]string{
	conductor.DBSQLite:   "django.db.backends.sqlite3",
	conductor.DBPostgres: "django.db.backends.postgresql",
	conductor.DBMySQL:    "django.db.backends.mysql",
}

// urlSchemes are DATABASE_URL's schemes by kind, as dj-database-url reads them.
var urlSchemes = map[string]string{conductor.DBPostgres: "postgres", conductor.DBMySQL: "mysql"}

// ServerDatabase is what Django needs to reach a database on a server at
// host and port (or at a unix socket path given as host).
func ServerDatabase(db *conductor.AppDatabase, host, port string) Database {
	addr := host
	if strings.HasPrefix(host, "/") {
		addr = url.PathEscape(host) // dj-database-url's spelling of a socket
	} else if port != "" {
		addr = net.JoinHostPort(host, port)
	}
	return Database{
		Engine: engines[db.Kind], Name: db.Name, Host: host, Port: port, User: db.User, Password: db.Password,
		URL: urlSchemes[db.Kind] + "://" + url.UserPassword(db.User, db.Password).String() + "@" + addr + "/" + url.PathEscape(db.Name),
	}
}

// String describes the database without its password, for logs and build
// output.
func (d Database) String() string {
	if d.Host == "" {
		return fmt.Sprintf("%s at %s", d.Engine, d.Name)
	}
	at := d.Host
	if d.Port != "" && !strings.HasPrefix(d.Host, "/") {
		at = net.JoinHostPort(d.Host, d.Port)
	}
	return fmt.Sprintf("%s database %q at %s as %q", strings.TrimPrefix(d.Engine, "django.db.backends."), d.Name, at, d.User)
}

// GoString keeps %#v from printing the password.
func (d Database) GoString() string { return "provision.Database{" + d.String() + "}" }

// LogValue keeps slog from printing the password.
func (d Database) LogValue() slog.Value { return slog.StringValue(d.String()) }
