package dbtest

import (
	"context"
	"database/sql"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// TestServers starts both servers and logs in as their administrators over
// TCP, as Conductor does.
func TestServers(t *testing.T) {
	ctx := context.Background()
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		s := Postgres(t)
		conn, err := pgx.Connect(ctx, s.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var super bool
		if err := conn.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil || !super {
			t.Fatalf("admin is superuser = %v, %v", super, err)
		}
	})
	t.Run("mariadb", func(t *testing.T) {
		t.Parallel()
		s := MariaDB(t)
		cfg, err := mysql.ParseDSN(s.AdminDSN)
		if err != nil {
			t.Fatal(err)
		}
		c, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(c)
		defer db.Close()
		var who string
		if err := db.QueryRowContext(ctx, `SELECT CURRENT_USER()`).Scan(&who); err != nil || who != "admin@localhost" {
			t.Fatalf("CURRENT_USER() = %q, %v", who, err)
		}
	})
}
