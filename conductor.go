// Package conductor holds Conductor's domain: the apps, users, keys, deploys
// and releases it manages, and the interfaces that act on them. Adapters for
// external systems (SQLite, NATS, SSH, circus, nginx) live in their own
// packages and implement these interfaces; wiring happens in cmd/conductor.
package conductor

import (
	"context"
	"time"
)

// AccessLevel orders what a user may do with an app. Levels compare with <,
// so a check is always "level >= needed".
type AccessLevel int

const (
	NoAccess  AccessLevel = iota // the user may not see the app
	ReadOnly                     // clone/fetch
	ReadWrite                    // push, config, logs, deploy
	Admin                        // everything, including keys and access
)

func (l AccessLevel) String() string {
	switch l {
	case ReadOnly:
		return "read-only"
	case ReadWrite:
		return "read-write"
	case Admin:
		return "admin"
	default:
		return "no-access"
	}
}

// User is a person (or robot) known by one or more SSH keys.
type User struct {
	ID        int64
	Name      string
	Admin     bool
	CreatedAt time.Time
}

// Key is an SSH public key that authenticates a User.
type Key struct {
	ID          int64
	UserID      int64
	Fingerprint string // SHA256:… as ssh-keygen prints it
	PublicKey   string // authorized_keys format
	CreatedAt   time.Time
}

// Database kinds an app can be provisioned with.
const (
	DBSQLite   = "sqlite"
	DBPostgres = "postgres"
	DBMySQL    = "mysql"
)

// App is a deployable Django project (an "eKnight").
type App struct {
	ID        int64
	Name      string
	DBKind    string
	Ports     [2]int // the blue/green port pair; one serves, the other takes the next release
	SecretKey string
	Host      string // the builder worker's host that runs the app; it never moves
	CreatedAt time.Time
}

// Deploy statuses.
const (
	DeployQueued    = "queued"
	DeployRunning   = "running"
	DeploySucceeded = "succeeded"
	DeployFailed    = "failed"
)

// Deploy is one attempt to build and release a revision of an app.
type Deploy struct {
	ID         string // job id, also the release id when it succeeds
	AppID      int64
	Rev        string
	Ref        string
	Pusher     string
	Status     string
	Error      string
	CreatedAt  time.Time
	FinishedAt time.Time
}

// Release is a deploy that went live. Exactly one release per app is current.
// It keeps what a rollback needs to run it again: code dir, virtualenv and
// the config vars it ran with.
type Release struct {
	ID     string
	AppID  int64
	Number int // v1, v2… per app, in order
	Rev    string
	Port   int
	Dir    string
	Venv   string
	// Migrations is a digest of the release's migration files: a release
	// with the same one expects the same schema (builder/speculative.go).
	Migrations  string `json:",omitempty"`
	Config      map[string]string
	Pusher      string
	Description string // "deploy of refs/heads/main", "rollback to v3"…
	Duration    time.Duration
	Current     bool
	CreatedAt   time.Time

	// RestoreConfig, when recording a release (a rollback), makes the
	// app's config vars Config in the same transaction.
	RestoreConfig bool `json:",omitempty"`
	// Cron is the release's scheduled jobs (app.json's cron, cron.go),
	// recorded by AddRelease with it.
	Cron []CronEntry `json:",omitempty"`
}

