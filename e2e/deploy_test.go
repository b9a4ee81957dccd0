package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPushDeploy is the core pipeline: push a real Django app over SSH, see
// it served with its static files, redeploy a change, fail a push on a broken
// migration while the old release keeps serving, change config, read logs,
// and survive a restart of conductor.
func TestPushDeploy(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	work := in.WorkTree("hello")

	// First push: creates and provisions the app.
	r := in.Push(work, "hello", "main")
	if r.Code != 0 {
		t.Fatalf("first push failed: %s", r)
	}
	for _, want := range []string{
		"-----> Creating app hello",
		"remote: -----> Installing dependencies",
		"remote: -----> Running the release phase",
		"Applying greetings.0001_initial... OK",
		"remote: -----> Collecting static files",
		"remote: -----> Switching traffic to the new release",
		"remote: -----> Deployed hello",
	} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("push output lacks %q:\n%s", want, r.Stderr)
		}
	}
	code, body, hdr := in.Get("hello", "/")
	if code != 200 || !strings.Contains(body, "Hello from Conductor v1") {
		t.Fatalf("GET / = %d %q", code, body)
	}
	firstRelease := hdr.Get("X-Conductor-Release")
	code, body, _ = in.Get("hello", "/static/hello.css")
	if code != 200 || !strings.Contains(body, "conductor-example-static") {
		t.Fatalf("GET /static/hello.css = %d %q", code, body)
	}
	if code, _, _ := in.Get("nosuchapp", "/"); code != 404 {
		t.Errorf("unknown host answered %d, want 404", code)
	}

	// The app runs as its own unix user, under the data dir.
	cur, err := os.Readlink(filepath.Join(in.Data, "srv", "projects", "hello", "current"))
	if err != nil || !strings.Contains(cur, firstRelease) {
		t.Errorf("current symlink = %q (%v), want release %s", cur, err, firstRelease)
	}
	if fi, err := os.Stat(filepath.Join(in.Data, "srv", "projects", "hello", "data", "db.sqlite3")); err != nil {
		t.Errorf("sqlite database not in the app's data dir: %v", err)
	} else if owner := fileOwner(fi); owner != "hello" {
		t.Errorf("database owned by %q, want the app user hello", owner)
	}

	// A code-only change: no pip, new version served when the push returns.
	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	r = in.Push(work, "hello", "main")
	if r.Code != 0 {
		t.Fatalf("second push failed: %s", r)
	}
	if !strings.Contains(r.Stderr, "Dependencies unchanged") || strings.Contains(r.Stderr, "Installed ") {
		t.Errorf("code-only deploy should reuse the virtualenv:\n%s", r.Stderr)
	}
	if _, body, _ := in.Get("hello", "/"); !strings.Contains(body, "Hello from Conductor v2") {
		t.Fatalf("after second push GET / = %q", body)
	}
	goodRev := strings.TrimSpace(in.mustGit(work, "rev-parse", "HEAD"))

	// A failing migration rejects the push; v2 keeps serving; the branch
	// does not move.
	mig, err := os.ReadFile(filepath.Join("..", "examples", "hello-bad-migration", "0002_fail.py"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "greetings", "migrations", "0002_fail.py"), mig, 0o644); err != nil {
		t.Fatal(err)
	}
	setVersion(t, work, "v3")
	in.Commit(work, "broken migration")
	r = in.Push(work, "hello", "main")
	if r.Code == 0 {
		t.Fatalf("push with a failing migration succeeded: %s", r)
	}
	for _, want := range []string{"intentional migration failure", "migrate failed", "pre-receive hook declined"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("failed push output lacks %q:\n%s", want, r.Stderr)
		}
	}
	if _, body, _ := in.Get("hello", "/"); !strings.Contains(body, "Hello from Conductor v2") {
		t.Fatalf("after failed push GET / = %q, want v2 still serving", body)
	}
	remote := in.Git(in.AdminKey, work, "ls-remote", in.RepoURL("hello"), "refs/heads/main")
	if !strings.HasPrefix(remote.Stdout, goodRev) {
		t.Errorf("remote main = %q, want it to stay at %s", remote.Stdout, goodRev)
	}

	// config:set: a value full of quotes, newlines, $ and % reaches the app
	// as data and the app restarts with it.
	value := `it's "quoted" $HOME %s <b>` + "\nsecond line; rm -rf /"
	r = in.SSH(in.AdminKey, "config:set hello "+shellQuote("GREETING="+value))
	if r.Code != 0 {
		t.Fatalf("config:set: %s", r)
	}
	_, body, _ = in.Get("hello", "/")
	if !strings.Contains(body, "greeting: it&#x27;s &quot;quoted&quot; $HOME %s &lt;b&gt;\nsecond line; rm -rf /") {
		t.Errorf("config value did not reach the app intact: %q", body)
	}
	r = in.SSH(in.AdminKey, "config:get hello GREETING")
	if r.Code != 0 || r.Stdout != value+"\n" {
		t.Errorf("config:get = %q (%s)", r.Stdout, r)
	}

	// logs: the runtime output of the app's processes.
	r = in.SSH(in.AdminKey, "logs hello -n 50")
	if r.Code != 0 || !strings.Contains(r.Stdout, "web.1: ") || !strings.Contains(r.Stdout, "Booting worker") {
		t.Errorf("logs: %s", r)
	}

	// The app outlives a stop of conductor; the next start adopts its
	// circusd and nginx.
	in.Stop()
	if code, body, _ := in.Get("hello", "/"); code != 200 || !strings.Contains(body, "Hello from Conductor v2") {
		t.Errorf("the app stopped with conductor (%d %q)", code, body)
	}
	in.Start()
	waitFor(t, "app served after restart", func() bool {
		_, body, _ := in.Get("hello", "/")
		return strings.Contains(body, "Hello from Conductor v2")
	})
}

