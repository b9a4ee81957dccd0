package gitserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gliderlabs/ssh"
	"github.com/google/shlex"
	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/sqlite"
)

// fakeSession is the session of a command run in a test.
type fakeSession struct {
	in          io.Reader
	out, errOut bytes.Buffer
}

func (f *fakeSession) Read(p []byte) (int, error)  { return f.in.Read(p) }
func (f *fakeSession) Write(p []byte) (int, error) { return f.out.Write(p) }
func (f *fakeSession) Stderr() io.ReadWriter       { return &f.errOut }
func (f *fakeSession) Pty() (ssh.Pty, <-chan ssh.Window, bool) {
	return ssh.Pty{}, nil, false
}

// fakeHost stands in for circus and nginx.
type fakeHost struct {
	mu           sync.Mutex
	watchers     map[string]int // name → processes
	removedSites []string
}

func (h *fakeHost) Watchers() ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for n := range h.watchers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func (h *fakeHost) Status(context.Context) (map[string]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := map[string]string{}
	for n := range h.watchers {
		st[n] = "active"
	}
	return st, nil
}

func (h *fakeHost) Pids(_ context.Context, name string) ([]int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return make([]int, h.watchers[name]), nil
}

func (h *fakeHost) Scale(_ context.Context, name string, n int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.watchers[name] = n
	return nil
}

func (h *fakeHost) Remove(_ context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.watchers, name)
	return nil
}

func (h *fakeHost) RemoveSite(_ context.Context, app string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removedSites = append(h.removedSites, app)
	return nil
}

// testServer is a Server on a real SQLite store with a fake host, and no
// queue: tests use apps that were never deployed, so nothing is queued.
type testServer struct {
	*Server
	db    *sqlite.DB
	host  *fakeHost
	admin *conductor.User
	dir   string
}

func newTestServer(t testing.TB, dbPath string) *testServer {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	admin, _, err := db.AddUserKey(ctx, "boss", true, testFP('a'), "ssh-ed25519 AAAA boss")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	host := &fakeHost{watchers: map[string]int{}}
	// The fake host answers as a real agent over the test NATS server,
	// under a name of its own so tests do not answer for each other.
	q := testQueue(t)
	name := fmt.Sprintf("t%d", hostSeq.Add(1))
	layout := provision.Layout{Srv: filepath.Join(dir, "srv")}
	agentCtx, stopAgent := context.WithCancel(ctx)
	t.Cleanup(stopAgent)
	if err := (&agent.Host{Name: name, Processes: host, Sites: host, Layout: layout}).Serve(agentCtx, q.NATS()); err != nil {
		t.Fatal(err)
	}
	s := New(Config{
		Addr: "127.0.0.1:2222", ReposDir: filepath.Join(dir, "repos"), Domain: "localhost", HTTPAddr: "127.0.0.1:8080", Host: name,
		DefaultDB: conductor.DBSQLite, Ports: provision.PortRange{From: 41000, To: 41999},
		Layout: layout, Agents: &agent.Client{NC: q.NATS()},
	}, db, q)
	return &testServer{Server: s, db: db, host: host, admin: admin, dir: dir}
}

var hostSeq atomic.Int64

func testFP(c byte) string { return "SHA256:" + strings.Repeat(string(c), 43) }

// run runs one command line as u, with stdin.
func (ts *testServer) run(u *conductor.User, line, stdin string) (int, string, string) {
	args, err := shlex.Split(line)
	if err != nil {
		panic(err)
	}
	fp := testFP('a')
	if !u.Admin {
		fp = testFP('d')
	}
	ctx := WithFingerprint(WithUser(context.Background(), u), fp)
	sess := &fakeSession{in: strings.NewReader(stdin)}
	code := ts.runCommand(ctx, sess, args)
	return code, sess.out.String(), sess.errOut.String()
}

func TestEveryCommandHasAPermission(t *testing.T) {
	ts := newTestServer(t, filepath.Join(t.TempDir(), "c.db"))
	root := ts.commands(&fakeSession{})
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		if _, ok := conductor.Permissions[c.Name()]; !ok {
			t.Errorf("command %s has no entry in conductor.Permissions: nobody could run it", c.Name())
		}
	}
}

