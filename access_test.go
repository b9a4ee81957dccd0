package conductor_test

import (
	"context"
	"sort"
	"testing"

	"github.com/hasadna/conductor"
)

// grantStore is a Store that knows only grants: Authorize needs no more.
// Any other method would panic on the nil embedded interface.
type grantStore struct {
	conductor.Store
	grants map[[2]int64]bool // {appID, userID}
}

func (s grantStore) HasAccess(_ context.Context, appID, userID int64) (bool, error) {
	return s.grants[[2]int64{appID, userID}], nil
}

// The rules of the design's command table, written out again here (not
// derived from conductor.Permissions) so the table is checked against them.
var (
	anyoneOps      = []string{"help", "whoami", "apps", "dashboard", "dashboard:sessions", "dashboard:logout"}
	adminServerOps = []string{"apps:create", "keys", "keys:add", "keys:remove", "audit", "hosts"}
	adminAppOps    = []string{"apps:destroy", "access", "access:grant", "access:revoke", "ps:limit", "apps:set", "redis:create", "redis:destroy", "config:file:get", "db:create", "db:destroy",
		"db:restore", "db:backups:schedule"}
	developerOps = []string{
		conductor.OpFetch, conductor.OpPush, "apps:info", "apps:get", "deploys", "releases", "deploy", "rollback", "deploys:cancel",
		"config", "config:get", "config:set", "config:unset", "logs",
		"config:file", "config:files", "config:file:remove",
		"ps", "ps:scale", "ps:restart", "run", "domains", "domains:add", "domains:remove", "domains:cert",
		"redis", "db", "db:list",
		"db:backup", "db:backups",
		"maintenance", "maintenance:on", "maintenance:off",
		"cron", "cron:run",
	}
	changingOps = []string{
		conductor.OpPush, "apps:create", "apps:destroy", "apps:set", "config:set", "config:unset", "deploy", "rollback", "deploys:cancel",
		"ps:scale", "ps:restart", "ps:limit", "run", "domains:add", "domains:remove", "domains:cert",
		"keys:add", "keys:remove", "access:grant", "access:revoke",
		"redis:create", "redis:destroy",
		"config:file", "config:file:remove",
		"db:create", "db:destroy",
		"db:backup", "db:restore", "db:backups:schedule",
		"maintenance:on", "maintenance:off",
		"cron:run",
		"notify:add", "notify:remove", "notify:test",
		"dashboard", "dashboard:logout",
	}
)

// notify's commands are anyone's here; which subscription a user may touch
// is decided by the command (gitserver/cmd_notify.go, e2e TestNotifications).
var notifyOps = []string{"notify", "notify:add", "notify:remove", "notify:test"}

func TestAuthorize(t *testing.T) {
	ctx := context.Background()
	admin := &conductor.User{ID: 1, Name: "root-ish", Admin: true}
	granted := &conductor.User{ID: 2, Name: "dev"}
	other := &conductor.User{ID: 3, Name: "other-dev"}
	mine := &conductor.App{ID: 10, Name: "mine"}
	store := grantStore{grants: map[[2]int64]bool{{mine.ID, granted.ID}: true}}

	type who struct {
		name string
		user *conductor.User
	}
	users := []who{{"admin", admin}, {"granted developer", granted}, {"developer without grant", other}, {"stranger", nil}}
	// want: the error code per user, "" for allowed.
	classes := []struct {
		ops    []string
		perApp bool
		want   map[string]string
	}{
		{append(anyoneOps, notifyOps...), false, map[string]string{
			"admin": "", "granted developer": "", "developer without grant": "", "stranger": conductor.EUNAUTHORIZED}},
		{adminServerOps, false, map[string]string{
			"admin": "", "granted developer": conductor.EUNAUTHORIZED, "developer without grant": conductor.EUNAUTHORIZED, "stranger": conductor.EUNAUTHORIZED}},
		{adminAppOps, true, map[string]string{
			"admin": "", "granted developer": conductor.EUNAUTHORIZED, "developer without grant": conductor.ENOTFOUND, "stranger": conductor.ENOTFOUND}},
		{developerOps, true, map[string]string{
			"admin": "", "granted developer": "", "developer without grant": conductor.ENOTFOUND, "stranger": conductor.ENOTFOUND}},
	}
	seen := map[string]bool{}
	for _, c := range classes {
		for _, op := range c.ops {
			seen[op] = true
			var app *conductor.App
			if c.perApp {
				app = mine
			}
			for _, u := range users {
				t.Run(op+"/"+u.name, func(t *testing.T) {
					err := conductor.Authorize(ctx, store, u.user, op, app)
					if got := conductor.ErrorCode(err); got != c.want[u.name] {
						t.Fatalf("Authorize(%s, %s) = %v (code %q), want code %q", u.name, op, err, got, c.want[u.name])
					}
				})
			}
		}
	}
	// Every operation in the table is one of the classes above, so adding a
	// command means deciding here who may run it.
	var unclassified []string
	for op := range conductor.Permissions {
		if !seen[op] {
			unclassified = append(unclassified, op)
		}
	}
	sort.Strings(unclassified)
	if len(unclassified) > 0 {
		t.Errorf("operations without a rule in this test: %v", unclassified)
	}
	for op := range seen {
		if _, ok := conductor.Permissions[op]; !ok {
			t.Errorf("operation %s has a rule here but is not in conductor.Permissions (so it is refused)", op)
		}
	}
}

func TestAuthorizeFailsClosed(t *testing.T) {
	ctx := context.Background()
	admin := &conductor.User{ID: 1, Name: "a", Admin: true}
	app := &conductor.App{ID: 1, Name: "x"}
	store := grantStore{}
	if err := conductor.Authorize(ctx, store, admin, "no-such-command", nil); conductor.ErrorCode(err) != conductor.EUNAUTHORIZED {
		t.Errorf("unknown operation for an admin: %v, want unauthorized", err)
	}
	// An app-scoped operation checked without its app (or the reverse) is a
	// programming error, never a pass.
	if err := conductor.Authorize(ctx, store, admin, "config:set", nil); err == nil || conductor.ErrorCode(err) != conductor.EINTERNAL {
		t.Errorf("config:set without an app: %v, want an internal error", err)
	}
	if err := conductor.Authorize(ctx, store, admin, "keys", app); err == nil || conductor.ErrorCode(err) != conductor.EINTERNAL {
		t.Errorf("keys with an app: %v, want an internal error", err)
	}
}

func TestAuthorizeHidesOtherApps(t *testing.T) {
	// A developer without a grant cannot tell an existing app from a
	// missing one: the message is the not-found one, word for word.
	dev := &conductor.User{ID: 2, Name: "dev"}
	err := conductor.Authorize(context.Background(), grantStore{}, dev, "config", &conductor.App{ID: 5, Name: "secret"})
	if got, want := conductor.ErrorMessage(err), conductor.AppNotFound("secret").Message; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestPermissionsChanges(t *testing.T) {
	want := map[string]bool{}
	for _, op := range changingOps {
		want[op] = true
	}
	for op, p := range conductor.Permissions {
		if p.Changes != want[op] {
			t.Errorf("%s: Changes = %v, want %v (state-changing operations are audited)", op, p.Changes, want[op])
		}
	}
}
