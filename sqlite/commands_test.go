package sqlite

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

func fp(c byte) string { return "SHA256:" + strings.Repeat(string(c), 43) }

func TestAddUserKey(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	u, k, err := db.AddUserKey(ctx, "alice", false, fp('a'), "ssh-ed25519 AAAA alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.Admin || u.Name != "alice" || k.UserID != u.ID || k.Fingerprint != fp('a') {
		t.Fatalf("got user %+v key %+v", u, k)
	}
	// A second key for the same user; --admin promotes.
	u2, _, err := db.AddUserKey(ctx, "alice", true, fp('b'), "ssh-ed25519 BBBB")
	if err != nil {
		t.Fatal(err)
	}
	if u2.ID != u.ID || !u2.Admin {
		t.Fatalf("second key: user %+v, want id %d promoted", u2, u.ID)
	}
	if found, _ := db.FindUser(ctx, "alice"); !found.Admin {
		t.Errorf("promotion not stored")
	}
	// A duplicate key is refused and leaves no new user behind.
	_, _, err = db.AddUserKey(ctx, "bob", false, fp('a'), "ssh-ed25519 AAAA")
	wantCode(t, "duplicate key", err, conductor.ECONFLICT)
	if _, err := db.FindUser(ctx, "bob"); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Errorf("bob exists after his key was refused: %v", err)
	}
	_, _, err = db.AddUserKey(ctx, "Bad Name", false, fp('c'), "x")
	wantCode(t, "bad name", err, conductor.EINVALID)
}

func TestRemoveKeysKeepsAnAdmin(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	if _, _, err := db.AddUserKey(ctx, "admin", true, fp('a'), "k"); err != nil {
		t.Fatal(err)
	}
	dev, _, err := db.AddUserKey(ctx, "dev", false, fp('d'), "k")
	if err != nil {
		t.Fatal(err)
	}
	app := mustApp(t, db, "hello", 20000, 20001)
	if err := db.GrantAccess(ctx, app.ID, dev.ID); err != nil {
		t.Fatal(err)
	}
	_, err = db.RemoveKey(ctx, fp('a'))
	wantCode(t, "remove the last admin key", err, conductor.ECONFLICT)
	wantCode(t, "remove the last admin", db.RemoveUser(ctx, "admin"), conductor.ECONFLICT)
	if _, err := db.FindUserByFingerprint(ctx, fp('a')); err != nil {
		t.Errorf("refused removal still removed the key: %v", err)
	}
	// A second admin makes it possible.
	if _, _, err := db.AddUserKey(ctx, "admin2", true, fp('b'), "k"); err != nil {
		t.Fatal(err)
	}
	if k, err := db.RemoveKey(ctx, fp('a')); err != nil || k.Fingerprint != fp('a') {
		t.Fatalf("RemoveKey = %+v, %v", k, err)
	}
	_, err = db.RemoveKey(ctx, fp('a'))
	wantCode(t, "remove a removed key", err, conductor.ENOTFOUND)
	// Removing a user takes their keys and grants.
	if err := db.RemoveUser(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindUserByFingerprint(ctx, fp('d')); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Errorf("dev's key outlived dev: %v", err)
	}
	if ok, _ := db.HasAccess(ctx, app.ID, dev.ID); ok {
		t.Errorf("dev's grant outlived dev")
	}
	wantCode(t, "remove unknown user", db.RemoveUser(ctx, "nobody-here"), conductor.ENOTFOUND)
}

