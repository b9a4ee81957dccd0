package sqlite

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

func openTest(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conductor.db")
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got nil error, want code %q", what, code)
	}
	if got := conductor.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v has code %q, want %q", what, err, got, code)
	}
}

func mustApp(t *testing.T, db *DB, name string, a, b int) *conductor.App {
	t.Helper()
	app := &conductor.App{Name: name, DBKind: conductor.DBSQLite, Ports: [2]int{a, b}, SecretKey: "sk-" + name}
	if err := db.CreateApp(context.Background(), app); err != nil {
		t.Fatalf("CreateApp(%s): %v", name, err)
	}
	return app
}

func migrationNames(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded migrations: %v", err)
	}
	for i := range names {
		names[i] = filepath.Base(names[i])
	}
	sort.Strings(names)
	return names
}

func appliedMigrations(t *testing.T, db *DB) []string {
	t.Helper()
	rows, err := db.db.Query(`SELECT name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func TestOpenMigratesIdempotently(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	want := migrationNames(t)
	if got := appliedMigrations(t, db); !reflect.DeepEqual(got, want) {
		t.Fatalf("schema_migrations after first Open = %v, want %v", got, want)
	}
	for _, table := range []string{"users", "keys", "apps", "config_vars", "access", "deploys", "releases"} {
		var n int
		if err := db.db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: count=%d err=%v, want it created", table, n, err)
		}
	}
	var mode string
	if err := db.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q (%v), want wal", mode, err)
	}
	var fk int
	if err := db.db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign_keys = %d (%v), want 1", fk, err)
	}
	if _, err := db.CreateUser(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	db.Close()

	// Reopening runs no migration twice and keeps the data.
	for i := 0; i < 2; i++ {
		db2, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		if got := appliedMigrations(t, db2); !reflect.DeepEqual(got, want) {
			t.Fatalf("schema_migrations after reopen %d = %v, want %v (one row per migration)", i, got, want)
		}
		if u, err := db2.FindUser(ctx, "alice"); err != nil || u.Name != "alice" {
			t.Fatalf("FindUser after reopen: %v, %v", u, err)
		}
		db2.Close()
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	before := time.Now().Add(-time.Minute)

	alice, err := db.CreateUser(ctx, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	if alice.ID == 0 || alice.Name != "alice" || !alice.Admin {
		t.Fatalf("CreateUser = %+v", alice)
	}
	if _, err := db.CreateUser(ctx, "bob", false); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		code string
	}{
		{"alice", conductor.ECONFLICT},
		{"", conductor.EINVALID},
		{"Alice", conductor.EINVALID},
		{"a b", conductor.EINVALID},
		{"../x", conductor.EINVALID},
		{"x'; DROP TABLE users; --", conductor.EINVALID},
	}
	for _, tt := range tests {
		_, err := db.CreateUser(ctx, tt.name, false)
		wantCode(t, fmt.Sprintf("CreateUser(%q)", tt.name), err, tt.code)
	}

	got, err := db.FindUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != alice.ID || got.Name != "alice" || !got.Admin {
		t.Errorf("FindUser(alice) = %+v, want %+v", got, alice)
	}
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("FindUser(alice).CreatedAt = %v, want about now", got.CreatedAt)
	}
	_, err = db.FindUser(ctx, "carol")
	wantCode(t, "FindUser(carol)", err, conductor.ENOTFOUND)

	users, err := db.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, fmt.Sprintf("%s:%v", u.Name, u.Admin))
	}
	if want := []string{"alice:true", "bob:false"}; !reflect.DeepEqual(names, want) {
		t.Errorf("ListUsers = %v, want %v", names, want)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	alice, _ := db.CreateUser(ctx, "alice", false)
	bob, _ := db.CreateUser(ctx, "bob", true)

	k1, err := db.AddKey(ctx, alice.ID, "SHA256:aaa", "ssh-ed25519 AAAA alice@host")
	if err != nil {
		t.Fatal(err)
	}
	if k1.ID == 0 || k1.UserID != alice.ID || k1.Fingerprint != "SHA256:aaa" {
		t.Errorf("AddKey = %+v", k1)
	}
	if _, err := db.AddKey(ctx, bob.ID, "SHA256:bbb", "ssh-ed25519 BBBB bob@host"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddKey(ctx, alice.ID, "SHA256:aaa2", "ssh-ed25519 CCCC alice@laptop"); err != nil {
		t.Fatal(err)
	}

	// A key belongs to one user only.
	_, err = db.AddKey(ctx, bob.ID, "SHA256:aaa", "ssh-ed25519 AAAA stolen")
	wantCode(t, "AddKey(duplicate fingerprint)", err, conductor.ECONFLICT)
	// A key for a user that does not exist is refused (foreign key).
	if _, err := db.AddKey(ctx, 9999, "SHA256:zzz", "ssh-ed25519 ZZZZ"); err == nil {
		t.Error("AddKey for an unknown user id succeeded")
	}

	tests := []struct {
		fp   string
		want string // user name, "" for ENOTFOUND
	}{
		{"SHA256:aaa", "alice"},
		{"SHA256:aaa2", "alice"},
		{"SHA256:bbb", "bob"},
		{"SHA256:ccc", ""},
		{"SHA256:zzz", ""},
		{"", ""},
		{"sha256:aaa", ""},
	}
	for _, tt := range tests {
		u, err := db.FindUserByFingerprint(ctx, tt.fp)
		if tt.want == "" {
			wantCode(t, fmt.Sprintf("FindUserByFingerprint(%q)", tt.fp), err, conductor.ENOTFOUND)
			continue
		}
		if err != nil || u.Name != tt.want {
			t.Errorf("FindUserByFingerprint(%q) = %v, %v; want user %s", tt.fp, u, err, tt.want)
		}
	}
	if u, _ := db.FindUserByFingerprint(ctx, "SHA256:bbb"); u == nil || !u.Admin {
		t.Errorf("FindUserByFingerprint(bob's key) = %+v, want admin bob", u)
	}

	keys, err := db.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var fps []string
	for _, k := range keys {
		fps = append(fps, k.Fingerprint)
		if k.CreatedAt.IsZero() {
			t.Errorf("key %s has no CreatedAt", k.Fingerprint)
		}
	}
	if want := []string{"SHA256:aaa", "SHA256:bbb", "SHA256:aaa2"}; !reflect.DeepEqual(fps, want) {
		t.Errorf("ListKeys fingerprints = %v, want %v", fps, want)
	}
	if keys[1].PublicKey != "ssh-ed25519 BBBB bob@host" || keys[1].UserID != bob.ID {
		t.Errorf("ListKeys[1] = %+v", keys[1])
	}
}

func TestApps(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)

	hello := mustApp(t, db, "hello", 9000, 9001)
	if hello.ID == 0 {
		t.Fatal("CreateApp did not set the ID")
	}
	blog := mustApp(t, db, "blog", 9002, 9003)
	if blog.ID == hello.ID {
		t.Fatal("two apps got the same ID")
	}

	dups := []struct {
		name string
		app  conductor.App
	}{
		{"same name", conductor.App{Name: "hello", DBKind: "sqlite", Ports: [2]int{9100, 9101}}},
		{"port_a taken", conductor.App{Name: "other", DBKind: "sqlite", Ports: [2]int{9000, 9101}}},
		{"port_b taken", conductor.App{Name: "other", DBKind: "sqlite", Ports: [2]int{9100, 9003}}},
	}
	for _, tt := range dups {
		a := tt.app
		wantCode(t, "CreateApp("+tt.name+")", db.CreateApp(ctx, &a), conductor.ECONFLICT)
	}

	got, err := db.FindApp(ctx, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != hello.ID || got.Name != "hello" || got.DBKind != "sqlite" || got.Ports != [2]int{9000, 9001} || got.SecretKey != "sk-hello" {
		t.Errorf("FindApp(hello) = %+v", got)
	}
	if got.CreatedAt.IsZero() {
		t.Error("FindApp(hello).CreatedAt is zero")
	}
	_, err = db.FindApp(ctx, "nope")
	wantCode(t, "FindApp(nope)", err, conductor.ENOTFOUND)

	apps, err := db.ListApps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 2 || apps[0].Name != "blog" || apps[1].Name != "hello" || apps[0].Ports != [2]int{9002, 9003} {
		t.Errorf("ListApps = %+v %+v, want blog then hello", apps[0], apps[1])
	}

	ports, err := db.UsedPorts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sort.Ints(ports)
	if want := []int{9000, 9001, 9002, 9003}; !reflect.DeepEqual(ports, want) {
		t.Errorf("UsedPorts = %v, want %v", ports, want)
	}
}

func TestUsedPortsEmpty(t *testing.T) {
	db, _ := openTest(t)
	ports, err := db.UsedPorts(context.Background())
	if err != nil || len(ports) != 0 {
		t.Fatalf("UsedPorts on an empty db = %v, %v", ports, err)
	}
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "hello", 9000, 9001)
	other := mustApp(t, db, "other", 9002, 9003)

	tests := []struct {
		name, key, value string
	}{
		{"plain", "PLAIN", "value"},
		{"empty", "EMPTY", ""},
		{"double quotes", "DQ", `say "hi"`},
		{"single quotes", "SQ", `it's`},
		{"sql", "SQL", `x'); DROP TABLE config_vars; --`},
		{"newlines", "NL", "line1\nline2\r\nline3\n"},
		{"unicode", "UNI", "שלום 🌍 café"},
		{"backslashes", "BS", `C:\path\n\"`},
		{"shell", "SH", "$(rm -rf /) `id` ${HOME} %s %d"},
		{"long", "LONG", strings.Repeat("0123456789", 10000)},
	}
	vars := map[string]string{}
	for _, tt := range tests {
		vars[tt.key] = tt.value
	}
	if err := db.SetConfig(ctx, app.ID, vars); err != nil {
		t.Fatal(err)
	}
	if err := db.SetConfig(ctx, other.ID, map[string]string{"PLAIN": "other-app"}); err != nil {
		t.Fatal(err)
	}
	got, err := db.Config(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		if v, ok := got[tt.key]; !ok || v != tt.value {
			t.Errorf("%s: Config[%s] = %.60q (present %v), want %.60q", tt.name, tt.key, v, ok, tt.value)
		}
	}
	if len(got) != len(tests) {
		t.Errorf("Config has %d vars, want %d", len(got), len(tests))
	}

	// Overwrite one var, add one, leave the rest.
	if err := db.SetConfig(ctx, app.ID, map[string]string{"PLAIN": "new", "ADDED": "yes"}); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Config(ctx, app.ID)
	if got["PLAIN"] != "new" || got["ADDED"] != "yes" || got["DQ"] != `say "hi"` || len(got) != len(tests)+1 {
		t.Errorf("after overwrite: PLAIN=%q ADDED=%q DQ=%q len=%d", got["PLAIN"], got["ADDED"], got["DQ"], len(got))
	}

	// Unset: present keys go, unknown keys are ignored, other apps keep theirs.
	if err := db.UnsetConfig(ctx, app.ID, []string{"PLAIN", "NL", "NEVER_SET"}); err != nil {
		t.Fatal(err)
	}
	got, _ = db.Config(ctx, app.ID)
	if _, ok := got["PLAIN"]; ok {
		t.Error("PLAIN still set after UnsetConfig")
	}
	if _, ok := got["NL"]; ok {
		t.Error("NL still set after UnsetConfig")
	}
	if got["UNI"] != "שלום 🌍 café" || len(got) != len(tests)-1 {
		t.Errorf("after unset: UNI=%q len=%d, want %d vars", got["UNI"], len(got), len(tests)-1)
	}
	if o, _ := db.Config(ctx, other.ID); !reflect.DeepEqual(o, map[string]string{"PLAIN": "other-app"}) {
		t.Errorf("other app's config = %v", o)
	}
	if c, err := db.Config(ctx, 12345); err != nil || len(c) != 0 {
		t.Errorf("Config(unknown app) = %v, %v; want empty", c, err)
	}
}

