// Package mysql keeps app databases on a MariaDB (or MySQL) server: one
// database and one user '<app>'@'localhost' per app, with rights on that
// database only. It implements conductor.DatabaseServer with
// go-sql-driver/mysql, connected as an administrator.
package mysql

import (
	"context"
	"crypto/sha1"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-sql-driver/mysql"

	"github.com/hasadna/conductor"
)

// UserHost is the host part of every app user: apps run on the database's
// host and reach it over the loopback or the unix socket.
const UserHost = "localhost"

// Server is a MariaDB server Conductor administers.
type Server struct {
	admin *mysql.Config
}

var _ conductor.DatabaseServer = (*Server)(nil)

// New parses an administrator DSN in go-sql-driver's form, e.g.
// "admin:pw@tcp(127.0.0.1:3306)/" or "admin:pw@unix(/run/mysqld/mysqld.sock)/".
// The user needs CREATE, DROP, CREATE USER and GRANT OPTION on everything
// it hands out. Nothing is dialed yet.
func New(dsn string) (*Server, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql DSN: %s", redactDSNError(err, dsn))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	return &Server{admin: cfg}, nil
}

// redactDSNError returns err's text without the DSN's password, in case
// the driver quotes the DSN.
func redactDSNError(err error, dsn string) string {
	msg := err.Error()
	if creds, _, ok := strings.Cut(dsn, "@"); ok {
		if _, pw, ok := strings.Cut(creds, ":"); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "***")
		}
	}
	return msg
}

// Kind is conductor.DBMySQL.
func (s *Server) Kind() string { return conductor.DBMySQL }

// Endpoint is where the administrator connects, and so do apps: a host and
// port, or a unix socket path.
func (s *Server) Endpoint() (host, port string) {
	if s.admin.Net == "unix" {
		return s.admin.Addr, ""
	}
	host, port, err := net.SplitHostPort(s.admin.Addr)
	if err != nil {
		return s.admin.Addr, "3306"
	}
	return host, port
}

// Ping checks that the administrator can log in.
func (s *Server) Ping(ctx context.Context) error {
	db, err := s.open(s.admin)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("connect to mysql as %s: %w", s.admin.User, err)
	}
	return nil
}

func (s *Server) open(cfg *mysql.Config) (*sql.DB, error) {
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// lockApp returns an administrator connection holding a named lock on the
// app, so that two Conductor processes never provision or drop the same app
// at once. Closing the connection releases it.
func (s *Server) lockApp(ctx context.Context, name string) (*sql.Conn, func(), error) {
	db, err := s.open(s.admin)
	if err != nil {
		return nil, nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("connect to mysql as %s: %w", s.admin.User, err)
	}
	closeAll := func() { conn.Close(); db.Close() }
	var got sql.NullInt64
	// Lock names are at most 64 characters: hash the app's name.
	sum := sha1.Sum([]byte(name))
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 60)", "conductor-db-"+hex.EncodeToString(sum[:])).Scan(&got); err != nil || got.Int64 != 1 {
		closeAll()
		return nil, nil, fmt.Errorf("lock mysql database %s: %v (got %v)", name, err, got)
	}
	return conn, closeAll, nil
}

// Create makes sure the app's database and user exist and that the user
// may use that database, and no other. The database is created first and
// carries Conductor's marker as its comment: it proves the user of the same
// name is the app's too (MariaDB users have no comments). The user's
// password is set when the user is created and never changed.
func (s *Server) Create(ctx context.Context, db *conductor.AppDatabase) error {
	if err := checkNames(db); err != nil {
		return err
	}
	conn, done, err := s.lockApp(ctx, db.Name)
	if err != nil {
		return err
	}
	defer done()

	ours, found, err := databaseState(ctx, conn, db.Name)
	if err != nil {
		return err
	}
	if found && !ours {
		return conductor.Errorf(conductor.ECONFLICT,
			"MariaDB database %q exists and was not created by Conductor: Conductor will not take it over", db.Name)
	}
	userFound, err := userExists(ctx, conn, db.User)
	if err != nil {
		return err
	}
	if !found && userFound {
		// Conductor makes the database before the user and drops the user
		// first: a user without the database is someone else's.
		return conductor.Errorf(conductor.ECONFLICT,
			"MariaDB user '%s'@'%s' exists and was not created by Conductor: Conductor will not take it over", db.User, UserHost)
	}
	if !found {
		if _, err := conn.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quoteIdent(db.Name)+
			" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci COMMENT "+quoteString(conductor.DatabaseMarker)); err != nil {
			return fmt.Errorf("create mysql database %s: %w", db.Name, err)
		}
		slog.Info("created mysql database", "app", db.Name, "database", db.Name)
	}
	if !userFound {
		// The password goes over as its hash, so that neither the server's
		// logs nor its binary log ever hold it in clear.
		if _, err := conn.ExecContext(ctx, "CREATE USER IF NOT EXISTS "+account(db.User)+
			" IDENTIFIED BY PASSWORD "+quoteString(nativePasswordHash(db.Password))); err != nil {
			return fmt.Errorf("create mysql user %s: %w", db.User, err)
		}
		slog.Info("created mysql user", "app", db.Name, "user", db.User)
	}
	if _, err := conn.ExecContext(ctx, "GRANT ALL PRIVILEGES ON "+grantDatabase(db.Name)+".* TO "+account(db.User)); err != nil {
		return fmt.Errorf("grant mysql database %s to its user: %w", db.Name, err)
	}
	return s.checkLogin(ctx, db, !userFound)
}

