// Package postgres keeps app databases on a PostgreSQL server: one role and
// one database per app, named after the app, the database owned by the role
// and closed to everyone else. It implements conductor.DatabaseServer with
// jackc/pgx, connected as an administrator.
package postgres

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hasadna/conductor"
)

// Server is a PostgreSQL server Conductor administers.
type Server struct {
	admin *pgx.ConnConfig
}

var _ conductor.DatabaseServer = (*Server)(nil)

// New parses an administrator DSN (URL or key=value form). The role must be
// a superuser: it creates roles, gives them databases, and drops both.
// Nothing is dialed yet.
func New(dsn string) (*Server, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors leave the password out.
		return nil, fmt.Errorf("postgres DSN: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	return &Server{admin: cfg}, nil
}

// Kind is conductor.DBPostgres.
func (s *Server) Kind() string { return conductor.DBPostgres }

// Endpoint is the administrator's host and port: apps connect the same way.
func (s *Server) Endpoint() (host, port string) {
	return s.admin.Host, strconv.Itoa(int(s.admin.Port))
}

// Ping checks that the administrator can log in.
func (s *Server) Ping(ctx context.Context) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func (s *Server) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.admin)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres as %s: %w", s.admin.User, err)
	}
	return conn, nil
}

// lockApp connects and takes a session advisory lock on the app's name, so
// that two Conductor processes never provision or drop the same app at once
// (catalog updates would otherwise race). Closing the connection releases it.
func (s *Server) lockApp(ctx context.Context, name string) (*pgx.Conn, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, err
	}
	h := fnv.New64a()
	h.Write([]byte("conductor app database\x00" + name))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(h.Sum64())); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("lock postgres database %s: %w", name, err)
	}
	return conn, nil
}

// Create makes sure the app's role and database exist: the role can log in
// with db.Password (set only when the role is created), owns the database,
// and no one else but superusers may connect to it.
func (s *Server) Create(ctx context.Context, db *conductor.AppDatabase) error {
	if err := checkNames(db); err != nil {
		return err
	}
	conn, err := s.lockApp(ctx, db.Name)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	role, dbname := pgx.Identifier{db.User}.Sanitize(), pgx.Identifier{db.Name}.Sanitize()

	roleExists, err := roleState(ctx, conn, db.User)
	if err != nil {
		return err
	}
	owner, dbExists, err := databaseOwner(ctx, conn, db.Name)
	if err != nil {
		return err
	}
	// Everything is checked before anything is made: a name taken by
	// something else leaves no trace.
	if dbExists && owner != db.User {
		return conductor.Errorf(conductor.ECONFLICT,
			"PostgreSQL database %q exists and belongs to %q, not to the app's role: Conductor will not take it over", db.Name, owner)
	}
	if !roleExists {
		if err := createRole(ctx, conn, db); err != nil {
			return err
		}
		slog.Info("created postgres role", "app", db.Name, "role", db.User)
	}
	if !dbExists {
		// An administrator that is not a superuser (the master user of a
		// managed PostgreSQL: CREATEDB CREATEROLE) may only give a database
		// to a role it is a member of.
		if err := joinRole(ctx, conn, db.User); err != nil {
			return err
		}
		// CREATE DATABASE cannot run in a transaction. template0 so that the
		// encoding can be UTF8 whatever the cluster's default.
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+dbname+" OWNER "+role+" TEMPLATE template0 ENCODING 'UTF8'"); err != nil {
			return fmt.Errorf("create postgres database %s: %w", db.Name, err)
		}
		slog.Info("created postgres database", "app", db.Name, "database", db.Name)
	}
	// Default privileges let PUBLIC connect to any database (and make temp
	// tables there): only the owner may.
	if _, err := conn.Exec(ctx, "REVOKE ALL ON DATABASE "+dbname+" FROM PUBLIC"); err != nil {
		return fmt.Errorf("revoke public access to postgres database %s: %w", db.Name, err)
	}
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+dbname+" IS "+quoteLiteral(conductor.DatabaseMarker)); err != nil {
		return fmt.Errorf("comment on postgres database %s: %w", db.Name, err)
	}
	return s.checkLogin(ctx, db)
}

// createRole creates the role with its marker in one transaction, so a role
// without the marker was never Conductor's. The password goes to the server
// as a SCRAM verifier: the server (and its statement log, if a statement
// fails) never sees it in clear.
func createRole(ctx context.Context, conn *pgx.Conn, db *conductor.AppDatabase) error {
	verifier, err := scramVerifier(db.Password)
	if err != nil {
		return err
	}
	role := pgx.Identifier{db.User}.Sanitize()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD "+quoteLiteral(verifier)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "COMMENT ON ROLE "+role+" IS "+quoteLiteral(conductor.DatabaseMarker))
		return err
	})
	if isCode(err, codeDuplicateObject, codeUniqueViolation) { // another provisioner won: is it ours?
		_, err = roleState(ctx, conn, db.User)
		return err
	}
	if err != nil {
		return fmt.Errorf("create postgres role %s: %w", db.User, err)
	}
	return nil
}