// TestPushRefs checks that a push of several refs stores them all with their
// full names and deploys only the deploy branch.
func TestPushRefs(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	work := in.WorkTree("hello")
	in.mustGit(work, "branch", "feature/deep/x")
	in.mustGit(work, "tag", "v1.0")
	r := in.Push(work, "refs-multi", "main", "feature/deep/x", "v1.0")
	if r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	if n := strings.Count(r.Stderr, "-----> Deploying refs-multi"); n != 1 {
		t.Errorf("deployed %d times, want once:\n%s", n, r.Stderr)
	}
	refs := in.Git(in.AdminKey, work, "ls-remote", in.RepoURL("refs-multi")).Stdout
	for _, want := range []string{"refs/heads/main", "refs/heads/feature/deep/x", "refs/tags/v1.0"} {
		if !strings.Contains(refs, want) {
			t.Errorf("remote lacks %s:\n%s", want, refs)
		}
	}
	// A branch push alone deploys nothing and succeeds.
	in.mustGit(work, "checkout", "-q", "-b", "other")
	setVersion(t, work, "other")
	in.Commit(work, "other")
	r = in.Push(work, "refs-multi", "other")
	if r.Code != 0 || strings.Contains(r.Stderr, "Deploying") {
		t.Errorf("push of a non-deploy branch: %s", r)
	}
	if _, body, _ := in.Get("refs-multi", "/"); !strings.Contains(body, "Hello from Conductor v1") {
		t.Errorf("GET / = %q, want v1", body)
	}
	// Clone works (upload-pack) and gets the deployed code.
	clone := filepath.Join(in.Dir, "clone")
	if r := in.Git(in.AdminKey, in.Dir, "clone", "-q", in.RepoURL("refs-multi.git"), clone); r.Code != 0 {
		t.Fatalf("clone: %s", r)
	}
	if _, err := os.Stat(filepath.Join(clone, "manage.py")); err != nil {
		t.Errorf("clone lacks manage.py: %v", err)
	}
}
