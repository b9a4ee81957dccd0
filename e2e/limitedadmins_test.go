package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasadna/conductor/internal/dbtest"
	"github.com/hasadna/conductor/mysql"
)

// TestLimitedDatabaseAdmins (issue 17, items 5 and 6): Conductor runs with
// the administrators make run creates — a PostgreSQL role with CREATEDB
// CREATEROLE, not a superuser, and a MariaDB user with only
// mysql.AdminGrants — and an app on each is created, deployed, backed up
// and destroyed.
func TestLimitedDatabaseAdmins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg, my := dbtest.Postgres(t), dbtest.MariaDB(t)
	if _, err := pgAdmin(t, pg, "postgres").Exec(ctx, `CREATE ROLE "lim-admin" LOGIN CREATEDB CREATEROLE PASSWORD 'lim-secret'`); err != nil {
		t.Fatal(err)
	}
	stmts, err := mysql.AdminSetup("lim-admin", "lim-secret")
	if err != nil {
		t.Fatal(err)
	}
	myRoot := myAdmin(t, my)
	for _, q := range stmts {
		if _, err := myRoot.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	dsns := map[string]string{
		"postgres": fmt.Sprintf("postgres://lim-admin:lim-secret@127.0.0.1:%d/postgres?sslmode=disable", pg.Port),
		"mysql":    fmt.Sprintf("lim-admin:lim-secret@tcp(127.0.0.1:%d)/", my.Port),
	}
	var flags []string
	for kind, dsn := range dsns {
		path := filepath.Join(t.TempDir(), kind+".dsn")
		if err := os.WriteFile(path, []byte(dsn+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		flags = append(flags, "--"+kind+"-dsn-file", path)
	}
	in := StartInstance(t, flags...)

	apps := map[string]string{"lim-pg": "postgres", "lim-my": "mysql"}
	for app, kind := range apps {
		if r := in.SSH(in.AdminKey, "apps:create "+app+" --db "+kind); r.Code != 0 {
			t.Fatalf("apps:create %s --db %s: %s", app, kind, r)
		}
		req := psycopgRequirement
		if kind == "mysql" {
			req = mysqlclientRequirement
		}
		in.pushOK(in.dbWorkTree(req), app)
		in.greetings(app, "v1")
	}

	archive := filepath.Join(in.Dir, "backup.tar.gz")
	if r := runCmd(t, "", nil, nil, conductorBin, append([]string{"backup", "--data", in.Data, "--out", archive}, flags...)...); r.Code != 0 {
		t.Fatalf("backup: %s", r)
	}
	list, err := exec.Command("tar", "tzf", archive).CombinedOutput()
	if err != nil {
		t.Fatalf("tar: %v %s", err, list)
	}
	for app := range apps {
		if !strings.Contains(string(list), "databases/"+app+".sql") {
			t.Errorf("the backup has no dump of %s:\n%s", app, list)
		}
	}

	for app := range apps {
		if r := in.SSH(in.AdminKey, "apps:destroy "+app+" --confirm "+app); r.Code != 0 {
			t.Errorf("apps:destroy %s: %s", app, r)
		}
	}
	var n int
	if err := pgAdmin(t, pg, "postgres").QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_roles WHERE rolname = 'lim-pg')
		+ (SELECT count(*) FROM pg_database WHERE datname = 'lim-pg')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("lim-pg's role or database left (%d, %v)", n, err)
	}
	if err := myRoot.QueryRow(`SELECT (SELECT count(*) FROM mysql.user WHERE User = 'lim-my')
		+ (SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'lim-my')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("lim-my's user or database left (%d, %v)", n, err)
	}
}