// TestCommandBuilderNames: each builder's name is its command's name, so
// a session that names a command gets exactly that one (and its help).
func TestCommandBuilderNames(t *testing.T) {
	ts := newTestServer(t, filepath.Join(t.TempDir(), "c.db"))
	seen := map[string]bool{}
	for _, b := range ts.commandBuilders(&fakeSession{}) {
		if got := b.build().Name(); got != b.name {
			t.Errorf("builder %q makes command %q", b.name, got)
		}
		if seen[b.name] {
			t.Errorf("two builders for %q", b.name)
		}
		seen[b.name] = true
		root := ts.commands(&fakeSession{}, b.name, "--flag")
		if cs := root.Commands(); len(cs) != 1 || cs[0].Name() != b.name {
			t.Errorf("commands(%q) built %d commands", b.name, len(cs))
		}
	}
	for _, args := range [][]string{nil, {"help"}, {"--help"}, {"nosuch"}, {"aps"}} {
		if n := len(ts.commands(&fakeSession{}, args...).Commands()); n != len(seen) {
			t.Errorf("commands(%q) built %d commands, want all %d", args, n, len(seen))
		}
	}
	// Help and suggestions still see every command.
	if code, out, _ := ts.run(ts.admin, "help", ""); code != 0 || !strings.Contains(out, "domains:cert") || !strings.Contains(out, "whoami") {
		t.Errorf("help: exit %d, output %q", code, out)
	}
	if code, _, errOut := ts.run(ts.admin, "aps", ""); code == 0 || !strings.Contains(errOut, "apps") {
		t.Errorf("aps: exit %d, stderr %q, want a suggestion of apps", code, errOut)
	}
	if code, out, _ := ts.run(ts.admin, "config:set --help", ""); code != 0 || !strings.Contains(out, "config:set") {
		t.Errorf("config:set --help: exit %d, output %q", code, out)
	}
}

