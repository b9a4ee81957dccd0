package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// SSHIn runs an SSH command with stdin.
func (in *Instance) SSHIn(key, remote, stdin string) Result {
	in.t.Helper()
	args := append(strings.Fields(in.sshCommand(key))[1:], "git@127.0.0.1", remote)
	return runCmd(in.t, "", nil, strings.NewReader(stdin), "ssh", args...)
}

// must fails the test unless r succeeded, and returns its stdout.
func must(t *testing.T, what string, r Result) string {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("%s: %s", what, r)
	}
	return r.Stdout
}

// refused fails the test unless r failed with an error line mentioning want.
func refused(t *testing.T, what string, r Result, want string) {
	t.Helper()
	if r.Code == 0 || !strings.Contains(r.Stderr, "error: ") || !strings.Contains(r.Stderr, want) {
		t.Errorf("%s: want a refusal mentioning %q, got %s", what, want, r)
	}
}

func fingerprintOf(t *testing.T, pubFile string) string {
	t.Helper()
	raw, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := gossh.ParseAuthorizedKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return gossh.FingerprintSHA256(pub)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type auditRow struct {
	User, Fingerprint, App, Op, Detail, Outcome, Error string
	Deploy                                             string `json:"deploy"`
}

// TestAccessKeysAndGrants covers users, keys, roles and grants over real
// SSH and git: who may do what, and every refusal.
func TestAccessKeysAndGrants(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	admin := in.AdminKey
	adminFP := fingerprintOf(t, admin+".pub")

	if out := must(t, "whoami", in.SSH(admin, "whoami")); out != "admin (admin), key "+adminFP+"\n" {
		t.Errorf("whoami = %q", out)
	}

	// keys:add reads the key from stdin and refuses anything else.
	dev := in.NewKey("dev")
	must(t, "keys:add dev", in.SSHIn(admin, "keys:add dev", readFile(t, dev+".pub")))
	if out := must(t, "whoami as dev", in.SSH(dev, "whoami --json")); !strings.Contains(out, `"role": "developer"`) {
		t.Errorf("dev whoami: %s", out)
	}
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	weakPub, _ := gossh.NewPublicKey(&weak.PublicKey)
	for _, tc := range []struct{ name, stdin, want string }{
		{"duplicate", readFile(t, dev+".pub"), "already registered"},
		{"garbage", "ssh-ed25519 not-base64!! x\n", "not an OpenSSH public key"},
		{"empty", "", "no public key on stdin"},
		{"rsa 1024", string(gossh.MarshalAuthorizedKey(weakPub)), "too weak"},
		{"private key", readFile(t, dev), "not an OpenSSH public key"},
		{"two keys", readFile(t, dev+".pub") + readFile(t, admin+".pub"), "one key at a time"},
		{"options", `command="sh" ` + readFile(t, in.NewKey("opt")+".pub"), "options"},
	} {
		refused(t, "keys:add "+tc.name, in.SSHIn(admin, "keys:add someone", tc.stdin), tc.want)
	}
	refused(t, "keys:add bad user name", in.SSHIn(admin, "keys:add 'Bad Name'", readFile(t, in.NewKey("bad")+".pub")), "invalid user name")
	// None of the refused keys made a user.
	if out := must(t, "keys", in.SSH(admin, "keys")); strings.Contains(out, "someone") || !strings.Contains(out, "dev ") {
		t.Errorf("keys after refusals:\n%s", out)
	}

	// A stranger (a key nobody added) gets nothing, over SSH or git.
	stranger := in.NewKey("stranger")
	if r := in.SSH(stranger, "whoami"); r.Code == 0 || !strings.Contains(r.Stderr, "Permission denied") {
		t.Errorf("stranger was let in: %s", r)
	}

	// A developer without a grant: admin commands are refused, apps are
	// invisible (the same "not found" as for a missing app), pushes refused.
	must(t, "apps:create", in.SSH(admin, "apps:create shop-acl"))
	refused(t, "dev apps:create", in.SSH(dev, "apps:create mine"), "apps:create needs an admin")
	refused(t, "dev keys", in.SSH(dev, "keys"), "keys needs an admin")
	refused(t, "dev keys:add", in.SSHIn(dev, "keys:add evil --admin", readFile(t, stranger+".pub")), "keys:add needs an admin")
	refused(t, "dev config", in.SSH(dev, "config shop-acl"), `app "shop-acl" not found`)
	refused(t, "dev config:set", in.SSH(dev, "config:set shop-acl A=1"), `app "shop-acl" not found`)
	refused(t, "dev access", in.SSH(dev, "access shop-acl"), `app "shop-acl" not found`)
	if out := must(t, "dev apps", in.SSH(dev, "apps --json")); strings.TrimSpace(out) != "[]" {
		t.Errorf("dev sees apps without a grant: %s", out)
	}
	work := in.WorkTree("hello")
	if r := in.Git(dev, work, "push", in.RepoURL("shop-acl"), "main"); r.Code == 0 || !strings.Contains(r.Stderr, `app "shop-acl" not found`) {
		t.Errorf("dev pushed without a grant: %s", r)
	}
	if r := in.Git(dev, work, "push", in.RepoURL("newapp"), "main"); r.Code == 0 || !strings.Contains(r.Stderr, "not found") {
		t.Errorf("dev created an app by pushing: %s", r)
	}

	// Granted: dev may operate shop, but still not administer it.
	refused(t, "grant to unknown user", in.SSH(admin, "access:grant shop-acl nobody"), `user "nobody" not found`)
	refused(t, "grant bad user name", in.SSH(admin, "access:grant shop-acl 'x y'"), "invalid user name")
	refused(t, "grant on unknown app", in.SSH(admin, "access:grant nosuch dev"), `app "nosuch" not found`)
	must(t, "access:grant", in.SSH(admin, "access:grant shop-acl dev"))
	var acl []map[string]string
	if err := json.Unmarshal([]byte(must(t, "access", in.SSH(admin, "access shop-acl --json"))), &acl); err != nil || len(acl) != 2 ||
		acl[0]["user"] != "admin" || acl[1]["user"] != "dev" || acl[1]["via"] != "grant" {
		t.Errorf("access shop-acl = %v (%v)", acl, err)
	}
	must(t, "dev config:set", in.SSH(dev, "config:set shop-acl 'GREETING=hello world' --no-restart"))
	if out := must(t, "dev config:get", in.SSH(dev, "config:get shop-acl GREETING")); out != "hello world\n" {
		t.Errorf("config:get = %q", out)
	}
	refused(t, "dev access:grant", in.SSH(dev, "access:grant shop-acl dev"), "access:grant needs an admin")
	refused(t, "dev apps:destroy", in.SSH(dev, "apps:destroy shop-acl --confirm shop-acl"), "apps:destroy needs an admin")
	if r := in.Git(dev, work, "push", in.RepoURL("shop-acl"), "refs/heads/main:refs/heads/feature"); r.Code != 0 {
		t.Errorf("granted dev could not push a branch: %s", r)
	}
	must(t, "access:revoke", in.SSH(admin, "access:revoke shop-acl dev"))
	refused(t, "revoke twice", in.SSH(admin, "access:revoke shop-acl dev"), "has no grant")
	refused(t, "dev after revoke", in.SSH(dev, "config shop-acl"), `app "shop-acl" not found`)

	// Bad names and arguments everywhere are refused before anything runs.
	for _, tc := range []struct{ cmd, want string }{
		{"apps:create Bad", "invalid app name"},
		{"apps:info '../etc'", "invalid app name"},
		{"config:set shop-acl '1X=y'", "invalid config key"},
		{"config:set shop-acl 'A=nul\x01ok' 'B'", "is not KEY=VALUE"},
		{"config:unset shop-acl NOPE", "no config var NOPE"},
		{"config:get shop-acl 'A B'", "invalid config key"},
		{"domains:add shop-acl 'exa mple.org'", "invalid domain"},
		{"domains:add shop-acl 1.2.3.4", "invalid domain"},
		{"domains:add shop-acl evil.localhost", "under localhost"},
		{"ps:scale shop-acl web=two", "must be a number"},
		{"ps:scale shop-acl 'Web=1'", "invalid process type"},
		{"keys:remove SHA256:tooshort", "invalid key fingerprint"},
		{"keys:remove 'no such'", "invalid user name"},
		{"access:revoke shop-acl 'a;b'", "invalid user name"},
		{"run shop-acl", "usage: run"},
		{"apps:destroy shop-acl", "--confirm shop-acl"},
		{"apps:destroy shop-acl --confirm other", "--confirm shop-acl"},
	} {
		refused(t, tc.cmd, in.SSH(admin, tc.cmd), tc.want)
	}
	// A value over the limit is refused too.
	refused(t, "huge value", in.SSH(admin, "config:set shop-acl BIG="+strings.Repeat("x", 33<<10)), "more than the")

	// Every command has --help, on stdout, with exit 0.
	for _, c := range []string{"keys:add", "config:set", "ps:scale", "run", "apps:destroy", "domains:add", "access:grant"} {
		if out := must(t, c+" --help", in.SSH(dev, c+" --help")); !strings.Contains(out, "Usage:") || !strings.Contains(out, c) {
			t.Errorf("%s --help:\n%s", c, out)
		}
	}
	if out := must(t, "help", in.SSH(dev, "help")); !strings.Contains(out, "ps:scale") || !strings.Contains(out, "access:grant") {
		t.Errorf("help does not list the commands:\n%s", out)
	}

	// apps:destroy with confirmation removes the app and its repository.
	must(t, "apps:destroy", in.SSH(admin, "apps:destroy shop-acl --confirm shop-acl"))
	if out := must(t, "apps", in.SSH(admin, "apps --json")); strings.TrimSpace(out) != "[]" {
		t.Errorf("apps after destroy: %s", out)
	}
	if _, err := os.Stat(filepath.Join(in.Data, "repos", "shop-acl.git")); !os.IsNotExist(err) {
		t.Errorf("repository left after destroy: %v", err)
	}

	// keys:remove: by fingerprint, then by user; never the last admin.
	dev2 := in.NewKey("dev2")
	must(t, "keys:add second key", in.SSHIn(admin, "keys:add dev", readFile(t, dev2+".pub")))
	must(t, "keys:remove by fingerprint", in.SSH(admin, "keys:remove "+fingerprintOf(t, dev+".pub")))
	if r := in.SSH(dev, "whoami"); r.Code == 0 {
		t.Errorf("removed key still logs in: %s", r)
	}
	must(t, "dev's other key", in.SSH(dev2, "whoami"))
	must(t, "keys:remove user", in.SSH(admin, "keys:remove dev"))
	if r := in.SSH(dev2, "whoami"); r.Code == 0 {
		t.Errorf("removed user still logs in: %s", r)
	}
	refused(t, "remove the last admin", in.SSH(admin, "keys:remove admin"), "no admin would be left")
	refused(t, "remove the last admin key", in.SSH(admin, "keys:remove "+adminFP), "no admin would be left")
	must(t, "admin still in", in.SSH(admin, "whoami"))

	// The audit trail has the changes and the refusals, with the key used.
	var trail []auditRow
	if err := json.Unmarshal([]byte(must(t, "audit", in.SSH(admin, "audit -n 200 --json"))), &trail); err != nil {
		t.Fatal(err)
	}
	devFP := fingerprintOf(t, dev+".pub")
	want := map[string]bool{
		"admin " + adminFP + " keys:add ok":          false,
		"dev " + devFP + " apps:create denied":       false,
		"dev " + devFP + " config:set denied":        false,
		"dev " + devFP + " git-receive-pack denied":  false,
		"dev " + devFP + " config:set ok":            false,
		"dev " + devFP + " git-receive-pack ok":      false,
		"admin " + adminFP + " apps:destroy ok":      false,
		"admin " + adminFP + " apps:destroy failed":  false,
		"admin " + adminFP + " keys:remove failed":   false,
		"admin " + adminFP + " access:revoke failed": false,
	}
	for _, e := range trail {
		k := e.User + " " + e.Fingerprint + " " + e.Op + " " + e.Outcome
		if _, ok := want[k]; ok {
			want[k] = true
		}
		if strings.Contains(e.Detail, "hello world") {
			t.Errorf("a config value is in the audit trail: %+v", e)
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("audit trail lacks %q", k)
		}
	}
}

// loadResult counts answers of a request loop.
type loadResult struct{ ok, failed int }

// TestCommandsOnDeployedApp drives the commands that act on a running app:
// apps:info, ps, ps:scale, config changes with zero dropped requests, run
// (plain and on a pty), domains, deploys, ps:restart and apps:destroy.
func TestCommandsOnDeployedApp(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	admin := in.AdminKey
	adminFP := fingerprintOf(t, admin+".pub")
	const app = "cmdapp" // its own unix user: other tests' apps are not touched by destroy
	work := in.WorkTree("hello")
	procfile := "web: gunicorn hello.wsgi --log-file -\n" +
		"worker: python -u -c \"import time; print('worker up'); time.sleep(100000)\"\n"
	if err := os.WriteFile(filepath.Join(work, "Procfile"), []byte(procfile), 0o644); err != nil {
		t.Fatal(err)
	}
	in.Commit(work, "worker")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}

	// A developer granted the app operates it; another one sees nothing.
	dev := in.NewKey("dev")
	must(t, "keys:add dev", in.SSHIn(admin, "keys:add dev", readFile(t, dev+".pub")))
	must(t, "grant", in.SSH(admin, "access:grant "+app+" dev"))
	other := in.NewKey("other")
	must(t, "keys:add other", in.SSHIn(admin, "keys:add other", readFile(t, other+".pub")))
	for _, c := range []string{"ps", "ps:restart", "ps:scale " + app + " web=3", "run " + app + " -- id", "domains", "deploys", "apps:info", "logs"} {
		if !strings.Contains(c, " ") {
			c += " " + app
		}
		refused(t, "other "+c, in.SSH(other, c), `app "`+app+`" not found`)
	}

	// apps:info shows where it lives and what runs.
	info := must(t, "apps:info", in.SSH(dev, "apps:info "+app))
	for _, want := range []string{"ssh://git@" + in.SSHAddr + "/" + app, "http://" + app + ".localhost:", "sqlite", "web=1 (active)", "worker=1 (active)", "Release:     20"} {
		if !strings.Contains(info, want) {
			t.Errorf("apps:info lacks %q:\n%s", want, info)
		}
	}

	// ps and ps:scale: circus runs the difference, and deploys keep it.
	type proc struct {
		Type            string
		Watcher         string
		Wanted, Running int
		State           string
	}
	ps := func() map[string]proc {
		var ps []proc
		if err := json.Unmarshal([]byte(must(t, "ps", in.SSH(dev, "ps "+app+" --json"))), &ps); err != nil {
			t.Fatal(err)
		}
		m := map[string]proc{}
		for _, p := range ps {
			if _, dup := m[p.Type]; dup && p.Type == "web" {
				continue // a retiring web watcher during a switch
			}
			m[p.Type] = p
		}
		return m
	}
	if p := ps(); p["web"].Running != 1 || p["worker"].Running != 1 || p["web"].State != "active" {
		t.Fatalf("ps before scaling: %+v", p)
	}
	refused(t, "scale an unknown type", in.SSH(dev, "ps:scale "+app+" clock=1"), "no process type clock")
	refused(t, "scale web to zero", in.SSH(dev, "ps:scale "+app+" web=0"), "at least one")
	refused(t, "scale too far", in.SSH(dev, "ps:scale "+app+" web=100"), "from 0 to 16")
	must(t, "ps:scale", in.SSH(dev, "ps:scale "+app+" web=2 worker=0"))
	waitFor(t, "web=2 worker=0", func() bool { p := ps(); return p["web"].Running == 2 && p["worker"].Running == 0 })
	// Two gunicorn masters share the web port (--reuse-port): the second
	// one must not die on "Connection in use" after its retries (~5s).
	stable := func(when string) {
		t.Helper()
		time.Sleep(6 * time.Second)
		if p := ps(); p["web"].Running != 2 || p["web"].Wanted != 2 || p["worker"].Running != 0 {
			t.Errorf("%s: ps = %+v", when, p)
		}
		if logs := must(t, "logs", in.SSH(dev, "logs "+app+" --process web -n 500")); strings.Contains(logs, "Connection in use") {
			t.Errorf("%s: a web process could not bind its port:\n%s", when, logs)
		}
	}
	stable("after ps:scale")

	// config:set restarts the app through a deploy's switch: no request fails.
	stop := make(chan struct{})
	done := make(chan loadResult)
	go func() {
		var res loadResult
		client := &http.Client{}
		for {
			select {
			case <-stop:
				done <- res
				return
			default:
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+in.HTTPAddr+"/", nil)
			req.Host = app + ".localhost"
			resp, err := client.Do(req)
			if err == nil && resp.StatusCode == 200 {
				res.ok++
			} else {
				res.failed++
			}
			if err == nil {
				resp.Body.Close()
			}
		}
	}()
	must(t, "config:set --no-restart", in.SSH(dev, "config:set "+app+" 'GREETING=hello world' --no-restart"))
	if _, body, _ := in.Get(app, "/"); strings.Contains(body, "hello world") {
		t.Errorf("--no-restart restarted the app")
	}
	out := must(t, "config:set", in.SSH(dev, "config:set "+app+" OTHER=1"))
	close(stop)
	load := <-done
	if !strings.Contains(out, "Deployed "+app) {
		t.Errorf("config:set output:\n%s", out)
	}
	t.Logf("requests during config:set: %d ok, %d failed", load.ok, load.failed)
	if load.failed != 0 || load.ok < 10 {
		t.Errorf("requests during config:set: %d ok, %d failed", load.ok, load.failed)
	}
	if _, body, _ := in.Get(app, "/"); !strings.Contains(body, "greeting: hello world") {
		t.Errorf("config did not reach the app: %q", body)
	}
	stable("after the config deploy") // the new release's watcher kept the scale
	must(t, "config:unset", in.SSH(dev, "config:unset "+app+" OTHER --no-restart"))

	// run: as the app user, in the current release, with the app's env, the
	// exit status returned, stdin passed, no shell in between.
	appUser, err := user.Lookup(app)
	if err != nil {
		t.Fatal(err)
	}
	current, err := filepath.EvalSymlinks(filepath.Join(in.Data, "srv", "projects", app, "current"))
	if err != nil {
		t.Fatal(err)
	}
	out = must(t, "run", in.SSH(dev, "run "+app+` -- python -c "import os, sys; print(os.getuid(), os.getcwd(), os.environ['GREETING'], sys.stdin.isatty(), os.environ.get('PORT'))"`))
	if want := appUser.Uid + " " + current + " hello world False None\n"; out != want {
		t.Errorf("run printed %q, want %q", out, want)
	}
	if r := in.SSH(dev, "run "+app+` -- python -c "import sys; print('bye'); sys.exit(3)"`); r.Code != 3 || r.Stdout != "bye\n" {
		t.Errorf("run exit status: %s", r)
	}
	if r := in.SSHIn(dev, "run "+app+` -- python -c "import sys; print(sys.stdin.read().upper())"`, "from stdin"); r.Stdout != "FROM STDIN\n" {
		t.Errorf("run stdin: %s", r)
	}
	if r := in.SSH(dev, "run "+app+" -- 'echo hi; id'"); r.Code == 0 || !strings.Contains(r.Stderr, "command not found") {
		t.Errorf("a shell string ran: %s", r)
	}
	if r := in.SSH(dev, "run "+app+" -- python manage.py check"); r.Code != 0 || !strings.Contains(r.Stdout+r.Stderr, "no issues") {
		t.Errorf("manage.py check: %s", r)
	}

	// run on a pty: an interactive createsuperuser.
	runOnPty(t, in, dev, "run "+app+" -- python manage.py createsuperuser --username bob --email bob@example.org",
		[][2]string{{"Password:", "Corr3ct-Horse-Battery\n"}, {"Password (again):", "Corr3ct-Horse-Battery\n"}},
		"Superuser created successfully.")
	out = must(t, "superuser check", in.SSH(dev, "run "+app+` -- python manage.py shell -c "from django.contrib.auth.models import User; print(User.objects.filter(username='bob', is_superuser=True).count())"`))
	if lines := strings.Split(strings.TrimSpace(out), "\n"); lines[len(lines)-1] != "1" { // Django 5.2 prints its auto-imports first
		t.Errorf("superuser not created: %q", out)
	}

	// domains: server_name and ALLOWED_HOSTS follow.
	getHost := func(host string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+in.HTTPAddr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		return resp.StatusCode, string(b[:n])
	}
	if code, _ := getHost("www.example.org"); code != 404 {
		t.Errorf("www.example.org before domains:add: %d", code)
	}
	must(t, "domains:add", in.SSH(dev, "domains:add "+app+" WWW.Example.org"))
	if code, body := getHost("www.example.org"); code != 200 || !strings.Contains(body, "Hello from Conductor") {
		t.Errorf("www.example.org after domains:add: %d %q", code, body)
	}
	if out := must(t, "domains", in.SSH(dev, "domains "+app)); !strings.Contains(out, "www.example.org") {
		t.Errorf("domains: %s", out)
	}
	must(t, "apps:create other-app", in.SSH(admin, "apps:create other-app"))
	refused(t, "a domain another app has", in.SSH(admin, "domains:add other-app www.example.org"), "already in use")
	must(t, "domains:remove", in.SSH(dev, "domains:remove "+app+" www.example.org"))
	if code, _ := getHost("www.example.org"); code != 404 {
		t.Errorf("www.example.org after domains:remove: %d", code)
	}

	// ps:restart: a new release of the same code, like a deploy.
	_, _, hdr := in.Get(app, "/")
	before := hdr.Get("X-Conductor-Release")
	must(t, "ps:restart", in.SSH(dev, "ps:restart "+app))
	if _, _, hdr := in.Get(app, "/"); hdr.Get("X-Conductor-Release") == before {
		t.Errorf("ps:restart did not switch to a new release")
	}

	// deploys: each with its user and key; config changes are deploys too.
	type deployRow struct{ ID, Status, Ref, User, Fingerprint string }
	var deploys []deployRow
	if err := json.Unmarshal([]byte(must(t, "deploys", in.SSH(dev, "deploys "+app+" --json"))), &deploys); err != nil {
		t.Fatal(err)
	}
	devFP := fingerprintOf(t, dev+".pub")
	var refs []string
	for _, d := range deploys {
		refs = append(refs, d.Ref+"/"+d.User+"/"+d.Status)
		wantFP := devFP
		if d.User == "admin" {
			wantFP = adminFP
		}
		if d.Fingerprint != wantFP {
			t.Errorf("deploy %s (%s) has key %q, want %q", d.ID, d.Ref, d.Fingerprint, wantFP)
		}
	}
	wantRefs := "ps:restart/dev/succeeded domains:remove/dev/succeeded domains:add/dev/succeeded config:set/dev/succeeded refs/heads/main/admin/succeeded"
	if strings.Join(refs, " ") != wantRefs {
		t.Errorf("deploys:\n got %s\nwant %s", strings.Join(refs, " "), wantRefs)
	}

	// apps:destroy: processes, vhost, files, repository and unix user go.
	refused(t, "destroy without confirm", in.SSH(admin, "apps:destroy "+app), "--confirm "+app)
	out = must(t, "apps:destroy", in.SSH(admin, "apps:destroy "+app+" --confirm "+app))
	if !strings.Contains(out, "Destroyed "+app) {
		t.Errorf("apps:destroy output: %s", out)
	}
	if code, _, _ := in.Get(app, "/"); code != 404 {
		t.Errorf("GET after destroy: %d, want nginx's 404", code)
	}
	if watchers, _ := filepath.Glob(filepath.Join(in.Data, "circus", "watchers", app+"_*")); len(watchers) != 0 {
		t.Errorf("watchers left: %v", watchers)
	}
	for _, p := range []string{filepath.Join(in.Data, "srv", "projects", app), filepath.Join(in.Data, "srv", "environments", app),
		filepath.Join(in.Data, "repos", app+".git"), filepath.Join(in.Data, "nginx", "sites", app+".conf")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after destroy (%v)", p, err)
		}
	}
	if _, err := user.Lookup(app); err == nil {
		t.Errorf("unix user %s left after destroy", app)
	}
	refused(t, "info after destroy", in.SSH(admin, "apps:info "+app), "not found")
	var trail []auditRow
	if err := json.Unmarshal([]byte(must(t, "audit", in.SSH(admin, "audit --app "+app+" -n 100 --json"))), &trail); err != nil {
		t.Fatal(err)
	}
	ops := map[string]bool{}
	for _, e := range trail {
		ops[e.Op+" "+e.Outcome] = true
	}
	for _, want := range []string{"git-receive-pack ok", "ps:scale ok", "ps:scale failed", "config:set ok", "config:unset ok", "run ok", "run failed",
		"domains:add ok", "domains:remove ok", "ps:restart ok", "apps:destroy ok", "apps:destroy failed", "run denied"} {
		if !ops[want] {
			t.Errorf("audit trail of %s lacks %q (has %v)", app, want, ops)
		}
	}
}

// runOnPty runs an SSH command on a pty with the Go client, answering each
// prompt, and wants exit 0 and final in the output.
func runOnPty(t *testing.T, in *Instance, key, command string, dialog [][2]string, final string) {
	t.Helper()
	client := in.dialSSH(key)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm", 40, 120, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	sess.Stdout, sess.Stderr = out, out
	if err := sess.Start(command); err != nil {
		t.Fatal(err)
	}
	for _, step := range dialog {
		prompt, answer := step[0], step[1]
		waitFor(t, "prompt "+prompt, func() bool { return strings.Contains(out.String(), prompt) })
		if _, err := stdin.Write([]byte(answer)); err != nil {
			t.Fatal(err)
		}
	}
	if err := sess.Wait(); err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out.String())
	}
	if !strings.Contains(out.String(), final) {
		t.Errorf("%s: output lacks %q:\n%s", command, final, out.String())
	}
}
