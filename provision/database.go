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

// Ensure makes sure each of the app's databases exists and returns what
// Django needs to reach them, the default first. On a server, credentials
// are generated on the first call and stored before the server is touched,
// so every later call, a redeploy or a retried job, uses the same ones. A
// SQLite default is a file in the app's data dir; the other aliases are the
// ones db:create added.
func (p *Databases) Ensure(ctx context.Context, app *conductor.App, u *AppUser) ([]Database, error) {
	var out []Database
	if app.DBKind == conductor.DBSQLite {
		db, err := p.ensureSQLite(app, u)
		if err != nil {
			return nil, err
		}
		out = append(out, db)
	} else {
		if _, err := p.server(app.DBKind); err != nil {
			return nil, err
		}
		// apps:create --db: the default's credentials are made by the
		// first deploy.
		if _, err := p.Store.EnsureAppDatabase(ctx, p.newDatabase(app, app.DBKind, conductor.DefaultAlias)); err != nil {
			return nil, err
		}
	}
	dbs, err := p.Store.AppDatabases(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	for _, db := range dbs {
		if db.Alias == conductor.DefaultAlias && db.Kind != app.DBKind {
			return nil, fmt.Errorf("app %s has a %s default database recorded, not %s", app.Name, db.Kind, app.DBKind)
		}
		srv, err := p.server(db.Kind)
		if err != nil {
			return nil, err
		}
		if err := srv.Create(ctx, db); err != nil {
			return nil, err
		}
		host, port := srv.Endpoint()
		out = append(out, ServerDatabase(db, host, port))
	}
	return out, nil
}

// newDatabase is a database for app's alias with new credentials: the
// default is named after the app, another alias <app>_<alias> (app names
// have no underscore, so no two apps' names meet).
func (p *Databases) newDatabase(app *conductor.App, kind, alias string) *conductor.AppDatabase {
	name := app.Name
	if alias != conductor.DefaultAlias {
		name = app.Name + "_" + alias
	}
	return &conductor.AppDatabase{AppID: app.ID, Alias: alias, Kind: kind, Name: name, User: name, Password: RandomString(32)}
}

// AddResult is what Add did.
type AddResult struct {
	DB *conductor.AppDatabase
	// KeptSQLite is the SQLite file the app used as its default before,
	// kept with its data (empty when there was none).
	KeptSQLite string
}

// Add gives the app a new database of kind on its server under alias
// (db:create), provisioned now so that a refused name or an unreachable
// server is told at once. A failure leaves nothing behind: the database,
// user and credentials made for it are removed. The alias must be free,
// except "default" on an app whose default is SQLite: the new database
// becomes the default and the SQLite file stays where it is, untouched.
func (p *Databases) Add(ctx context.Context, app *conductor.App, kind, alias string) (AddResult, error) {
	if err := conductor.ValidateDatabaseAlias(alias); err != nil {
		return AddResult{}, err
	}
	if kind != conductor.DBPostgres && kind != conductor.DBMySQL {
		return AddResult{}, conductor.Errorf(conductor.EINVALID, "unknown database kind %q: use postgres or mysql", kind)
	}
	srv, err := p.server(kind)
	if err != nil {
		return AddResult{}, err
	}
	var res AddResult
	if alias == conductor.DefaultAlias {
		if app.DBKind != conductor.DBSQLite {
			return AddResult{}, conductor.Errorf(conductor.ECONFLICT,
				"%s's default database is %s already: save its data, then db:destroy %s --alias default --confirm first", app.Name, kindName(app.DBKind), app.Name)
		}
		if p.SQLiteExists(app.Name) {
			res.KeptSQLite = SQLiteDatabase(p.Layout, app.Name).Name
		}
	}
	if _, err := p.Store.FindAppDatabase(ctx, app.ID, alias); err == nil {
		return AddResult{}, conductor.Errorf(conductor.ECONFLICT, "%s has a database %s already", app.Name, alias)
	} else if conductor.ErrorCode(err) != conductor.ENOTFOUND {
		return AddResult{}, err
	}
	want := p.newDatabase(app, kind, alias)
	db, err := p.Store.EnsureAppDatabase(ctx, want)
	if err != nil {
		return AddResult{}, err
	}
	if db.Password != want.Password {
		// Another db:create of the same alias got there first.
		return AddResult{}, conductor.Errorf(conductor.ECONFLICT, "%s has a database %s already", app.Name, alias)
	}
	undo := func(cause error) error {
		ctx := context.WithoutCancel(ctx)
		// Drop refuses what Conductor did not create, so a name taken by
		// someone else is left alone.
		if err := srv.Drop(ctx, db); err != nil {
			slog.Warn("undo a failed database provision", "app", app.Name, "db", db, "err", err)
		}
		if err := p.Store.DeleteAppDatabase(ctx, app.ID, alias); err != nil {
			slog.Warn("undo a failed database provision", "app", app.Name, "db", db, "err", err)
		}
		return cause
	}
	if err := srv.Create(ctx, db); err != nil {
		return AddResult{}, undo(err)
	}
	if alias == conductor.DefaultAlias {
		if err := p.Store.SetAppDBKind(ctx, app.ID, kind); err != nil {
			return AddResult{}, undo(err)
		}
		app.DBKind = kind
	}
	slog.Info("added app database", "app", app.Name, "db", db)
	res.DB = db
	return res, nil
}

// Remove drops the app's database of that alias with its data and forgets
// it (db:destroy). The default can go only when it is on a server: the app
// falls back to its SQLite file in its data dir, the one it had before
// db:create, if any. A SQLite default is removed by apps:destroy only.
func (p *Databases) Remove(ctx context.Context, app *conductor.App, alias string) (*conductor.AppDatabase, error) {
	if err := conductor.ValidateDatabaseAlias(alias); err != nil {
		return nil, err
	}
	if alias == conductor.DefaultAlias && app.DBKind == conductor.DBSQLite {
		return nil, conductor.Errorf(conductor.EINVALID, "%s's default database is its SQLite file: it goes with apps:destroy only", app.Name)
	}
	db, err := p.Store.FindAppDatabase(ctx, app.ID, alias)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		if alias == conductor.DefaultAlias {
			// apps:create --db, never deployed: nothing on the server yet.
			return nil, p.Store.SetAppDBKind(ctx, app.ID, conductor.DBSQLite)
		}
		return nil, conductor.Errorf(conductor.ENOTFOUND, "%s has no database %s", app.Name, alias)
	} else if err != nil {
		return nil, err
	}
	srv, err := p.server(db.Kind)
	if err != nil {
		return nil, err
	}
	if err := srv.Drop(ctx, db); err != nil {
		return nil, err
	}
	// The row goes before the kind changes: a failure in between leaves a
	// server default without a row, which a retried db:destroy finishes
	// (the ENOTFOUND case above), never a row no command can reach.
	if err := p.Store.DeleteAppDatabase(ctx, app.ID, alias); err != nil {
		return nil, err
	}
	if alias == conductor.DefaultAlias {
		if err := p.Store.SetAppDBKind(ctx, app.ID, conductor.DBSQLite); err != nil {
			return nil, err
		}
		app.DBKind = conductor.DBSQLite
	}
	slog.Info("dropped app database", "app", app.Name, "db", db)
	return db, nil
}