func TestCommandsAccessAndAudit(t *testing.T) {
	ts := newTestServer(t, filepath.Join(t.TempDir(), "c.db"))
	ctx := context.Background()
	admin := ts.admin
	dev, _, err := ts.db.AddUserKey(ctx, "dev", false, testFP('d'), "ssh-ed25519 DDDD dev")
	if err != nil {
		t.Fatal(err)
	}
	mustRun := func(u *conductor.User, line string) string {
		t.Helper()
		code, out, errOut := ts.run(u, line, "")
		if code != 0 {
			t.Fatalf("%s as %s: exit %d\n%s%s", line, u.Name, code, out, errOut)
		}
		return out
	}
	mustFail := func(u *conductor.User, line, want string) {
		t.Helper()
		code, out, errOut := ts.run(u, line, "")
		if code == 0 || !strings.HasPrefix(errOut, "error: ") || !strings.Contains(errOut, want) {
			t.Fatalf("%s as %s: want a failure mentioning %q, got exit %d\n%s%s", line, u.Name, want, code, out, errOut)
		}
	}

	mustRun(admin, "apps:create uhello")
	if _, err := os.Stat(filepath.Join(ts.dir, "repos", "uhello.git", "HEAD")); err != nil {
		t.Fatalf("apps:create made no repository: %v", err)
	}
	mustFail(dev, "apps:create other", "apps:create needs an admin")
	// Without a grant the app does not exist for dev.
	mustFail(dev, "config:set uhello A=1", `app "uhello" not found`)
	mustFail(dev, "apps:info uhello", `app "uhello" not found`)
	if out := mustRun(dev, "apps --json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("dev lists apps without grants: %s", out)
	}
	mustRun(admin, "access:grant uhello dev")
	mustRun(dev, "config:set uhello 'GREETING=uhello world' TOKEN=s3cret --no-restart")
	if out := mustRun(dev, "config:get uhello GREETING"); out != "uhello world\n" {
		t.Errorf("config:get = %q", out)
	}
	mustFail(dev, "access uhello", "access needs an admin")
	mustFail(dev, "apps:destroy uhello --confirm uhello", "apps:destroy needs an admin")
	mustFail(dev, "keys", "keys needs an admin")
	if out := mustRun(dev, "config:set --help"); !strings.Contains(out, "Usage:") {
		t.Errorf("config:set --help: %s", out)
	}

	// The audit trail: the denied attempt and the change, without the secret.
	entries, err := ts.db.ListAudit(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, e := range entries {
		ops = append(ops, e.Op+":"+e.Outcome+":"+e.User)
		if strings.Contains(e.Detail, "s3cret") || strings.Contains(e.Detail, "uhello world") {
			t.Errorf("config value in the audit trail: %+v", e)
		}
	}
	wantOps := []string{
		"apps:destroy:denied:dev", "access:grant:ok:boss", "config:set:ok:dev", "config:set:denied:dev",
		"apps:create:denied:dev", "apps:create:ok:boss",
	}
	// Newest first; "access:grant" comes between the two config:sets.
	want := []string{wantOps[0], wantOps[2], wantOps[1], wantOps[3], wantOps[4], wantOps[5]}
	if strings.Join(ops, " ") != strings.Join(want, " ") {
		t.Errorf("audit trail:\n got %v\nwant %v", ops, want)
	}
	if e := entries[1]; e.Detail != "GREETING TOKEN" || e.Fingerprint != testFP('d') || e.App != "uhello" {
		t.Errorf("config:set entry = %+v", e)
	}

	// ps and scale need a deploy; ps lists the app's watchers only.
	ts.host.watchers["uhello_web_41000"] = 2
	ts.host.watchers["uhello_worker"] = 1
	ts.host.watchers["uhello2_web_41002"] = 1
	out := mustRun(dev, "ps uhello")
	if !strings.Contains(out, "web          2/1") || !strings.Contains(out, "worker       1/1") || strings.Contains(out, "uhello2") {
		t.Errorf("ps:\n%s", out)
	}
	mustFail(dev, "ps:scale uhello web=2", "not been deployed")

	// Domains are validated and kept.
	mustFail(dev, "domains:add uhello 'bad domain'", "invalid domain")
	mustFail(dev, "domains:add uhello other.localhost", "under localhost")
	mustRun(dev, "domains:add uhello WWW.Example.ORG")
	if out := mustRun(dev, "domains uhello"); !strings.Contains(out, "www.example.org") {
		t.Errorf("domains: %s", out)
	}

	// destroy: confirmation, then everything of the app goes.
	mustFail(admin, "apps:destroy uhello", "--confirm uhello")
	mustFail(admin, "apps:destroy uhello --confirm hellox", "--confirm uhello")
	mustRun(admin, "apps:destroy uhello --confirm uhello")
	if _, ok := ts.host.watchers["uhello_worker"]; ok {
		t.Errorf("watchers of uhello left: %v", ts.host.watchers)
	}
	if _, ok := ts.host.watchers["uhello2_web_41002"]; !ok {
		t.Errorf("destroy of uhello removed another app's watcher")
	}
	if len(ts.host.removedSites) != 1 || ts.host.removedSites[0] != "uhello" {
		t.Errorf("sites removed: %v", ts.host.removedSites)
	}
	if _, err := os.Stat(filepath.Join(ts.dir, "repos", "uhello.git")); !os.IsNotExist(err) {
		t.Errorf("repository left after destroy: %v", err)
	}
	mustFail(admin, "apps:info uhello", "not found")
}

func TestKeysCommands(t *testing.T) {
	ts := newTestServer(t, filepath.Join(t.TempDir(), "c.db"))
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	sshPub, _ := gossh.NewPublicKey(pub)
	line := string(gossh.MarshalAuthorizedKey(sshPub))
	code, out, errOut := ts.run(ts.admin, "keys:add carol", line)
	if code != 0 || !strings.Contains(out, "to carol (developer)") {
		t.Fatalf("keys:add: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := ts.run(ts.admin, "keys:add dave", line); code == 0 || !strings.Contains(errOut, "already registered") {
		t.Errorf("duplicate key: %d %s", code, errOut)
	}
	if code, _, errOut := ts.run(ts.admin, "keys:add dave", "ssh-ed25519 garbage"); code == 0 || !strings.Contains(errOut, "not an OpenSSH public key") {
		t.Errorf("garbage key: %d %s", code, errOut)
	}
	fp := gossh.FingerprintSHA256(sshPub)
	if _, out, _ := ts.run(ts.admin, "keys --json", ""); !strings.Contains(out, fp) || !strings.Contains(out, `"carol"`) {
		t.Errorf("keys --json lacks carol's key: %s", out)
	}
	if code, _, errOut := ts.run(ts.admin, "keys:remove "+testFP('a'), ""); code == 0 || !strings.Contains(errOut, "no admin would be left") {
		t.Errorf("removing the only admin key: %d %s", code, errOut)
	}
	if code, _, errOut := ts.run(ts.admin, "keys:remove "+fp, ""); code != 0 {
		t.Errorf("keys:remove: %s", errOut)
	}
	if code, _, errOut := ts.run(ts.admin, "keys:remove SHA256:short", ""); code == 0 || !strings.Contains(errOut, "invalid key fingerprint") {
		t.Errorf("bad fingerprint: %d %s", code, errOut)
	}
}

func TestParsePublicKey(t *testing.T) {
	marshal := func(k any) string {
		t.Helper()
		p, err := gossh.NewPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(p)))
	}
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	ed := marshal(edPub)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// x/crypto no longer marshals DSA keys (nor does crypto/dsa deserve
	// use): build the wire format by hand, with arbitrary numbers.
	num := func() *big.Int { n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 1024)); return n }
	dsaWire := gossh.Marshal(struct {
		Name       string
		P, Q, G, Y *big.Int
	}{"ssh-dss", num(), num(), num(), num()})
	dsaLine := "ssh-dss " + base64.StdEncoding.EncodeToString(dsaWire) + " old@box"

	tests := []struct {
		name, in, want string // want: "" accepted, else part of the error
	}{
		{"ed25519 with comment", ed + " me@laptop", ""},
		{"rsa 2048", marshal(&rsa2048.PublicKey), ""},
		{"ecdsa p256", marshal(&ec.PublicKey), ""},
		{"rsa 1024", marshal(&rsa1024.PublicKey), "too weak"},
		{"dsa", dsaLine, "DSA keys are too weak"},
		{"empty", "  \n", "no public key"},
		{"garbage", "uhello world", "not an OpenSSH public key"},
		{"truncated", ed[:40], "not an OpenSSH public key"},
		{"two keys", ed + "\n" + marshal(&ec.PublicKey), "one key at a time"},
		{"options", `command="/bin/sh" ` + ed, "options"},
		{"private key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE=\n-----END OPENSSH PRIVATE KEY-----", "not an OpenSSH public key"},
		{"huge", ed + " " + strings.Repeat("x", maxKeyInput), "larger than any public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, line, err := ParsePublicKey([]byte(tt.in))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !strings.HasPrefix(line, strings.Fields(tt.in)[0]+" ") {
					t.Errorf("normalized line %q", line)
				}
				return
			}
			if err == nil || conductor.ErrorCode(err) != conductor.EINVALID || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an EINVALID error mentioning %q", err, tt.want)
			}
		})
	}
	// A comment cannot smuggle terminal escapes into listings.
	_, line, err := ParsePublicKey([]byte(ed + " evil\x1b[2Jname"))
	if err != nil || strings.ContainsRune(line, 0x1b) || !strings.HasSuffix(line, " evil[2Jname") {
		t.Errorf("comment not sanitized: %q, %v", line, err)
	}
}

func TestLogCommandHidesConfigValues(t *testing.T) {
	for raw, want := range map[string]string{
		"config:set app 'TOKEN=s3cret value' B=2 --no-restart": "config:set app TOKEN=… B=… --no-restart",
		"config:get app TOKEN":                                 "config:get app TOKEN",
		"git-receive-pack '/app.git'":                          "git-receive-pack '/app.git'",
		"logs app  -n 5 'x'":                                   "logs app  -n 5 'x'", // nothing to mask: as typed
		"--foo config:set app K=s3cret":                        "--foo config:set app K=…",
		"-- config:set app K=s3cret":                           "-- config:set app K=…",
		`"config:set" app "K=s3cret value"`:                    "config:set app K=…",
		`con'fig:set' app K=s3cret\ value`:                     "config:set app K=…",
		"config:set app K=my s3cret":                           "config:set app K=… …",
		"config:set app 'K=s3cret value":                       "config:set app K=… …", // unparseable
		`config:set app "K=s3cret\`:                            "config:set app K=…",
		"CONFIG:SET app K=s3cret":                              "CONFIG:SET app K=…",
	} {
		if got := logCommand(raw); got != want {
			t.Errorf("logCommand(%q) = %q, want %q", raw, got, want)
		}
	}
}
