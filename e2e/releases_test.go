package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type releaseRow struct {
	Number      int    `json:"number"`
	Description string `json:"description"`
	Current     bool   `json:"current"`
}

func (in *Instance) releases(t *testing.T, app string) []releaseRow {
	t.Helper()
	r := in.SSH(in.AdminKey, "releases "+app+" --json")
	if r.Code != 0 {
		t.Fatalf("releases: %s", r)
	}
	var rows []releaseRow
	if err := json.Unmarshal([]byte(r.Stdout), &rows); err != nil {
		t.Fatalf("releases --json: %v\n%s", err, r.Stdout)
	}
	return rows
}

// TestRollback: numbered releases with config snapshots, rollback to a given
// release and to the previous one, without pip or migrate, and deploy of a
// pushed tag.
func TestRollback(t *testing.T) {
	in := StartInstance(t)
	work := in.WorkTree("hello")
	in.mustGit(work, "tag", "first")
	if r := in.Push(work, "rolly", "main", "first"); r.Code != 0 { // v1
		t.Fatalf("push v1: %s", r)
	}
	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	if r := in.Push(work, "rolly", "main"); r.Code != 0 { // v2
		t.Fatalf("push v2: %s", r)
	}
	if r := in.SSH(in.AdminKey, "config:set rolly GREETING=from-v3"); r.Code != 0 { // v3
		t.Fatalf("config:set: %s", r)
	}
	setVersion(t, work, "v4")
	in.Commit(work, "v4")
	if r := in.Push(work, "rolly", "main"); r.Code != 0 { // v4
		t.Fatalf("push v4: %s", r)
	}
	rows := in.releases(t, "rolly")
	if len(rows) != 4 || rows[0].Number != 4 || !rows[0].Current {
		t.Fatalf("releases = %+v, want v4 current of 4", rows)
	}

	start := time.Now()
	r := in.SSH(in.AdminKey, "rollback rolly v2")
	took := time.Since(start)
	if r.Code != 0 {
		t.Fatalf("rollback to v2: %s", r)
	}
	t.Logf("rollback took %s", took.Round(time.Millisecond))
	if !strings.Contains(r.Stdout, "migrations are not reversed") {
		t.Errorf("rollback did not warn about migrations:\n%s", r.Stdout)
	}
	for _, never := range []string{"Installing requirements", "Running the release phase", "Collecting static files"} {
		if strings.Contains(r.Stdout, never) {
			t.Errorf("rollback ran %q:\n%s", never, r.Stdout)
		}
	}
	_, body, _ := in.Get("rolly", "/")
	if !strings.Contains(body, "Hello from Conductor v2<") || strings.Contains(body, "greeting:") {
		t.Errorf("after rollback to v2 GET / = %q, want v2 without GREETING", body)
	}
	if r := in.SSH(in.AdminKey, "config rolly --json"); strings.TrimSpace(r.Stdout) != "{}" {
		t.Errorf("config after rollback to v2 = %s, want v2's (empty)", r.Stdout)
	}
	rows = in.releases(t, "rolly")
	if rows[0].Number != 5 || rows[0].Description != "rollback to v2" || !rows[0].Current {
		t.Errorf("newest release = %+v, want v5 'rollback to v2'", rows[0])
	}

	// Without a release: back to the one before the serving one (v4).
	if r := in.SSH(in.AdminKey, "rollback rolly"); r.Code != 0 {
		t.Fatalf("rollback: %s", r)
	}
	_, body, _ = in.Get("rolly", "/")
	if !strings.Contains(body, "Hello from Conductor v4<") || !strings.Contains(body, "greeting: from-v3") {
		t.Errorf("after rollback GET / = %q, want v4 with GREETING", body)
	}

	// Refusals change nothing.
	for _, tc := range []struct{ cmd, want string }{
		{"rollback rolly v99", "not found"},
		{"rollback rolly v6", "already serving"},
		{"deploy rolly nosuchref", "no ref"},
		{"deploy rolly -x", "unknown shorthand flag"},
		{"deploy rolly -- -x", "invalid ref"},
		{"deploy rolly 'a..b'", "invalid ref"},
	} {
		if r := in.SSH(in.AdminKey, tc.cmd); r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%s: want failure mentioning %q, got %s", tc.cmd, tc.want, r)
		}
	}

	// deploy <ref> releases a pushed tag.
	if r := in.SSH(in.AdminKey, "deploy rolly first"); r.Code != 0 {
		t.Fatalf("deploy first: %s", r)
	}
	if _, body, _ := in.Get("rolly", "/"); !strings.Contains(body, "Hello from Conductor v1<") {
		t.Errorf("after deploy of tag first GET / = %q", body)
	}
}