func TestSetConfigIsAtomic(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	// An unknown app id fails the foreign key, so nothing of the batch stays.
	err := db.SetConfig(ctx, 777, map[string]string{"A": "1", "B": "2"})
	if err == nil {
		t.Fatal("SetConfig for an unknown app succeeded")
	}
	var n int
	if err := db.db.QueryRow(`SELECT count(*) FROM config_vars`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("config_vars has %d rows (%v) after a failed SetConfig", n, err)
	}
}

func TestAccess(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "hello", 9000, 9001)
	other := mustApp(t, db, "other", 9002, 9003)
	alice, _ := db.CreateUser(ctx, "alice", false)
	bob, _ := db.CreateUser(ctx, "bob", false)
	root, _ := db.CreateUser(ctx, "boss", true)

	if err := db.GrantAccess(ctx, app.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.GrantAccess(ctx, app.ID, alice.ID); err != nil {
		t.Fatalf("granting twice: %v", err)
	}
	tests := []struct {
		app   *conductor.App
		user  *conductor.User
		has   bool
		level conductor.AccessLevel
	}{
		{app, alice, true, conductor.ReadWrite},
		{other, alice, false, conductor.NoAccess},
		{app, bob, false, conductor.NoAccess},
		{app, root, false, conductor.Admin},
		{nil, bob, false, conductor.ReadOnly},
		{app, nil, false, conductor.NoAccess},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%v/%v", tt.app, tt.user)
		if tt.app != nil && tt.user != nil {
			has, err := db.HasAccess(ctx, tt.app.ID, tt.user.ID)
			if err != nil || has != tt.has {
				t.Errorf("HasAccess(%s, %s) = %v, %v; want %v", tt.app.Name, tt.user.Name, has, err, tt.has)
			}
		}
		level, err := conductor.AccessFor(ctx, db, tt.user, tt.app)
		if err != nil || level != tt.level {
			t.Errorf("AccessFor(%s) = %v, %v; want %v", name, level, err, tt.level)
		}
	}
}