func TestAccessList(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "hello", 20000, 20001)
	a, _ := db.CreateUser(ctx, "ann", false)
	b, _ := db.CreateUser(ctx, "ben", false)
	for _, u := range []*conductor.User{b, a} {
		if err := db.GrantAccess(ctx, app.ID, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	users, err := db.ListAccess(ctx, app.ID)
	if err != nil || len(users) != 2 || users[0].Name != "ann" || users[1].Name != "ben" {
		t.Fatalf("ListAccess = %v, %v", users, err)
	}
	if err := db.RevokeAccess(ctx, app.ID, a.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "revoke twice", db.RevokeAccess(ctx, app.ID, a.ID), conductor.ENOTFOUND)
	if ok, _ := db.HasAccess(ctx, app.ID, a.ID); ok {
		t.Errorf("revoked grant still there")
	}
}

func TestDomainsScaleAndDeleteApp(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	one := mustApp(t, db, "one", 20000, 20001)
	two := mustApp(t, db, "two", 20002, 20003)
	for _, h := range []string{"www.one.org", "one.org"} {
		if err := db.AddDomain(ctx, one.ID, h); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, "a host of another app", db.AddDomain(ctx, two.ID, "one.org"), conductor.ECONFLICT)
	if got, _ := db.Domains(ctx, one.ID); !reflect.DeepEqual(got, []string{"one.org", "www.one.org"}) {
		t.Errorf("Domains = %v", got)
	}
	wantCode(t, "remove a host of another app", db.RemoveDomain(ctx, two.ID, "one.org"), conductor.ENOTFOUND)
	if err := db.RemoveDomain(ctx, one.ID, "one.org"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetProcessScale(ctx, one.ID, map[string]int{"web": 2, "worker": 0}); err != nil {
		t.Fatal(err)
	}
	if err := db.SetProcessScale(ctx, one.ID, map[string]int{"web": 3}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.ProcessScale(ctx, one.ID); !reflect.DeepEqual(got, map[string]int{"web": 3, "worker": 0}) {
		t.Errorf("ProcessScale = %v", got)
	}
	if err := db.AddAudit(ctx, &conductor.AuditEntry{User: "u", Fingerprint: fp('a'), App: "one", Op: "apps:create", Outcome: conductor.OutcomeOK}); err != nil {
		t.Fatal(err)
	}
	// ps:limit: set, changed, one type cleared; the other app's untouched.
	web := conductor.ProcessLimits{MemoryBytes: 512 << 20, CPUMillis: 1000, Pids: 256}
	for _, step := range []struct {
		app  int64
		typ  string
		l    conductor.ProcessLimits
		want map[string]conductor.ProcessLimits
	}{
		{one.ID, "web", conductor.ProcessLimits{MemoryBytes: 1 << 30}, map[string]conductor.ProcessLimits{"web": {MemoryBytes: 1 << 30}}},
		{one.ID, "web", web, map[string]conductor.ProcessLimits{"web": web}},
		{one.ID, "worker", conductor.ProcessLimits{Pids: 64}, map[string]conductor.ProcessLimits{"web": web, "worker": {Pids: 64}}},
		{two.ID, "web", conductor.ProcessLimits{Pids: 9}, map[string]conductor.ProcessLimits{"web": web, "worker": {Pids: 64}}},
		{one.ID, "worker", conductor.ProcessLimits{}, map[string]conductor.ProcessLimits{"web": web}},
	} {
		if err := db.SetProcessLimits(ctx, step.app, step.typ, step.l); err != nil {
			t.Fatal(err)
		}
		if got, err := db.ProcessLimits(ctx, one.ID); err != nil || !reflect.DeepEqual(got, step.want) {
			t.Errorf("after %s=%v: ProcessLimits = %v, %v; want %v", step.typ, step.l, got, err, step.want)
		}
	}
	if err := db.DeleteApp(ctx, one.ID); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete twice", db.DeleteApp(ctx, one.ID), conductor.ENOTFOUND)
	if got, _ := db.Domains(ctx, one.ID); len(got) != 0 {
		t.Errorf("domains outlived the app: %v", got)
	}
	if got, _ := db.ProcessScale(ctx, one.ID); len(got) != 0 {
		t.Errorf("scale outlived the app: %v", got)
	}
	if got, _ := db.ProcessLimits(ctx, one.ID); len(got) != 0 {
		t.Errorf("limits outlived the app: %v", got)
	}
	// www.one.org is free again.
	if err := db.AddDomain(ctx, two.ID, "www.one.org"); err != nil {
		t.Errorf("domain of a deleted app: %v", err)
	}
	if entries, _ := db.ListAudit(ctx, "one", 10); len(entries) != 1 {
		t.Errorf("audit trail lost with the app: %v", entries)
	}
}

func TestAudit(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	at := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	in := []*conductor.AuditEntry{
		{At: at, Took: 1500 * time.Millisecond, User: "ann", Fingerprint: fp('a'), App: "one", Op: "config:set", Detail: "A B", Outcome: conductor.OutcomeOK, DeployID: "d1"},
		{At: at.Add(time.Second), User: "ben", Fingerprint: fp('b'), Op: "keys:add", Detail: "carl", Outcome: conductor.OutcomeDenied, Error: "keys:add needs an admin"},
		{At: at.Add(2 * time.Second), User: "ann", Fingerprint: fp('a'), App: "two", Op: "git-receive-pack", Outcome: conductor.OutcomeFailed},
	}
	for _, e := range in {
		if err := db.AddAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.ListAudit(ctx, "", 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListAudit all = %d entries, %v", len(all), err)
	}
	if all[0].Op != "git-receive-pack" || all[2].Op != "config:set" {
		t.Errorf("not newest first: %s … %s", all[0].Op, all[2].Op)
	}
	got := all[2]
	want := *in[0]
	want.ID = got.ID
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", *got, want)
	}
	if one, _ := db.ListAudit(ctx, "one", 10); len(one) != 1 || one[0].App != "one" {
		t.Errorf("ListAudit(one) = %v", one)
	}
	if lim, _ := db.ListAudit(ctx, "", 2); len(lim) != 2 {
		t.Errorf("limit 2 gave %d", len(lim))
	}
}
