package mysql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/dbtest"
)

var shared = dbtest.NewShared(dbtest.StartMariaDB)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := shared.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// setup returns a Server on the shared test MariaDB and an administrator
// connection pool to it.
func setup(t *testing.T) (*Server, *sql.DB) {
	t.Helper()
	srv := shared.Get(t)
	s, err := New(srv.AdminDSN)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := s.open(s.admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	reset(t, admin)
	return s, admin
}

// reset drops what earlier tests created on the shared server (its
// databases and users other than MariaDB's own and the administrator), so
// each test starts from an empty server, also under go test -count=N.
func reset(t *testing.T, admin *sql.DB) {
	t.Helper()
	drop := func(list, format string) {
		t.Helper()
		rows, err := admin.Query(list)
		if err != nil {
			t.Fatalf("reset: %v", err)
		}
		var stmts []string
		for rows.Next() {
			var a, b string
			if err := rows.Scan(&a, &b); err != nil {
				t.Fatalf("reset: %v", err)
			}
			stmts = append(stmts, fmt.Sprintf(format, quoteIdent(a), quoteString(a), quoteString(b)))
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("reset: %v", err)
		}
		rows.Close()
		for _, stmt := range stmts {
			if _, err := admin.Exec(stmt); err != nil {
				t.Fatalf("reset: %s: %v", stmt, err)
			}
		}
	}
	drop(`SELECT SCHEMA_NAME, '' FROM information_schema.SCHEMATA
		WHERE SCHEMA_NAME NOT IN ('information_schema', 'mysql', 'performance_schema', 'sys')`,
		"DROP DATABASE %[1]s")
	drop(`SELECT User, Host FROM mysql.user
		WHERE User NOT IN ('', 'root', 'admin', 'mysql', 'mariadb.sys', 'PUBLIC')`,
		"DROP USER %[2]s@%[3]s")
}

func newDB(name string) *conductor.AppDatabase {
	return &conductor.AppDatabase{Kind: conductor.DBMySQL, Name: name, User: name, Password: rand.Text()}
}

// login connects as the app would, with creds, to database.
func login(t *testing.T, s *Server, creds *conductor.AppDatabase, database string) (*sql.DB, error) {
	t.Helper()
	cfg := s.admin.Clone()
	cfg.User, cfg.Passwd, cfg.DBName = creds.User, creds.Password, database
	db, err := s.open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func mustLogin(t *testing.T, s *Server, creds *conductor.AppDatabase) *sql.DB {
	t.Helper()
	db, err := login(t, s, creds, creds.Name)
	if err != nil {
		t.Fatalf("log in as %s: %v", creds.User, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func userHash(t *testing.T, admin *sql.DB, user string) string {
	t.Helper()
	var h string
	if err := admin.QueryRow(`SELECT authentication_string FROM mysql.user WHERE User = ? AND Host = 'localhost'`, user).Scan(&h); err != nil {
		t.Fatalf("password of %s: %v", user, err)
	}
	return h
}

func count(t *testing.T, admin *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := admin.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func userExistsT(t *testing.T, admin *sql.DB, user string) bool {
	return count(t, admin, `SELECT COUNT(*) FROM mysql.user WHERE User = ?`, user) > 0
}

func databaseExists(t *testing.T, admin *sql.DB, name string) bool {
	return count(t, admin, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, name) > 0
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := conductor.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v has code %q, want %q", what, err, got, code)
	}
}

func TestCreate(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	db := newDB("my-app")
	if err := s.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	app := mustLogin(t, s, db)
	if _, err := app.Exec("CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)"); err != nil {
		t.Fatalf("the app cannot create a table in its database: %v", err)
	}
	var charset string
	if err := admin.QueryRow(`SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'my-app'`).Scan(&charset); err != nil || charset != "utf8mb4" {
		t.Errorf("charset = %q, %v", charset, err)
	}
	// Rights on its database only: nothing global.
	var grants []string
	rows, err := app.Query("SHOW GRANTS")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var g string
		rows.Scan(&g)
		grants = append(grants, g)
	}
	rows.Close()
	if len(grants) != 2 || !strings.HasPrefix(grants[0], "GRANT USAGE ON *.* TO `my-app`@`localhost`") ||
		grants[1] != "GRANT ALL PRIVILEGES ON `my-app`.* TO `my-app`@`localhost`" {
		t.Errorf("grants of my-app = %q", grants)
	}
	stored := userHash(t, admin, "my-app")
	if stored != nativePasswordHash(db.Password) {
		t.Errorf("stored hash %q, want the hash of the app's password", stored)
	}

	// A redeploy or a retried job: nothing changes, nothing fails.
	if err := s.Create(ctx, db); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if userHash(t, admin, "my-app") != stored {
		t.Error("a second Create changed the user's password")
	}
	if _, err := app.Exec("INSERT INTO notes VALUES (1, 'kept')"); err != nil {
		t.Errorf("the app's table after a second Create: %v", err)
	}

	// Other credentials for an existing user: refused, password unchanged.
	other := newDB("my-app")
	err = s.Create(ctx, other)
	wantCode(t, "Create with another password", err, conductor.ECONFLICT)
	if strings.Contains(err.Error(), other.Password) || strings.Contains(err.Error(), db.Password) {
		t.Errorf("error shows a password: %v", err)
	}
	if userHash(t, admin, "my-app") != stored {
		t.Error("Create with another password changed the user's password")
	}
	mustLogin(t, s, db)
}

// TestCreateAfterHalfRun: a database that exists from a provision stopped
// before it made the user (or granted it) is finished by the next one.
func TestCreateAfterHalfRun(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	db := newDB("half-run")
	if err := s.Create(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("DROP USER 'half-run'@'localhost'"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, db); err != nil {
		t.Fatalf("Create with the database but no user: %v", err)
	}
	mustLogin(t, s, db)
	if _, err := admin.Exec("REVOKE ALL PRIVILEGES ON `half-run`.* FROM 'half-run'@'localhost'"); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, db); err != nil {
		t.Fatalf("Create with the grant missing: %v", err)
	}
	mustLogin(t, s, db)
}

// TestCreateRefusesForeign: a database or user of the app's name that
// Conductor did not create is never taken over or dropped.
func TestCreateRefusesForeign(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	for _, q := range []string{"CREATE DATABASE `shop`", "CREATE USER 'legacy'@'localhost' IDENTIFIED BY 'legacy-pw'"} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, "Create over a foreign database", s.Create(ctx, newDB("shop")), conductor.ECONFLICT)
	wantCode(t, "Drop of a foreign database", s.Drop(ctx, newDB("shop")), conductor.ECONFLICT)
	if !databaseExists(t, admin, "shop") || userExistsT(t, admin, "shop") {
		t.Error("Create or Drop touched a foreign database")
	}
	before := userHash(t, admin, "legacy")
	wantCode(t, "Create over a foreign user", s.Create(ctx, newDB("legacy")), conductor.ECONFLICT)
	if err := s.Drop(ctx, newDB("legacy")); err != nil {
		t.Errorf("Drop with no database: %v", err)
	}
	if userHash(t, admin, "legacy") != before || databaseExists(t, admin, "legacy") {
		t.Error("Create or Drop touched a foreign user")
	}
}

// TestIsolation: an app's credentials open its own database and no other,
// including one whose name its own matches as a GRANT wildcard.
func TestIsolation(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	a, b := newDB("iso-a"), newDB("iso-b")
	wild := newDB("w_ld") // `_` matches any character in an unescaped GRANT
	for _, db := range []*conductor.AppDatabase{a, b, wild} {
		if err := s.Create(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.Exec("CREATE DATABASE `wXld`"); err != nil {
		t.Fatal(err)
	}
	mustLogin(t, s, a)
	mustLogin(t, s, b)
	mustLogin(t, s, wild)
	for _, tt := range []struct {
		creds *conductor.AppDatabase
		db    string
	}{{a, "iso-b"}, {b, "iso-a"}, {wild, "wXld"}, {a, "mysql"}} {
		if db, err := login(t, s, tt.creds, tt.db); err == nil {
			db.Close()
			t.Errorf("%s's credentials opened database %s", tt.creds.User, tt.db)
		} else if !strings.Contains(err.Error(), "Access denied") {
			t.Errorf("%s → %s: %v, want access denied", tt.creds.User, tt.db, err)
		}
	}
	// Nor does a's password open b's user.
	if db, err := login(t, s, &conductor.AppDatabase{User: "iso-b", Password: a.Password}, "iso-b"); err == nil {
		db.Close()
		t.Error("a's password logs in as b")
	}
	// Nor can a reach b's tables from its own connection.
	if _, err := mustLogin(t, s, a).Exec("SELECT * FROM `iso-b`.`anything`"); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Errorf("a reading b's tables: %v, want denied", err)
	}
}

func TestDrop(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	gone, kept := newDB("drop-me"), newDB("keep-me")
	for _, db := range []*conductor.AppDatabase{gone, kept} {
		if err := s.Create(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	k := mustLogin(t, s, kept)
	if _, err := k.Exec("CREATE TABLE precious (x INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Exec("INSERT INTO precious VALUES (42)"); err != nil {
		t.Fatal(err)
	}
	if err := s.Drop(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if userExistsT(t, admin, "drop-me") || databaseExists(t, admin, "drop-me") {
		t.Error("Drop left the user or the database")
	}
	if err := s.Drop(ctx, gone); err != nil {
		t.Errorf("second Drop: %v", err)
	}
	var x int
	if err := k.QueryRow("SELECT x FROM precious").Scan(&x); err != nil || x != 42 {
		t.Errorf("another app's data after Drop: %d, %v", x, err)
	}
	again := newDB("drop-me")
	if err := s.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	mustLogin(t, s, again)
}

// TestNames: names are quoted everywhere, so hostile ones are only names.
func TestNames(t *testing.T) {
	ctx := context.Background()
	s, admin := setup(t)
	for _, name := range []string{"we`ird", "it's", `x"; DROP DATABASE mysql; --`, "a%b", "émoji-ü", "a-" + strings.Repeat("b", 62)} {
		db := newDB(name)
		if err := s.Create(ctx, db); err != nil {
			t.Fatalf("Create(%q): %v", name, err)
		}
		mustLogin(t, s, db)
		if !userExistsT(t, admin, name) || !databaseExists(t, admin, name) {
			t.Errorf("Create(%q) did not make a user and database of that exact name", name)
		}
		if err := s.Drop(ctx, db); err != nil {
			t.Fatalf("Drop(%q): %v", name, err)
		}
	}
	if !databaseExists(t, admin, "mysql") {
		t.Fatal("a name was run as SQL")
	}
	for _, name := range []string{"", strings.Repeat("a", 65), `back\slash`, "nul\x00"} {
		wantCode(t, fmt.Sprintf("Create(%q)", name), s.Create(ctx, newDB(name)), conductor.EINVALID)
	}
}

func TestConcurrentCreate(t *testing.T) {
	ctx := context.Background()
	s, _ := setup(t)
	db := newDB("racy")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Create(ctx, db)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("concurrent Create: %v", err)
		}
	}
	mustLogin(t, s, db)
}

func TestQuoting(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{quoteIdent("my-app"), "`my-app`"},
		{quoteIdent("a`b"), "`a``b`"},
		{quoteString("it's"), "'it''s'"},
		{account("my-app"), "'my-app'@'localhost'"},
		{grantDatabase("my-app"), "`my-app`"},
		{grantDatabase("my_app%"), "`my\\_app\\%`"},
		{nativePasswordHash("password"), "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %s, want %s", tt.got, tt.want)
		}
	}
}

func TestEndpoint(t *testing.T) {
	for dsn, want := range map[string][2]string{
		"admin:secret@tcp(db.example:3307)/":          {"db.example", "3307"},
		"admin:secret@unix(/run/mysqld/mysqld.sock)/": {"/run/mysqld/mysqld.sock", ""},
	} {
		s, err := New(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if h, p := s.Endpoint(); h != want[0] || p != want[1] {
			t.Errorf("Endpoint(%s) = %s, %s", dsn, h, p)
		}
	}
	if _, err := New("admin:secret@tcp(host:1)/?badparam=%zz"); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("New(bad DSN) error = %v: want an error without the password", err)
	}
}

// TestCreateAsLimitedAdmin: an administrator holding only AdminGrants (no
// global privilege but CREATE USER, nothing on the mysql schema) creates,
// uses again and drops an app's database, and cannot touch the server's
// accounts.
func TestCreateAsLimitedAdmin(t *testing.T) {
	ctx := context.Background()
	_, admin := setup(t)
	stmts, err := AdminSetup("limited-admin", "limited-secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stmts {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg := shared.Get(t)
	s, err := New(fmt.Sprintf("limited-admin:limited-secret@tcp(%s:%d)/", cfg.Host, cfg.Port))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"limited-app", "my-app", "mysqlx", "mysql_db", "my"} {
		db := newDB(name)
		if err := s.Create(ctx, db); err != nil {
			t.Fatalf("Create %s as the limited administrator: %v", name, err)
		}
		if _, err := mustLogin(t, s, db).Exec(`CREATE TABLE t (x int)`); err != nil {
			t.Fatalf("the app cannot use its database %s: %v", name, err)
		}
		if err := s.Create(ctx, db); err != nil { // a redelivered job runs it again
			t.Fatalf("second Create of %s: %v", name, err)
		}
		if err := s.Drop(ctx, db); err != nil {
			t.Fatalf("Drop %s as the limited administrator: %v", name, err)
		}
		if userExistsT(t, admin, name) || databaseExists(t, admin, name) {
			t.Errorf("Drop left the user or the database %s", name)
		}
	}
	// The server's accounts stay out of reach.
	limited, err := s.open(s.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer limited.Close()
	for _, q := range []string{
		"SELECT authentication_string FROM mysql.user",
		"UPDATE mysql.global_priv SET Priv = '{}' WHERE User = 'root'",
		"CREATE TABLE mysql.planted (x int)",
		"CREATE DATABASE mysql",
		"GRANT ALL PRIVILEGES ON *.* TO 'limited-admin'@'localhost'",
		"SHUTDOWN",
	} {
		if _, err := limited.Exec(q); err == nil {
			t.Errorf("the limited administrator may %s", q)
		}
	}
}
