package doctor

import (
	"context"
	"time"

	"github.com/hasadna/conductor/mysql"
	"github.com/hasadna/conductor/postgres"
)

// Postgres checks that the administrator DSN logs in to PostgreSQL.
func Postgres(ctx context.Context, dsn string) Result {
	const name = "postgresql"
	srv, err := postgres.New(dsn)
	if err != nil {
		return fail(name, "correct --postgres-dsn(-file): postgres://USER:PASSWORD@HOST:5432/postgres", "%v", err)
	}
	host, port := srv.Endpoint()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := srv.Ping(ctx); err != nil {
		return fail(name, "start PostgreSQL (pg_ctlcluster 15 main start) or correct the DSN's host, port, user and password",
			"%s:%s does not answer: %v", host, port, err)
	}
	return ok(name, "the administrator logs in at %s:%s", host, port)
}

// MariaDB checks that the administrator DSN logs in to MariaDB.
func MariaDB(ctx context.Context, dsn string) Result {
	const name = "mariadb"
	srv, err := mysql.New(dsn)
	if err != nil {
		return fail(name, "correct --mysql-dsn(-file): USER:PASSWORD@tcp(HOST:3306)/", "%v", err)
	}
	host, port := srv.Endpoint()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := srv.Ping(ctx); err != nil {
		return fail(name, "start MariaDB (systemctl start mariadb) or correct the DSN's address, user and password",
			"%s %s does not answer: %v", host, port, err)
	}
	return ok(name, "the administrator logs in at %s %s", host, port)
}