func TestDeploys(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "hello", 9000, 9001)
	other := mustApp(t, db, "other", 9002, 9003)

	ids := []string{"20240101T000000-aaaaaaaa", "20240101T000001-bbbbbbbb", "20240101T000002-cccccccc"}
	for i, id := range ids {
		d := &conductor.Deploy{ID: id, AppID: app.ID, Rev: fmt.Sprintf("rev%d", i), Ref: "refs/heads/main", Pusher: "alice"}
		if err := db.CreateDeploy(ctx, d); err != nil {
			t.Fatal(err)
		}
		if d.Status != conductor.DeployQueued {
			t.Errorf("CreateDeploy left status %q, want %q", d.Status, conductor.DeployQueued)
		}
	}
	if err := db.CreateDeploy(ctx, &conductor.Deploy{ID: "x-other", AppID: other.ID, Rev: "r", Ref: "refs/heads/main", Pusher: "bob", Status: conductor.DeployRunning}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDeploy(ctx, &conductor.Deploy{ID: ids[0], AppID: app.ID, Rev: "r", Ref: "refs/heads/main", Pusher: "x"}); err == nil {
		t.Error("CreateDeploy with a duplicate id succeeded")
	}

	before := time.Now().Add(-time.Minute)
	if err := db.FinishDeploy(ctx, ids[0], conductor.DeployRunning, ""); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishDeploy(ctx, ids[1], conductor.DeployFailed, "pip install failed: \"x\"\nline 2"); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishDeploy(ctx, ids[2], conductor.DeploySucceeded, ""); err != nil {
		t.Fatal(err)
	}

	list, err := db.ListDeploys(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	var gotIDs []string
	for _, d := range list {
		gotIDs = append(gotIDs, d.ID)
	}
	if want := []string{ids[2], ids[1], ids[0]}; !reflect.DeepEqual(gotIDs, want) {
		t.Fatalf("ListDeploys ids = %v, want newest first %v", gotIDs, want)
	}
	tests := []struct {
		d        *conductor.Deploy
		status   string
		errMsg   string
		finished bool
		rev      string
	}{
		{list[2], conductor.DeployRunning, "", false, "rev0"},
		{list[1], conductor.DeployFailed, "pip install failed: \"x\"\nline 2", true, "rev1"},
		{list[0], conductor.DeploySucceeded, "", true, "rev2"},
	}
	for _, tt := range tests {
		d := tt.d
		if d.Status != tt.status || d.Error != tt.errMsg || d.Rev != tt.rev || d.Ref != "refs/heads/main" || d.Pusher != "alice" || d.AppID != app.ID {
			t.Errorf("deploy %s = %+v; want status %q error %q rev %q", d.ID, d, tt.status, tt.errMsg, tt.rev)
		}
		if d.CreatedAt.IsZero() {
			t.Errorf("deploy %s has zero CreatedAt", d.ID)
		}
		if tt.finished {
			if d.FinishedAt.Before(before) || d.FinishedAt.After(time.Now().Add(time.Minute)) {
				t.Errorf("deploy %s FinishedAt = %v, want about now", d.ID, d.FinishedAt)
			}
		} else if !d.FinishedAt.IsZero() {
			t.Errorf("running deploy %s has FinishedAt %v", d.ID, d.FinishedAt)
		}
	}

	// The other app's deploy is not listed for this app, and vice versa.
	ol, err := db.ListDeploys(ctx, other.ID)
	if err != nil || len(ol) != 1 || ol[0].ID != "x-other" || ol[0].Status != conductor.DeployRunning {
		t.Errorf("ListDeploys(other) = %v, %v", ol, err)
	}
}

func TestReleases(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "hello", 9000, 9001)
	other := mustApp(t, db, "other", 9002, 9003)

	_, err := db.CurrentRelease(ctx, app.ID)
	wantCode(t, "CurrentRelease before any release", err, conductor.ENOTFOUND)
	if rs, err := db.ListReleases(ctx, app.ID); err != nil || len(rs) != 0 {
		t.Fatalf("ListReleases before any release = %v, %v", rs, err)
	}

	if err := db.AddRelease(ctx, &conductor.Release{ID: "o1", AppID: other.ID, Rev: "orev", Port: 9002, Dir: "/srv/o1"}); err != nil {
		t.Fatal(err)
	}
	steps := []conductor.Release{
		{ID: "r1", AppID: app.ID, Rev: "rev1", Port: 9000, Dir: "/srv/r1"},
		{ID: "r2", AppID: app.ID, Rev: "rev2", Port: 9001, Dir: "/srv/r2"},
		{ID: "r3", AppID: app.ID, Rev: "rev3", Port: 9000, Dir: "/srv/r 3"},
	}
	for i := range steps {
		r := steps[i]
		if err := db.AddRelease(ctx, &r); err != nil {
			t.Fatal(err)
		}
		if !r.Current {
			t.Errorf("AddRelease(%s) did not mark the struct current", r.ID)
		}
		cur, err := db.CurrentRelease(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.ID != r.ID || cur.Rev != r.Rev || cur.Port != r.Port || cur.Dir != r.Dir || !cur.Current || cur.AppID != app.ID {
			t.Errorf("after AddRelease(%s): CurrentRelease = %+v", r.ID, cur)
		}
		list, err := db.ListReleases(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != i+1 {
			t.Fatalf("ListReleases has %d releases, want %d", len(list), i+1)
		}
		current := 0
		for _, l := range list {
			if l.Current {
				current++
			}
		}
		if current != 1 {
			t.Errorf("after AddRelease(%s): %d current releases, want exactly 1", r.ID, current)
		}
	}

	list, _ := db.ListReleases(ctx, app.ID)
	var got []string
	for _, r := range list {
		got = append(got, fmt.Sprintf("%s:%v", r.ID, r.Current))
	}
	if want := []string{"r3:true", "r2:false", "r1:false"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ListReleases = %v, want newest first %v", got, want)
	}

	// A failing AddRelease (duplicate id) rolls back: r3 stays current.
	if err := db.AddRelease(ctx, &conductor.Release{ID: "r2", AppID: app.ID, Rev: "dup", Port: 9001, Dir: "/x"}); err == nil {
		t.Fatal("AddRelease with a duplicate id succeeded")
	}
	if cur, err := db.CurrentRelease(ctx, app.ID); err != nil || cur.ID != "r3" {
		t.Errorf("after a failed AddRelease, CurrentRelease = %+v, %v; want r3", cur, err)
	}

	// Releasing one app leaves the other's current release alone.
	if cur, err := db.CurrentRelease(ctx, other.ID); err != nil || cur.ID != "o1" || !cur.Current {
		t.Errorf("CurrentRelease(other) = %+v, %v; want o1", cur, err)
	}
}

// TestTwoHandlesWrite is the server and a hook process: two *DB on one file
// writing at the same time must both succeed (WAL + busy timeout).
func TestTwoHandlesWrite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "conductor.db")

	// Both open a fresh file at once: migrations must not collide.
	var dbs [2]*DB
	var openErrs [2]error
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			dbs[i], openErrs[i] = Open(ctx, path)
		}(i)
	}
	wg.Wait()
	for i, err := range openErrs {
		if err != nil {
			t.Fatalf("concurrent Open %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	if got := appliedMigrations(t, dbs[0]); len(got) != len(migrationNames(t)) {
		t.Fatalf("schema_migrations = %v after concurrent opens", got)
	}

	app := mustApp(t, dbs[0], "hello", 9000, 9001)
	const perHandle = 40
	errs := make(chan error, 2*perHandle*2)
	for h := range dbs {
		wg.Add(1)
		go func(h int) {
			defer wg.Done()
			db := dbs[h]
			for i := 0; i < perHandle; i++ {
				if _, err := db.CreateUser(ctx, fmt.Sprintf("u%d-%d", h, i), false); err != nil {
					errs <- fmt.Errorf("handle %d CreateUser %d: %w", h, i, err)
				}
				// A multi-statement transaction from each side too.
				if err := db.SetConfig(ctx, app.ID, map[string]string{fmt.Sprintf("K%d_%d", h, i): "v", "SHARED": fmt.Sprint(h)}); err != nil {
					errs <- fmt.Errorf("handle %d SetConfig %d: %w", h, i, err)
				}
			}
		}(h)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Each handle sees the other's writes.
	for h, db := range dbs {
		users, err := db.ListUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 2*perHandle {
			t.Errorf("handle %d sees %d users, want %d", h, len(users), 2*perHandle)
		}
		cfg, err := db.Config(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg) != 2*perHandle+1 {
			t.Errorf("handle %d sees %d config vars, want %d", h, len(cfg), 2*perHandle+1)
		}
	}
	if _, err := dbs[1].FindApp(ctx, "hello"); err != nil {
		t.Errorf("second handle cannot see the app created by the first: %v", err)
	}
}

// TestConcurrentOpenFreshFile is several processes starting on a new data
// directory at once: each Open must wait for the others' switch to WAL and
// migrations instead of failing with "database is locked".
func TestConcurrentOpenFreshFile(t *testing.T) {
	ctx := context.Background()
	for round := 0; round < 40; round++ {
		path := filepath.Join(t.TempDir(), "conductor.db")
		const openers = 8
		var wg sync.WaitGroup
		errs := make([]error, openers)
		dbs := make([]*DB, openers)
		for i := range openers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dbs[i], errs[i] = Open(ctx, path)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: Open %d of %d: %v", round, i, openers, err)
			}
		}
		if got := appliedMigrations(t, dbs[openers-1]); len(got) != len(migrationNames(t)) {
			t.Fatalf("round %d: schema_migrations = %v", round, got)
		}
		for _, db := range dbs {
			db.Close()
		}
	}
}
