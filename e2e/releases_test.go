package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
	t.Parallel()
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
	for _, never := range []string{"Installing dependencies", "Running the release phase", "Collecting static files"} {
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

	// A domain added after a release is still served when that release
	// comes back: nginx and ALLOWED_HOSTS follow the app's domains.
	if r := in.SSH(in.AdminKey, "domains:add rolly www.rolly.test"); r.Code != 0 {
		t.Fatalf("domains:add: %s", r)
	}
	if r := in.SSH(in.AdminKey, "rollback rolly v6"); r.Code != 0 {
		t.Fatalf("rollback to v6: %s", r)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.HTTPAddr+"/", nil)
	req.Host = "www.rolly.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Hello from Conductor v4<") {
		t.Errorf("www.rolly.test after rolling back past domains:add: %d %q", resp.StatusCode, page)
	}
}

// TestDeployQueue: a second job for an app waits for the first and says
// behind what; deploys:cancel stops a running deploy and the serving release
// stays.
func TestDeployQueue(t *testing.T) {
	t.Parallel()
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
	t.Parallel()
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

// TestParallelApps: jobs of different apps run at the same time (up to
// --jobs), while one app's jobs take turns.
func TestParallelApps(t *testing.T) {
	t.Parallel()
	in := StartInstance(t, "--jobs", "2")
	works := map[string]string{}
	for _, app := range []string{"para-a", "para-b"} {
		w := in.WorkTree("hello")
		if r := in.Push(w, app, "main"); r.Code != 0 { // builds the virtualenv
			t.Fatalf("first push of %s: %s", app, r)
		}
		setVersion(t, w, "v2")
		writeFile(t, filepath.Join(w, "slow_release.py"), "import subprocess, sys, time\n"+
			"subprocess.check_call([sys.executable, 'manage.py', 'migrate', '--noinput'])\ntime.sleep(float(sys.argv[2]))\n")
		writeFile(t, filepath.Join(w, "Procfile"), "web: gunicorn hello.wsgi --log-file -\nrelease: python slow_release.py "+app+" 6\n")
		in.Commit(w, "slow")
		works[app] = w
	}
	results := make(chan Result, 2)
	for app, w := range works {
		go func() { results <- in.Push(w, app, "main") }()
	}
	// Both release phases run at once: neither app waits for the other.
	waitFor(t, "both apps' release phases at the same time", func() bool {
		return exec.Command("pgrep", "-f", "python slow_release.py para-a").Run() == nil &&
			exec.Command("pgrep", "-f", "python slow_release.py para-b").Run() == nil
	})
	for range works {
		if r := <-results; r.Code != 0 {
			t.Errorf("push: %s", r)
		}
	}
	for app := range works {
		if _, body, _ := in.Get(app, "/"); !strings.Contains(body, "Hello from Conductor v2<") {
			t.Errorf("%s: GET / = %q", app, body)
		}
	}
}

// TestPruneReleases: only the newest --keep-releases releases and the
// virtualenvs they use stay on disk; the serving one is never pruned.
func TestPruneReleases(t *testing.T) {
	t.Parallel()
	in := StartInstance(t, "--keep-releases", "2")
	work := in.WorkTree("hello")
	if r := in.Push(work, "prune", "main"); r.Code != 0 {
		t.Fatalf("push v1: %s", r)
	}
	envs := filepath.Join(in.Data, "srv", "environments", "prune")
	// Virtualenvs are the directories; each has its <venv>.complete
	// marker beside it, which goes with it.
	venvDirs := func() (dirs, markers []string) {
		all, _ := filepath.Glob(filepath.Join(envs, "[0-9a-f]*"))
		for _, p := range all {
			if strings.HasSuffix(p, ".complete") {
				markers = append(markers, strings.TrimSuffix(p, ".complete"))
			} else {
				dirs = append(dirs, p)
			}
		}
		return dirs, markers
	}
	firstVenvs, _ := venvDirs()
	// v2 changes the requirements (a new virtualenv), v3 and v4 only code.
	reqs, err := os.ReadFile(filepath.Join(work, "requirements.txt"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work, "requirements.txt"), string(reqs)+"# changed\n")
	for i := 2; i <= 4; i++ {
		setVersion(t, work, fmt.Sprintf("v%d", i))
		in.Commit(work, fmt.Sprintf("v%d", i))
		if r := in.Push(work, "prune", "main"); r.Code != 0 {
			t.Fatalf("push v%d: %s", i, r)
		}
	}
	in.waitRetired(t, "prune") // prune runs in retire, after the push returned
	dirs, _ := os.ReadDir(filepath.Join(in.Data, "srv", "projects", "prune", "releases"))
	if len(dirs) != 2 {
		t.Errorf("%d release dirs kept, want 2 (--keep-releases 2)", len(dirs))
	}
	venvs, markers := venvDirs()
	if len(firstVenvs) != 1 || len(venvs) != 1 || venvs[0] == firstVenvs[0] {
		t.Errorf("virtualenvs before %v, after %v: want v1's pruned and one left", firstVenvs, venvs)
	}
	if !slices.Equal(markers, venvs) {
		t.Errorf("completion markers %v, want one for each kept virtualenv %v", markers, venvs)
	}
	if _, body, _ := in.Get("prune", "/"); !strings.Contains(body, "Hello from Conductor v4<") {
		t.Errorf("GET / = %q, want v4", body)
	}
	// A pruned release cannot be rolled back to; a kept one can.
	if r := in.SSH(in.AdminKey, "rollback prune v1"); r.Code == 0 || !strings.Contains(r.Stderr, "pruned") {
		t.Errorf("rollback to a pruned release: %s", r)
	}
	if r := in.SSH(in.AdminKey, "rollback prune v3"); r.Code != 0 { // v5
		t.Fatalf("rollback to a kept release: %s", r)
	}
	// Back and forth: each rollback has a directory of its own, so v3's
	// and v4's own go (v5 and v6 are the two kept), and v3's files are
	// still v5's.
	if r := in.SSH(in.AdminKey, "rollback prune v4"); r.Code != 0 { // v6
		t.Fatalf("rollback to v4: %s", r)
	}
	in.waitRetired(t, "prune")
	if dirs, _ := os.ReadDir(filepath.Join(in.Data, "srv", "projects", "prune", "releases")); len(dirs) != 2 {
		t.Errorf("%d release dirs kept after the rollbacks, want 2", len(dirs))
	}
	if r := in.SSH(in.AdminKey, "rollback prune v3"); r.Code != 0 { // v7
		t.Fatalf("rollback to v3 again, its own directory pruned: %s", r)
	}
	if _, body, _ := in.Get("prune", "/"); !strings.Contains(body, "Hello from Conductor v3<") {
		t.Errorf("GET / = %q, want v3", body)
	}
}

// TestFailedRestartLeavesServingRelease: a config:set whose restart fails
// (a settings module that raises) changes nothing the serving release
// reads: its local_settings.py is as it was, no directory of the failed
// restart is left, and a gunicorn worker that respawns afterwards (a HUP
// to the master, as max_requests or a crash would) boots on the serving
// release's settings and answers. A restart and a rollback each get a
// directory of their own.
func TestFailedRestartLeavesServingRelease(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	const app = "restartleak"
	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "hello", "settings_broken.py"),
		"from hello.settings import *  # noqa\n\nraise RuntimeError(\"broken settings\")\n")
	in.Commit(work, "a broken settings module beside the good one")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	in.waitRetired(t, app)
	v1, _, dir := in.currentRelease(app)
	settings := filepath.Join(dir, "local_settings.py")
	before, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	releasesDir := filepath.Dir(dir)
	entries := func() int {
		es, err := os.ReadDir(releasesDir)
		if err != nil {
			t.Fatal(err)
		}
		return len(es)
	}
	n := entries()

	r := in.SSH(in.AdminKey, "config:set "+app+" DJANGO_SETTINGS_MODULE=hello.settings_broken")
	if r.Code == 0 {
		t.Fatalf("config:set of a settings module that raises succeeded: %s", r)
	}
	if cur, _, _ := in.currentRelease(app); cur != v1 {
		t.Fatalf("serving release after the failed restart = %s, want %s", cur, v1)
	}
	if after, err := os.ReadFile(settings); err != nil || string(after) != string(before) {
		t.Fatalf("the serving release's local_settings.py changed (%v):\n%s", err, after)
	}
	if got := entries(); got != n {
		t.Errorf("releases dir has %d entries after the failed restart, want %d", got, n)
	}

	// gunicorn's master is its oldest process; a HUP replaces its workers,
	// which import the settings again.
	out, err := exec.Command("pgrep", "-o", "-u", app, "-f", "gunicorn").Output()
	master := strings.TrimSpace(string(out))
	if err != nil || master == "" {
		t.Fatalf("gunicorn master of %s: %v %q", app, err, out)
	}
	workers := func() string {
		b, _ := exec.Command("pgrep", "-P", master).Output()
		return strings.TrimSpace(string(b))
	}
	old := workers()
	pid, _ := strconv.Atoi(master)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "gunicorn to replace its workers", func() bool {
		w := workers()
		return w != old
	})
	if code, body, _ := in.Get(app, "/"); code != 200 || !strings.Contains(body, "Hello from Conductor") {
		t.Fatalf("after gunicorn's workers respawned GET / = %d %q", code, body)
	}

	// A restart that succeeds serves from a directory of its own.
	must(t, "config:unset", in.SSH(in.AdminKey, "config:unset "+app+" DJANGO_SETTINGS_MODULE"))
	v2, _, dir2 := in.currentRelease(app)
	if v2 == v1 || dir2 == dir {
		t.Errorf("restart: release %s in %s, want a new release in a new directory (v1 %s in %s)", v2, dir2, v1, dir)
	}
	if after, _ := os.ReadFile(settings); string(after) != string(before) {
		t.Errorf("the restart rewrote v1's local_settings.py")
	}
	if code, body, _ := in.Get(app, "/"); code != 200 || !strings.Contains(body, "Hello from Conductor") {
		t.Errorf("after the restart GET / = %d %q", code, body)
	}
}