// Store persists Conductor's state. The SQLite package implements it.
type Store interface {
	BuilderStore    // what a builder reads and records
	ConfigFileStore // config:file (configfile.go)
	RedisAdmin      // redis:create, redis:destroy (redis.go)
	CronHistory     // cron's listing (cron.go)

	CreateUser(ctx context.Context, name string, admin bool) (*User, error)
	FindUser(ctx context.Context, name string) (*User, error)
	ListUsers(ctx context.Context) ([]*User, error)
	AddKey(ctx context.Context, userID int64, fingerprint, publicKey string) (*Key, error)
	FindUserByFingerprint(ctx context.Context, fingerprint string) (*User, error)
	ListKeys(ctx context.Context) ([]*Key, error)

	CreateApp(ctx context.Context, app *App) error
	UsedPorts(ctx context.Context) ([]int, error)

	SetConfig(ctx context.Context, appID int64, vars map[string]string) error
	UnsetConfig(ctx context.Context, appID int64, keys []string) error

	GrantAccess(ctx context.Context, appID, userID int64) error
	HasAccess(ctx context.Context, appID, userID int64) (bool, error)

	ListDeploys(ctx context.Context, appID int64) ([]*Deploy, error)

	// Users, keys and grants managed over SSH (sqlite/keys.go).
	// AddUserKey creates the user if needed (promoting it when admin is
	// set) and adds the key, in one transaction. RemoveKey and RemoveUser
	// refuse to leave no admin who can log in.
	AddUserKey(ctx context.Context, name string, admin bool, fingerprint, publicKey string) (*User, *Key, error)
	RemoveKey(ctx context.Context, fingerprint string) (*Key, error)
	RemoveUser(ctx context.Context, name string) error
	RevokeAccess(ctx context.Context, appID, userID int64) error
	ListAccess(ctx context.Context, appID int64) ([]*User, error)

	// DeleteApp forgets an app and everything recorded about it but the
	// audit trail (sqlite/apps.go).
	DeleteApp(ctx context.Context, appID int64) error
	AddDomain(ctx context.Context, appID int64, host string) error
	RemoveDomain(ctx context.Context, appID int64, host string) error
	SetProcessScale(ctx context.Context, appID int64, scale map[string]int) error
	// SetProcessLimits records a process type's limits (ps:limit); zero
	// limits forget the type's row.
	SetProcessLimits(ctx context.Context, appID int64, typ string, l ProcessLimits) error
	// SetAppSettings stores apps:set's values and resets the keys in unset
	// to their defaults, in one transaction (settings.go validates them).
	SetAppSettings(ctx context.Context, appID int64, set map[string]string, unset []string) error

	// The audit trail (sqlite/audit.go), newest first; app "" lists all.
	AddAudit(ctx context.Context, e *AuditEntry) error
	ListAudit(ctx context.Context, app string, limit int) ([]*AuditEntry, error)

	// TLS certificates of custom domains (sqlite/certs.go; Certificates is
	// in BuilderStore). A certificate goes with its domain (domains:remove,
	// apps:destroy).
	PutCertificate(ctx context.Context, c *Certificate) error
	AllCertificates(ctx context.Context) ([]*Certificate, error)
	SetCertificateError(ctx context.Context, appID int64, domain, msg string) error
}

// BuilderStore is the part of the state a builder reads and records. On the
// conductor's host it is the SQLite store; a worker on another host reaches
// the same state over NATS (package natsstore).
type BuilderStore interface {
	ConfigFileReader // config files and where they were placed (configfile.go)

	FindApp(ctx context.Context, name string) (*App, error)
	ListApps(ctx context.Context) ([]*App, error)
	Config(ctx context.Context, appID int64) (map[string]string, error)
	// ReplaceConfig sets an app's config vars to exactly vars (a rollback
	// restores its release's config).
	ReplaceConfig(ctx context.Context, appID int64, vars map[string]string) error
	Domains(ctx context.Context, appID int64) ([]string, error)
	// ProcessScale is the number of processes per process type, for the
	// types that were scaled; the others run one.
	ProcessScale(ctx context.Context, appID int64) (map[string]int, error)
	// ProcessLimits are the kernel limits per process type (ps:limit), for
	// the types that have any.
	ProcessLimits(ctx context.Context, appID int64) (map[string]ProcessLimits, error)
	// The app's Redis, for REDIS_URL (redis.go).
	RedisStore
	// Scheduled jobs of the current release and their runs (cron.go).
	CronStore
	// Maintenance mode (maintenance.go): every site the builder writes
	// renders it; db:restore sets it on the app's host.
	MaintenanceStore
	// AppSettings are the settings set with apps:set (settings.go); keys
	// at their default are absent.
	AppSettings(ctx context.Context, appID int64) (map[string]string, error)

	CreateDeploy(ctx context.Context, d *Deploy) error
	FinishDeploy(ctx context.Context, id, status, errMsg string) error
	// FailUnfinishedDeploys marks every queued or running deploy of the
	// apps on host failed with msg, and returns their ids: when a host's
	// worker starts, they belong to a worker that was killed.
	FailUnfinishedDeploys(ctx context.Context, host, msg string) ([]string, error)

	// AddRelease records r as the app's current release and its deploy
	// (the job of the same id) succeeded, in one transaction: a deploy's
	// commit point (builder/switch.go).
	AddRelease(ctx context.Context, r *Release) error
	CurrentRelease(ctx context.Context, appID int64) (*Release, error)
	ListReleases(ctx context.Context, appID int64) ([]*Release, error)
	// FindRelease finds a release by id or by number ("v3" or "3").
	FindRelease(ctx context.Context, appID int64, ref string) (*Release, error)

	// Certificates returns an app's TLS certificates, PEM included.
	Certificates(ctx context.Context, appID int64) ([]*Certificate, error)
}

// AccessFor resolves, in one place, what user u may do with app (nil app means
// the server itself). Admins may do everything; a user granted the app reads
// and writes it; everyone else gets nothing.
func AccessFor(ctx context.Context, s Store, u *User, app *App) (AccessLevel, error) {
	if u == nil {
		return NoAccess, nil
	}
	if u.Admin {
		return Admin, nil
	}
	if app == nil {
		return ReadOnly, nil
	}
	ok, err := s.HasAccess(ctx, app.ID, u.ID)
	if err != nil {
		return NoAccess, err
	}
	if ok {
		return ReadWrite, nil
	}
	return NoAccess, nil
}