// TestDeployQueue: a second job for an app waits for the first and says
// behind what; deploys:cancel stops a running deploy and the serving release
// stays.
func TestDeployQueue(t *testing.T) {
	in := StartInstance(t)
	work := in.WorkTree("hello")
	if r := in.Push(work, "queued", "main"); r.Code != 0 {
		t.Fatalf("first push: %s", r)
	}
	writeFile(t, filepath.Join(work, "slow_release.py"), "import sys, time\ntime.sleep(float(sys.argv[1]))\n")
	writeFile(t, filepath.Join(work, "Procfile"), "web: gunicorn hello.wsgi --log-file -\nrelease: python slow_release.py 4\n")
	setVersion(t, work, "v2")
	in.Commit(work, "slow v2")
	pushed := make(chan Result, 1)
	go func() { pushed <- in.Push(work, "queued", "main") }()
	waitFor(t, "the slow release phase", func() bool {
		return exec.Command("pgrep", "-f", "python slow_release.py 4").Run() == nil
	})
	r := in.SSH(in.AdminKey, "config:set queued ROUND=2")
	if r.Code != 0 {
		t.Fatalf("config:set behind a push: %s", r)
	}
	if !strings.Contains(r.Stdout, "Waiting for deploy") || !strings.Contains(r.Stdout, "pushed by admin") {
		t.Errorf("config:set did not say what it waited behind:\n%s", r.Stdout)
	}
	if p := <-pushed; p.Code != 0 {
		t.Fatalf("slow push: %s", p)
	}
	if _, body, _ := in.Get("queued", "/"); !strings.Contains(body, "Hello from Conductor v2<") {
		t.Errorf("GET / = %q, want v2", body)
	}

	// deploys:cancel stops a running deploy.
	writeFile(t, filepath.Join(work, "Procfile"), "web: gunicorn hello.wsgi --log-file -\nrelease: python slow_release.py 300\n")
	setVersion(t, work, "v3")
	in.Commit(work, "slower v3")
	go func() { pushed <- in.Push(work, "queued", "main") }()
	waitFor(t, "the slower release phase", func() bool {
		return exec.Command("pgrep", "-f", "python slow_release.py 300").Run() == nil
	})
	if r := in.SSH(in.AdminKey, "deploys:cancel queued"); r.Code != 0 || !strings.Contains(r.Stdout, "Canceled 1") {
		t.Fatalf("deploys:cancel: %s", r)
	}
	select {
	case p := <-pushed:
		if p.Code == 0 || !strings.Contains(p.Stderr, "canceled") {
			t.Errorf("canceled push: %s", p)
		}
	case <-time.After(time.Minute):
		t.Fatal("push did not end after deploys:cancel")
	}
	if exec.Command("pgrep", "-f", "python slow_release.py 300").Run() == nil {
		t.Errorf("the canceled release phase is still running")
	}
	if _, body, _ := in.Get("queued", "/"); !strings.Contains(body, "Hello from Conductor v2<") {
		t.Errorf("GET / = %q, want v2 still serving", body)
	}
}

// TestConcurrentPushes: a second push to an app while one deploys waits for
// it and then starts from its result, so a push that is no longer a
// fast-forward is refused instead of deploying and then failing to move
// the branch.
func TestConcurrentPushes(t *testing.T) {
	in := StartInstance(t)
	a := in.WorkTree("hello")
	if r := in.Push(a, "twice", "main"); r.Code != 0 {
		t.Fatalf("first push: %s", r)
	}
	b := filepath.Join(in.Dir, "clone-b")
	if r := in.Git(in.AdminKey, in.Dir, "clone", "-q", in.RepoURL("twice"), b); r.Code != 0 {
		t.Fatalf("clone: %s", r)
	}
	writeFile(t, filepath.Join(a, "slow_release.py"), "import time\ntime.sleep(4)\n")
	writeFile(t, filepath.Join(a, "Procfile"), "web: gunicorn hello.wsgi --log-file -\nrelease: python slow_release.py twice\n")
	setVersion(t, a, "from-a")
	in.Commit(a, "a")
	setVersion(t, b, "from-b")
	in.Commit(b, "b")
	pushed := make(chan Result, 1)
	go func() { pushed <- in.Push(a, "twice", "main") }()
	waitFor(t, "a's release phase", func() bool {
		return exec.Command("pgrep", "-f", "python slow_release.py twice").Run() == nil
	})
	rb := in.Push(b, "twice", "main")
	ra := <-pushed
	if ra.Code != 0 {
		t.Fatalf("push a: %s", ra)
	}
	if rb.Code == 0 || !strings.Contains(rb.Stderr, "Waiting for a push to twice by admin") || !strings.Contains(rb.Stderr, "rejected") {
		t.Errorf("push b: want it to wait, then be rejected as not a fast-forward: %s", rb)
	}
	if strings.Contains(rb.Stderr, "Deploying") {
		t.Errorf("push b deployed: %s", rb)
	}
	if _, body, _ := in.Get("twice", "/"); !strings.Contains(body, "Hello from Conductor from-a<") {
		t.Errorf("GET / = %q, want a's version", body)
	}
	head := strings.TrimSpace(in.mustGit(a, "rev-parse", "HEAD"))
	if remote := in.Git(in.AdminKey, a, "ls-remote", in.RepoURL("twice"), "refs/heads/main").Stdout; !strings.HasPrefix(remote, head) {
		t.Errorf("remote main = %q, want a's %s", remote, head)
	}
}
