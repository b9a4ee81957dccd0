package gitserver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/shlex"

	"github.com/hasadna/conductor"
)

// FuzzCommandLine sends any command line through what an SSH session goes
// through (shlex, then cobra dispatch, the access check and the command)
// against a fresh store with one app, as an admin or as a developer
// granted it. Nothing may panic, every failure is an "error: " line with
// exit 1, and no input may cause an internal error. Run in CI with -fuzz
// for a few seconds (make test).
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		"help", "whoami --json", "apps", "apps:create new-app", "apps:info hello --json", "apps:destroy hello",
		"apps:destroy hello --confirm hello", "config hello", "config:get hello A", "config:set hello 'A=b c' --no-restart",
		"config:unset hello A", "logs hello -n 3", "ps hello", "ps:scale hello web=2 worker=0", "ps:restart hello",
		"run hello -- python manage.py check", "run hello", "domains hello", "domains:add hello www.example.org",
		"domains:remove hello x.org", "keys", "keys:add bob --admin", "keys:remove SHA256:x", "keys:remove bob",
		"access hello", "access:grant hello dev", "access:revoke hello dev", "audit -n 5 --app hello", "deploys hello",
		"'unbalanced", "config:set hello \"A=\\\"q\\\"\"", "--help", "ps:scale --help", "nosuch", "apps:info ../x",
		"config:set hello =x", "ps:scale hello web=-1", "logs hello -n 99999999999999999999", "deploys:cancel hello",
		"logs hello --build", "releases hello --json", "rollback hello v1", "deploy hello main",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, line string, asAdmin bool) {
		args, err := shlex.Split(line)
		if err != nil {
			return // dispatch refuses these before any command: "cannot parse command"
		}
		ts := newTestServer(t, ":memory:")
		ctx := context.Background()
		app := &conductor.App{Name: "hello", DBKind: conductor.DBSQLite, Ports: [2]int{41000, 41001}, SecretKey: "k"}
		if err := ts.db.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
		dev, _, err := ts.db.AddUserKey(ctx, "dev", false, testFP('d'), "ssh-ed25519 DDDD")
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.db.GrantAccess(ctx, app.ID, dev.ID); err != nil {
			t.Fatal(err)
		}
		u := dev
		if asAdmin {
			u = ts.admin
		}
		// logs -f follows until the client leaves.
		ctx, cancel := context.WithTimeout(WithFingerprint(WithUser(ctx, u), testFP('a')), 200*time.Millisecond)
		defer cancel()
		sess := &fakeSession{in: strings.NewReader("")}
		code := ts.runCommand(ctx, sess, args)
		errOut := sess.errOut.String()
		switch {
		case code != 0 && code != 1:
			t.Fatalf("%q: exit %d", line, code)
		case code == 1 && !strings.HasPrefix(errOut, "error: "):
			t.Fatalf("%q: failed without an error line: %q", line, errOut)
		case strings.Contains(errOut, "internal error"):
			t.Fatalf("%q: input caused an internal error", line)
		}
	})
}