// databaseState reports whether the database exists and carries
// Conductor's marker.
func databaseState(ctx context.Context, conn *sql.Conn, name string) (ours, found bool, err error) {
	var comment string
	err = conn.QueryRowContext(ctx, `SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, name).Scan(&comment)
	if errors.Is(err, sql.ErrNoRows) {
		return false, false, nil
	} else if err != nil {
		return false, false, fmt.Errorf("look up mysql database %s: %w", name, err)
	}
	return comment == conductor.DatabaseMarker, true, nil
}

func userExists(ctx context.Context, conn *sql.Conn, name string) (bool, error) {
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM mysql.user WHERE User = ? AND Host = ?`, name, UserHost).Scan(&n); err != nil {
		return false, fmt.Errorf("look up mysql user %s: %w", name, err)
	}
	return n > 0, nil
}

// checkLogin logs in as the app, the way the app will: a user left with
// another password (by an earlier install whose state was lost) is reported
// at provisioning, not as a failing migration. The password is never
// changed to make it fit.
func (s *Server) checkLogin(ctx context.Context, db *conductor.AppDatabase, created bool) error {
	cfg := s.admin.Clone()
	cfg.User, cfg.Passwd, cfg.DBName = db.User, db.Password, db.Name
	conn, err := s.open(cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	err = conn.PingContext(ctx)
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) && myErr.Number == errAccessDenied && created {
		return conductor.Errorf(conductor.ECONFLICT,
			"MariaDB refuses the new user '%s'@'%s' from Conductor's connection: does the server resolve 127.0.0.1 to localhost (skip-name-resolve)? A unix socket DSN avoids the question", db.User, UserHost)
	} else if errors.As(err, &myErr) && myErr.Number == errAccessDenied {
		return conductor.Errorf(conductor.ECONFLICT,
			"MariaDB user '%s'@'%s' exists with another password than the one Conductor stored for the app; Conductor does not change it", db.User, UserHost)
	} else if err != nil {
		return fmt.Errorf("log in to mysql database %s as its app: %w", db.Name, err)
	}
	return nil
}

// Drop removes the app's user, then its database. A database Conductor did
// not create is refused, and then nothing is dropped.
func (s *Server) Drop(ctx context.Context, db *conductor.AppDatabase) error {
	if err := checkNames(db); err != nil {
		return err
	}
	conn, done, err := s.lockApp(ctx, db.Name)
	if err != nil {
		return err
	}
	defer done()
	ours, found, err := databaseState(ctx, conn, db.Name)
	if err != nil {
		return err
	}
	if found && !ours {
		return conductor.Errorf(conductor.ECONFLICT,
			"MariaDB database %q was not created by Conductor: Conductor will not drop it", db.Name)
	}
	if !found {
		// Without its database, a user of that name is not the app's
		// (Create refuses it too): leave it.
		return nil
	}
	// The user goes first, so a drop stopped half way leaves the marked
	// database, which proves the next Drop (or Create) right.
	if _, err := conn.ExecContext(ctx, "DROP USER IF EXISTS "+account(db.User)); err != nil {
		return fmt.Errorf("drop mysql user %s: %w", db.User, err)
	}
	if _, err := conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(db.Name)); err != nil {
		return fmt.Errorf("drop mysql database %s: %w", db.Name, err)
	}
	slog.Info("dropped mysql database and user", "app", db.Name, "database", db.Name, "user", db.User)
	return nil
}

// MariaDB error numbers Conductor acts on.
const errAccessDenied = 1045

// checkNames refuses names MariaDB cannot hold: databases have at most 64
// characters and users 80 (MariaDB 10.6+; MySQL allows 32). Backslashes
// and NUL are refused because their meaning in strings depends on sql_mode.
func checkNames(db *conductor.AppDatabase) error {
	if n := db.Name; n == "" || utf8.RuneCountInString(n) > 64 || strings.ContainsAny(n, "\\\x00") || strings.HasSuffix(n, " ") {
		return conductor.Errorf(conductor.EINVALID, "%q cannot name a MariaDB database: use 1-64 characters", n)
	}
	if n := db.User; n == "" || utf8.RuneCountInString(n) > 80 || strings.ContainsAny(n, "\\\x00") {
		return conductor.Errorf(conductor.EINVALID, "%q cannot name a MariaDB user: use 1-80 characters", n)
	}
	return nil
}

// quoteIdent quotes an identifier: DDL takes no parameters.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// quoteString quotes a string literal. Values never hold a backslash
// (checkNames), so doubling quotes is enough in every sql_mode.
func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// account is '<user>'@'localhost'.
func account(user string) string { return quoteString(user) + "@" + quoteString(UserHost) }

// grantDatabase quotes a database name for GRANT, where `_` and `%` are
// wildcards: unescaped, a grant on my_app would also cover myXapp.
func grantDatabase(name string) string {
	r := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`)
	return quoteIdent(r.Replace(name))
}

// nativePasswordHash is the mysql_native_password hash of a password, the
// form IDENTIFIED BY PASSWORD takes: "*" and SHA1(SHA1(password)) in hex.
func nativePasswordHash(password string) string {
	first := sha1.Sum([]byte(password))
	second := sha1.Sum(first[:])
	return "*" + strings.ToUpper(hex.EncodeToString(second[:]))
}