// joinRole makes the administrator a member of the app's role unless it
// is a superuser or a member already: CREATE DATABASE … OWNER, ALTER and
// DROP DATABASE need that of a CREATEDB CREATEROLE administrator.
func joinRole(ctx context.Context, conn *pgx.Conn, role string) error {
	var member bool
	if err := conn.QueryRow(ctx, `SELECT rolsuper OR pg_has_role(current_user, $1, 'MEMBER') FROM pg_roles WHERE rolname = current_user`, role).Scan(&member); err != nil {
		return fmt.Errorf("check the postgres administrator's membership in %s: %w", role, err)
	}
	if member {
		return nil
	}
	if _, err := conn.Exec(ctx, "GRANT "+pgx.Identifier{role}.Sanitize()+" TO CURRENT_USER"); err != nil {
		return fmt.Errorf("make the postgres administrator a member of %s (it needs CREATEROLE): %w", role, err)
	}
	return nil
}

// roleState reports whether the role exists, and refuses a role Conductor
// did not create.
func roleState(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var comment *string
	err := conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = $1`, name).Scan(&comment)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("look up postgres role %s: %w", name, err)
	}
	if comment == nil || *comment != conductor.DatabaseMarker {
		return true, conductor.Errorf(conductor.ECONFLICT,
			"PostgreSQL role %q exists and was not created by Conductor: Conductor will not take it over", name)
	}
	return true, nil
}

// databaseOwner returns the owner of a database, if it exists.
func databaseOwner(ctx context.Context, conn *pgx.Conn, name string) (owner string, found bool, err error) {
	err = conn.QueryRow(ctx, `SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1`, name).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	} else if err != nil {
		return "", false, fmt.Errorf("look up postgres database %s: %w", name, err)
	}
	return owner, true, nil
}

// checkLogin logs in as the app, the way the app will: a role left with
// another password (by an earlier install whose state was lost) is reported
// here, at provisioning, instead of as a failing migration. The password is
// never changed to make it fit.
func (s *Server) checkLogin(ctx context.Context, db *conductor.AppDatabase) error {
	cfg := s.admin.Copy()
	cfg.User, cfg.Password, cfg.Database = db.User, db.Password, db.Name
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if isCode(err, codeInvalidPassword) {
			return conductor.Errorf(conductor.ECONFLICT,
				"PostgreSQL role %q exists with another password than the one Conductor stored for the app; Conductor does not change it", db.User)
		}
		return fmt.Errorf("log in to postgres database %s as its app: %w", db.Name, err)
	}
	return conn.Close(ctx)
}

// Drop removes the app's database (closing its connections first) and its
// role. A role or database Conductor did not create is refused, and then
// nothing is dropped.
func (s *Server) Drop(ctx context.Context, db *conductor.AppDatabase) error {
	if err := checkNames(db); err != nil {
		return err
	}
	conn, err := s.lockApp(ctx, db.Name)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	roleExists, err := roleState(ctx, conn, db.User)
	if err != nil {
		return err
	}
	owner, dbExists, err := databaseOwner(ctx, conn, db.Name)
	if err != nil {
		return err
	}
	if dbExists && owner != db.User {
		return conductor.Errorf(conductor.ECONFLICT,
			"PostgreSQL database %q belongs to %q, not to the app's role: Conductor will not drop it", db.Name, owner)
	}
	if dbExists {
		// FORCE (PostgreSQL 13+) ends the sessions still connected.
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db.Name}.Sanitize()+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("drop postgres database %s: %w", db.Name, err)
		}
		slog.Info("dropped postgres database", "app", db.Name, "database", db.Name)
	}
	if roleExists {
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{db.User}.Sanitize()); err != nil {
			return fmt.Errorf("drop postgres role %s: %w", db.User, err)
		}
		slog.Info("dropped postgres role", "app", db.Name, "role", db.User)
	}
	return nil
}

// checkNames refuses names PostgreSQL would silently truncate (63 bytes)
// or cannot hold. Anything else is safe: names are always quoted.
func checkNames(db *conductor.AppDatabase) error {
	for _, n := range []string{db.Name, db.User} {
		if n == "" || len(n) > 63 || strings.ContainsRune(n, 0) {
			return conductor.Errorf(conductor.EINVALID, "%q cannot name a PostgreSQL database or role: use 1-63 bytes", n)
		}
	}
	return nil
}

// quoteLiteral quotes a string for SQL, since DDL takes no parameters.
// With a backslash it uses the E” form, so the result is the same whatever
// standard_conforming_strings says.
func quoteLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

// SQLSTATE codes Conductor acts on.
const (
	codeDuplicateObject = "42710"
	codeInvalidPassword = "28P01"
	codeUniqueViolation = "23505" // what a concurrent CREATE ROLE may get instead
)

func isCode(err error, codes ...string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && slices.Contains(codes, pgErr.Code)
}

// scramVerifier computes what PostgreSQL stores for a SCRAM-SHA-256
// password (RFC 5802, 7677), as libpq's PQencryptPasswordConn does.
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}
