package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/mysql"
	"github.com/hasadna/conductor/postgres"
	"github.com/hasadna/conductor/provision"
)

// databaseOptions are the administrator DSNs of the database servers apps
// get databases on. A DSN holds a password: a file (mode 0600) keeps it out
// of `ps` and shell history.
type databaseOptions struct {
	postgresDSN, postgresDSNFile string
	mysqlDSN, mysqlDSNFile       string
}

func (o *databaseOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.postgresDSN, "postgres-dsn", "", "PostgreSQL administrator DSN, e.g. postgres://admin:PW@127.0.0.1:5432/postgres (enables --db postgres)")
	f.StringVar(&o.postgresDSNFile, "postgres-dsn-file", "", "file holding the PostgreSQL administrator DSN (instead of --postgres-dsn)")
	f.StringVar(&o.mysqlDSN, "mysql-dsn", "", "MariaDB administrator DSN, e.g. admin:PW@tcp(127.0.0.1:3306)/ (enables --db mysql)")
	f.StringVar(&o.mysqlDSNFile, "mysql-dsn-file", "", "file holding the MariaDB administrator DSN (instead of --mysql-dsn)")
}

// pinger is a database server Conductor can check at startup.
type pinger interface {
	conductor.DatabaseServer
	Ping(ctx context.Context) error
}

// databases sets up the configured servers. A server that does not answer
// now is only logged: SQLite apps need none, and it may come up later.
func (o *databaseOptions) databases(ctx context.Context, store conductor.DatabaseStore, layout provision.Layout, defaultDB string) (*provision.Databases, error) {
	dbs := &provision.Databases{Store: store, Layout: layout, Servers: map[string]conductor.DatabaseServer{}}
	for _, c := range []struct {
		flag, dsn, file string
		open            func(string) (pinger, error)
	}{
		{"postgres-dsn", o.postgresDSN, o.postgresDSNFile, func(dsn string) (pinger, error) { return postgres.New(dsn) }},
		{"mysql-dsn", o.mysqlDSN, o.mysqlDSNFile, func(dsn string) (pinger, error) { return mysql.New(dsn) }},
	} {
		dsn, err := readDSN(c.flag, c.dsn, c.file)
		if err != nil {
			return nil, err
		} else if dsn == "" {
			continue // not configured
		}
		srv, err := c.open(dsn)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", c.flag, err)
		}
		dbs.Servers[srv.Kind()] = srv
		host, port := srv.Endpoint()
		pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := srv.Ping(pingCtx); err != nil {
			slog.Warn("database server does not answer yet", "kind", srv.Kind(), "host", host, "port", port, "err", err)
		} else {
			slog.Info("database server", "kind", srv.Kind(), "host", host, "port", port)
		}
		cancel()
	}
	if err := dbs.CheckKind(defaultDB); err != nil {
		return nil, fmt.Errorf("--default-db: %w", err)
	}
	return dbs, nil
}

func readDSN(flag, dsn, file string) (string, error) {
	if file == "" {
		return dsn, nil
	}
	if dsn != "" {
		return "", fmt.Errorf("give --%s or --%s-file, not both", flag, flag)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--%s-file: %w", flag, err)
	}
	dsn = strings.TrimSpace(string(b))
	if dsn == "" {
		return "", errors.New("--" + flag + "-file: the file is empty")
	}
	return dsn, nil
}