// SQLiteExists tells whether the app has a SQLite database file (its
// default's, or the one kept when db:create replaced it). The data dir is
// the app's: it is looked at without following a link.
func (p *Databases) SQLiteExists(app string) bool {
	_, err := safefs.Lstat(p.Layout.ProjectsDir(), app+"/data/db.sqlite3")
	return err == nil
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

// Drop removes all the app's databases and their data, then forgets their
// credentials; stop the app's processes first. Its SQLite file goes too,
// whether it is the default or was kept when db:create replaced it. Only
// what Conductor created for this app is dropped: a server refuses a
// database or user of that name that it did not create. apps:destroy calls
// it.
func (p *Databases) Drop(ctx context.Context, app *conductor.App) error {
	path := SQLiteDatabase(p.Layout, app.Name).Name
	for _, suffix := range sqliteSuffixes {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	dbs, err := p.Store.AppDatabases(ctx, app.ID)
	if err != nil {
		return err
	}
	for _, db := range dbs {
		srv, err := p.server(db.Kind)
		if err != nil {
			return err
		}
		if err := srv.Drop(ctx, db); err != nil {
			return err
		}
		slog.Info("dropped app database", "app", app.Name, "db", db)
		if err := p.Store.DeleteAppDatabase(ctx, app.ID, db.Alias); err != nil {
			return err
		}
	}
	return nil
}

// DatabaseInfo is what may be shown about an app's database: never the
// password.
type DatabaseInfo struct {
	Alias       string `json:"alias"`          // Django's alias
	Env         string `json:"env"`            // the variable holding its URL
	Kind        string `json:"kind"`           // sqlite, postgres or mysql
	Engine      string `json:"engine"`         // Django's ENGINE
	Name        string `json:"name"`           // database name, or the SQLite file
	User        string `json:"user,omitempty"` // role or user the app logs in as
	Host        string `json:"host,omitempty"` // host or unix socket
	Port        string `json:"port,omitempty"`
	Provisioned bool   `json:"provisioned"` // false until the first deploy created it
}

// Describe tells which default database the app has (or will have once
// deployed), for apps:info.
func (p *Databases) Describe(ctx context.Context, app *conductor.App) (DatabaseInfo, error) {
	all, err := p.List(ctx, app)
	if err != nil {
		return DatabaseInfo{}, err
	}
	return all[0], nil
}

// List describes all the app's databases, the default first (db).
func (p *Databases) List(ctx context.Context, app *conductor.App) ([]DatabaseInfo, error) {
	def := DatabaseInfo{Alias: conductor.DefaultAlias, Env: "DATABASE_URL", Kind: app.DBKind, Engine: engines[app.DBKind]}
	if app.DBKind == conductor.DBSQLite {
		def.Name = SQLiteDatabase(p.Layout, app.Name).Name
		_, err := os.Stat(def.Name)
		def.Provisioned = err == nil
	} else {
		def.Name, def.User = app.Name, app.Name
		if srv := p.Servers[app.DBKind]; srv != nil {
			def.Host, def.Port = srv.Endpoint()
		}
	}
	out := []DatabaseInfo{def}
	dbs, err := p.Store.AppDatabases(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	for _, db := range dbs {
		info := DatabaseInfo{Alias: db.Alias, Env: conductor.DatabaseURLVar(db.Alias), Kind: db.Kind, Engine: engines[db.Kind],
			Name: db.Name, User: db.User, Provisioned: true}
		if srv := p.Servers[db.Kind]; srv != nil {
			info.Host, info.Port = srv.Endpoint()
		}
		if db.Alias == conductor.DefaultAlias {
			out[0] = info
		} else {
			out = append(out, info)
		}
	}
	return out, nil
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
	alias := db.Alias
	if alias == "" {
		alias = conductor.DefaultAlias
	}
	return Database{
		Alias:  alias,
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
