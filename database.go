package conductor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hasadna/conductor/internal/lazyre"
)

// DatabaseMarker is the comment Conductor leaves on the databases and roles
// it creates on a server, so that it can tell its own from anything else of
// the same name and never take over, or drop, what it did not create.
const DatabaseMarker = "conductor app"

// AppDatabase is the database Conductor made for an app on a database server
// (PostgreSQL or MariaDB): the database, the user the app logs in as and
// that user's password. Credentials are generated once, stored before the
// server is touched, and reused for the app's whole life.
//
// The password is a secret: it reaches the app through local_settings.py and
// DATABASE_URL only. String, GoString and LogValue leave it out, so printing
// or logging an AppDatabase by mistake does not leak it.
type AppDatabase struct {
	AppID     int64
	Alias     string // Django's alias: DefaultAlias, or one db:create added
	Kind      string // DBPostgres or DBMySQL
	Name      string // database name on the server
	User      string // role (PostgreSQL) or user (MariaDB) the app logs in as
	Password  string // from [A-Za-z0-9]
	CreatedAt time.Time
}

func (d AppDatabase) String() string {
	return fmt.Sprintf("%s database %q (user %q)", d.Kind, d.Name, d.User)
}

// DefaultAlias is Django's default database alias: its URL is DATABASE_URL.
const DefaultAlias = "default"

var aliasRE = lazyre.New(`^[a-z][a-z0-9_]{0,29}$`)

// ValidateDatabaseAlias checks a Django database alias given to db:create
// or db:destroy: a lowercase identifier of at most 30 characters, so that
// <ALIAS>_DATABASE_URL is a valid variable name and <app>_<alias> a valid
// database and user name on every server.
func ValidateDatabaseAlias(alias string) error {
	if !aliasRE.MatchString(alias) {
		return Errorf(EINVALID, "invalid database alias %q: use 1-30 characters a-z, 0-9 and _, starting with a letter", truncate(alias))
	}
	return nil
}

// DatabaseURLVar is the environment variable holding an alias's URL:
// DATABASE_URL for the default, <ALIAS>_DATABASE_URL for the others.
func DatabaseURLVar(alias string) string {
	if alias == DefaultAlias {
		return "DATABASE_URL"
	}
	return strings.ToUpper(alias) + "_DATABASE_URL"
}

// GoString keeps %#v from printing the password.
func (d AppDatabase) GoString() string { return "conductor.AppDatabase{" + d.String() + "}" }

// LogValue keeps slog from printing the password.
func (d AppDatabase) LogValue() slog.Value {
	return slog.GroupValue(slog.String("alias", d.Alias), slog.String("kind", d.Kind), slog.String("name", d.Name), slog.String("user", d.User))
}

// DatabaseServer is one database server (PostgreSQL or MariaDB) on which
// Conductor keeps a database and a user per app, reached as an
// administrator. The postgres and mysql packages implement it.
//
// Both methods are idempotent, because a deploy job can run again after a
// crash at any point, and both refuse (ECONFLICT) a database or user of the
// app's name that Conductor did not create: other data is never touched.
type DatabaseServer interface {
	// Kind is DBPostgres or DBMySQL.
	Kind() string
	// Endpoint is where apps connect: a host and port, or a unix socket
	// path and an empty port.
	Endpoint() (host, port string)
	// Create makes sure db's database and user exist and that the user can
	// log in to that database, and only that one. What exists already is
	// kept: the password is set when the user is created and never changed.
	Create(ctx context.Context, db *AppDatabase) error
	// Drop removes db's database, with all its data, and its user. What
	// does not exist (any more) is not an error.
	Drop(ctx context.Context, db *AppDatabase) error
}

// DatabaseStore keeps the credentials of app databases, one per alias. It
// is apart from Store because only provisioning needs it. The sqlite
// package implements it.
type DatabaseStore interface {
	// EnsureAppDatabase records db for its app and alias unless that alias
	// has a database already, and returns the one recorded: the first
	// credentials stored win, so a retried or concurrent provision reuses
	// them.
	EnsureAppDatabase(ctx context.Context, db *AppDatabase) (*AppDatabase, error)
	// FindAppDatabase returns an app's database of that alias (ENOTFOUND
	// before it was provisioned).
	FindAppDatabase(ctx context.Context, appID int64, alias string) (*AppDatabase, error)
	// AppDatabases lists an app's server databases, the default first,
	// then by alias.
	AppDatabases(ctx context.Context, appID int64) ([]*AppDatabase, error)
	// DeleteAppDatabase forgets an app's database of that alias, once it
	// was dropped.
	DeleteAppDatabase(ctx context.Context, appID int64, alias string) error
	// SetAppDBKind records the kind of the app's default database
	// (App.DBKind) once db:create or db:destroy changed it.
	SetAppDBKind(ctx context.Context, appID int64, kind string) error
}
