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
	"strings"
	"testing"
	"time"
)

// workerProcfile runs the example app's web process and a worker that
// prints its version and sleeps.
func workerProcfile(worker string) string {
	return "web: gunicorn hello.wsgi --log-file -\nworker: " + worker + "\n"
}

const sleepingWorker = `python -u -c "import os, time; print('worker of', os.environ['CONDUCTOR_RELEASE'], 'up'); time.sleep(100000)"`

// sqlite runs a query on an instance's state.
func (in *Instance) sqlite(query string) string {
	in.t.Helper()
	out, err := exec.Command("sqlite3", filepath.Join(in.Data, "conductor.db"), query).CombinedOutput()
	if err != nil {
		in.t.Fatalf("sqlite3 %q: %v %s", query, err, out)
	}
	return strings.TrimSpace(string(out))
}

// currentRelease is an app's recorded current release: id, port and dir.
func (in *Instance) currentRelease(app string) (id, port, dir string) {
	in.t.Helper()
	row := in.sqlite(`SELECT r.id || ' ' || r.port || ' ' || r.dir FROM releases r JOIN apps a ON a.id = r.app_id WHERE a.name = '` + app + `' AND r.current = 1`)
	f := strings.Fields(row)
	if len(f) != 3 {
		in.t.Fatalf("current release of %s: %q", app, row)
	}
	return f[0], f[1], f[2]
}

// pushPaused commits version in work and pushes it in the background,
// with the deploy told to pause at at (the builder's test hook); it
// returns once the deploy waits there, with the push's result to come
// and the new deploy's id.
func pushPaused(t *testing.T, in *Instance, pauses, work, app, version, at string) (<-chan Result, string) {
	t.Helper()
	writeFile(t, filepath.Join(pauses, "pause-at"), at)
	os.Remove(filepath.Join(pauses, "paused"))
	setVersion(t, work, version)
	in.Commit(work, version)
	pushed := make(chan Result, 1)
	go func() { pushed <- in.Push(work, app, "main") }()
	waitFor(t, "the deploy of "+version+" to pause at "+at, func() bool {
		_, err := os.Stat(filepath.Join(pauses, "paused"))
		return err == nil
	})
	return pushed, in.sqlite(`SELECT d.id FROM deploys d JOIN apps a ON a.id = d.app_id WHERE a.name = '` + app + `' ORDER BY d.created_at DESC, d.rowid DESC LIMIT 1`)
}

// appWatchers lists the names of an app's installed watchers.
func (in *Instance) appWatchers(app string) []string { return watchersIn(in.Data, app) }

// watchersIn lists the names of an app's watchers installed under a
// host's data dir (serve's or a worker's).
func watchersIn(data, app string) []string {
	files, _ := filepath.Glob(filepath.Join(data, "circus", "watchers", app+"_*.ini"))
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".ini"))
	}
	slices.Sort(names)
	return names
}

type psEntry struct {
	Type    string
	Watcher string
	Running int
	State   string
}

func (in *Instance) ps(app string) []psEntry {
	in.t.Helper()
	var ps []psEntry
	if err := json.Unmarshal([]byte(must(in.t, "ps", in.SSH(in.AdminKey, "ps "+app+" --json"))), &ps); err != nil {
		in.t.Fatal(err)
	}
	return ps
}

// TestKillAtEveryStep kills conductor with SIGKILL at every step boundary
// of a deploy of an app with web and worker processes, and inside switch
// and retire (the builder's test hook pauses the deploy there), restarts
// it and checks that the deploy ended in one of its two states: killed
// before the commit point, the previous release serves, is recorded and
// `current` points at it, the deploy is failed and nothing of the new
// release is left; killed after it, the new release serves, is recorded,
// `current` points at it and the deploy succeeded. Each next push works,
// and no request fails throughout.
func TestKillAtEveryStep(t *testing.T) {
	pauses := t.TempDir()
	t.Setenv("CONDUCTOR_TEST_PAUSE_DIR", pauses)
	in := StartInstance(t)
	const app = "atomic"
	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "Procfile"), workerProcfile(sleepingWorker))
	setVersion(t, work, "v0")
	in.Commit(work, "web and worker")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("first push: %s", r)
	}
	// The app serves throughout: killed and restarted conductors, adopted
	// circusd and nginx, and reconciles included.
	l := startLoad(in, app, 2, 20*time.Minute, 1000000)
	serving := "v0"
	for i, p := range killPoints {
		version := fmt.Sprintf("v%d", i+1)
		prevID, _, _ := in.currentRelease(app)
		pushed, newID := pushPaused(t, in, pauses, work, app, version, p.at)
		in.Kill()
		select {
		case <-pushed:
		case <-time.After(2 * time.Minute):
			t.Fatalf("%s: the push did not end after conductor was killed", p.at)
		}
		os.Remove(filepath.Join(pauses, "pause-at"))
		in.Start()

		if p.committed {
			serving = version
		}
		in.checkKilledDeploy(t, deployHost{in.Data, in.HTTPAddr}, app, p, prevID, newID, serving)
		if t.Failed() {
			t.FailNow()
		}
	}
	l.check(t, "the kills and restarts", false) // a switch changes the route only: no reload
	// The next push works.
	setVersion(t, work, "final")
	in.Commit(work, "final")
	start := time.Now()
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("push after the kills: %s", r)
	}
	t.Logf("code-only push of web+worker took %s", time.Since(start).Round(time.Millisecond))
	if _, body, _ := in.Get(app, "/"); !strings.Contains(body, "Hello from Conductor final<") {
		t.Errorf("GET / = %q, want the final version", body)
	}
	in.waitRetired(t, app)
	_, port, _ := in.currentRelease(app)
	if got, want := in.appWatchers(app), []string{app + "_web_" + port, app + "_worker_" + port}; !slices.Equal(got, want) {
		t.Errorf("watchers after the last push %v, want %v", got, want)
	}
}

// killPoint is where a kill-at-every-step test stops a deploy (a point of
// builder's test hook, testhook.go), and whether that is past the deploy's
// commit point.
type killPoint struct {
	at        string
	committed bool
}

// killPoints are the points of a deploy a kill test stops it at: each
// step boundary, and inside switch and retire.
var killPoints = []killPoint{
	{"step:provision", false}, {"step:unpack", false}, {"step:virtualenv", false}, {"step:settings", false},
	{"step:collectstatic", false}, {"step:release", false}, {"step:start", false}, {"step:check", false},
	{"step:switch", false}, {"switch:site", false}, {"switch:served", false},
	{"switch:committed", true}, {"switch:linked", true}, {"step:retire", true}, {"retire:stopped", true}, {"step:end", true},
}

// deployHost is the host an app runs on as the kill tests see it: its
// data dir and its front nginx's address (serve's own, or a worker's).
type deployHost struct {
	data, httpAddr string
}

// getAt fetches path from the nginx at addr with the app's Host header.
func getAt(addr, app, path string) (int, string, http.Header) {
	return getWithin(addr, app, path, 10*time.Second)
}

// getWithin is getAt with a timeout.
func getWithin(addr, app, path string, timeout time.Duration) (int, string, http.Header) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Host = app + ".localhost"
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// checkKilledDeploy checks, once the builder that was killed at p during
// deploy newID of app (whose previous release was prevID) has restarted,
// that the deploy ended in one of its two states: before the commit point,
// prevID is recorded current, serves, `current` and the route name it, the
// deploy failed and nothing of newID is left; after it, the same for newID
// and the deploy succeeded. serving is the version the app's page must
// show. The state is serve's (its SQLite, SSH commands); the files,
// processes and nginx are h's.
func (in *Instance) checkKilledDeploy(t *testing.T, h deployHost, app string, p killPoint, prevID, newID, serving string) {
	t.Helper()
	wantID, wantStatus := prevID, "failed"
	if p.committed {
		wantID, wantStatus = newID, "succeeded"
	}
	curID, port, dir := in.currentRelease(app)
	if curID != wantID {
		t.Fatalf("%s: current release %s, want %s (new %s, previous %s)", p.at, curID, wantID, newID, prevID)
	}
	waitFor(t, p.at+": nginx to serve "+wantID, func() bool {
		_, body, hdr := getAt(h.httpAddr, app, "/")
		return hdr.Get("X-Conductor-Release") == wantID && strings.Contains(body, "Hello from Conductor "+serving+"<")
	})
	// What `deploys` tells the pusher whose push was cut off.
	var deploys []struct{ ID, Status string }
	if err := json.Unmarshal([]byte(must(t, "deploys", in.SSH(in.AdminKey, "deploys "+app+" --json"))), &deploys); err != nil {
		t.Fatal(err)
	}
	if len(deploys) == 0 || deploys[0].ID != newID || deploys[0].Status != wantStatus {
		t.Errorf("%s: deploys says %+v first, want %s %s", p.at, deploys[:min(1, len(deploys))], newID, wantStatus)
	}
	if target, err := os.Readlink(filepath.Join(h.data, "srv", "projects", app, "current")); err != nil || target != dir {
		t.Errorf("%s: current -> %q (%v), want %s", p.at, target, err, dir)
	}
	// The route nginx reads per request (nginx/route.go) names the release.
	var route struct{ Release, Upstream string }
	if raw, err := os.ReadFile(filepath.Join(h.data, "nginx", "routes", app+".json")); err != nil {
		t.Errorf("%s: route file: %v", p.at, err)
	} else if err := json.Unmarshal(raw, &route); err != nil || route.Release != wantID || !strings.HasSuffix(route.Upstream, ":"+port) {
		t.Errorf("%s: route %s (%v), want release %s on port %s", p.at, raw, err, wantID, port)
	}
	want := []string{app + "_web_" + port, app + "_worker_" + port}
	if got := watchersIn(h.data, app); !slices.Equal(got, want) {
		t.Errorf("%s: watchers %v, want %v", p.at, got, want)
	}
	waitFor(t, p.at+": web and worker of the current release to run", func() bool {
		n := 0
		for _, e := range in.ps(app) {
			if strings.HasSuffix(e.Watcher, "_"+port) && e.Running == 1 {
				n++
			}
		}
		return n == 2
	})
	// What circusd runs, not only its files: one worker process is left
	// (a retire cut short leaves the old one running without a file).
	waitFor(t, p.at+": a single worker process", func() bool {
		out, _ := exec.Command("pgrep", "-u", app, "-f", "worker of").Output()
		return len(strings.Fields(string(out))) == 1
	})
	if !p.committed {
		if _, err := os.Stat(filepath.Join(h.data, "srv", "projects", app, "releases", newID)); !os.IsNotExist(err) {
			t.Errorf("%s: the new release's directory is left (%v)", p.at, err)
		}
		if n := in.sqlite(`SELECT count(*) FROM releases WHERE id = '` + newID + `'`); n != "0" {
			t.Errorf("%s: the new release is recorded", p.at)
		}
	}
}

// TestWorkerCrashFailsPush: a release whose worker exits at start fails the
// push before the switch, with the worker's output, and the previous
// release's web and worker processes run on untouched.
func TestWorkerCrashFailsPush(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	const app = "crashworker"
	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "Procfile"), workerProcfile(sleepingWorker))
	setVersion(t, work, "v1")
	in.Commit(work, "v1")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("first push: %s", r)
	}
	v1, port, _ := in.currentRelease(app)
	// The app's processes run as its user, named after it.
	pidsOf := func() map[string]string {
		out := map[string]string{}
		for typ, pattern := range map[string]string{"web": "gunicorn", "worker": "worker of"} {
			b, _ := exec.Command("pgrep", "-u", app, "-d", ",", "-f", pattern).Output()
			out[typ] = strings.TrimSpace(string(b))
		}
		return out
	}
	before := pidsOf()
	if before["web"] == "" || before["worker"] == "" {
		t.Fatalf("v1's processes: %v", before)
	}

	writeFile(t, filepath.Join(work, "Procfile"), workerProcfile(`python -u -c "print('worker v2 cannot reach its broker'); raise SystemExit(3)"`))
	setVersion(t, work, "v2")
	in.Commit(work, "v2 with a crashing worker")
	r := in.Push(work, app, "main")
	if r.Code == 0 {
		t.Fatalf("the push of a release whose worker crashes succeeded: %s", r)
	}
	t.Logf("the failed push's output:\n%s", r.Stderr)
	for _, want := range []string{"process type worker is not running", "worker v2 cannot reach its broker"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("push output lacks %q:\n%s", want, r.Stderr)
		}
	}
	if strings.Contains(r.Stderr, "Switching traffic") {
		t.Errorf("the failed release reached the switch:\n%s", r.Stderr)
	}
	if _, body, h := in.Get(app, "/"); !strings.Contains(body, "Hello from Conductor v1<") || h.Get("X-Conductor-Release") != v1 {
		t.Errorf("GET / = %q (release %q), want v1 serving", body, h.Get("X-Conductor-Release"))
	}
	if cur, _, _ := in.currentRelease(app); cur != v1 {
		t.Errorf("current release %s, want %s", cur, v1)
	}
	if after := pidsOf(); after["web"] != before["web"] || after["worker"] != before["worker"] {
		t.Errorf("v1's processes changed: before %v, after %v", before, after)
	}
	if got, want := in.appWatchers(app), []string{app + "_web_" + port, app + "_worker_" + port}; !slices.Equal(got, want) {
		t.Errorf("watchers %v, want only v1's %v", got, want)
	}
	// The uptime's config var is checked when it is set, and nothing is stored.
	refused(t, "a bad uptime", in.SSH(in.AdminKey, "config:set "+app+" CONDUCTOR_CHECK_UPTIME=soon"), "CONDUCTOR_CHECK_UPTIME: want a number of seconds from 0 to 600")
	if out := must(t, "config", in.SSH(in.AdminKey, "config "+app)); strings.Contains(out, "CONDUCTOR_CHECK_UPTIME") {
		t.Errorf("a refused value was stored:\n%s", out)
	}
}

// TestFailedSwitchRestoresSite: a deploy that fails inside the switch, after
// nginx's site already names the new release but before the release is
// recorded (deploys:cancel while the test hook holds it there), points
// nginx back at the previous release and removes the new one; the push
// fails and the next push works.
func TestFailedSwitchRestoresSite(t *testing.T) {
	pauses := t.TempDir()
	t.Setenv("CONDUCTOR_TEST_PAUSE_DIR", pauses)
	in := StartInstance(t)
	const app = "unswitch"
	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "Procfile"), workerProcfile(sleepingWorker))
	setVersion(t, work, "v1")
	in.Commit(work, "v1")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("first push: %s", r)
	}
	v1, port, _ := in.currentRelease(app)

	writeFile(t, filepath.Join(pauses, "pause-at"), "switch:site")
	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	pushed := make(chan Result, 1)
	go func() { pushed <- in.Push(work, app, "main") }()
	paused := filepath.Join(pauses, "paused")
	waitFor(t, "the deploy to pause after writing the site", func() bool {
		_, err := os.Stat(paused)
		return err == nil
	})
	// nginx routes to the new release already.
	waitFor(t, "nginx to serve v2", func() bool {
		_, body, _ := in.Get(app, "/")
		return strings.Contains(body, "Hello from Conductor v2<")
	})
	must(t, "deploys:cancel", in.SSH(in.AdminKey, "deploys:cancel "+app))
	os.Remove(filepath.Join(pauses, "pause-at"))
	os.Remove(paused)
	r := <-pushed
	if r.Code == 0 {
		t.Fatalf("a deploy canceled before its commit point succeeded: %s", r)
	}
	newID := in.sqlite(`SELECT d.id FROM deploys d JOIN apps a ON a.id = d.app_id WHERE a.name = '` + app + `' ORDER BY d.created_at DESC, d.rowid DESC LIMIT 1`)
	if status := in.sqlite(`SELECT status FROM deploys WHERE id = '` + newID + `'`); status != "failed" {
		t.Errorf("deploy %s is %s, want failed", newID, status)
	}
	if cur, _, _ := in.currentRelease(app); cur != v1 {
		t.Errorf("current release %s, want %s", cur, v1)
	}
	// Right away, no restart: the site names v1 again.
	if _, body, h := in.Get(app, "/"); !strings.Contains(body, "Hello from Conductor v1<") || h.Get("X-Conductor-Release") != v1 {
		t.Errorf("GET / = %q (release %q), want v1", body, h.Get("X-Conductor-Release"))
	}
	if got, want := in.appWatchers(app), []string{app + "_web_" + port, app + "_worker_" + port}; !slices.Equal(got, want) {
		t.Errorf("watchers %v, want only v1's %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(in.Data, "srv", "projects", app, "releases", newID)); !os.IsNotExist(err) {
		t.Errorf("the canceled release's directory is left (%v)", err)
	}
	setVersion(t, work, "v3")
	in.Commit(work, "v3")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("push after the failed switch: %s", r)
	}
	if _, body, _ := in.Get(app, "/"); !strings.Contains(body, "Hello from Conductor v3<") {
		t.Errorf("GET / = %q, want v3", body)
	}
}

// TestKillDuringRollback: a rollback restores its release's config vars
// in the transaction that records it. Killed just before that record, the
// app keeps its config and release; killed just after, it has the rolled
// back release and its config, also after the restart.
func TestKillDuringRollback(t *testing.T) {
	pauses := t.TempDir()
	t.Setenv("CONDUCTOR_TEST_PAUSE_DIR", pauses)
	in := StartInstance(t)
	const app = "rollkill"
	work := in.WorkTree("hello")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	must(t, "config:set", in.SSH(in.AdminKey, "config:set "+app+" FLAVOR=old"))
	target, _, _ := in.currentRelease(app) // runs with FLAVOR=old
	must(t, "config:set", in.SSH(in.AdminKey, "config:set "+app+" FLAVOR=new"))
	flavor := func() string {
		var vars map[string]string
		if err := json.Unmarshal([]byte(must(t, "config", in.SSH(in.AdminKey, "config "+app+" --json"))), &vars); err != nil {
			t.Fatal(err)
		}
		return vars["FLAVOR"]
	}
	for _, c := range []struct {
		at, wantFlavor string
		committed      bool
	}{
		{"switch:served", "new", false},
		{"switch:committed", "old", true},
	} {
		before, _, _ := in.currentRelease(app)
		writeFile(t, filepath.Join(pauses, "pause-at"), c.at)
		os.Remove(filepath.Join(pauses, "paused"))
		done := make(chan Result, 1)
		go func() { done <- in.SSH(in.AdminKey, "rollback "+app+" "+target) }()
		waitFor(t, "the rollback to pause at "+c.at, func() bool {
			_, err := os.Stat(filepath.Join(pauses, "paused"))
			return err == nil
		})
		in.Kill()
		<-done
		os.Remove(filepath.Join(pauses, "pause-at"))
		in.Start()
		cur, _, _ := in.currentRelease(app)
		if (cur != before) != c.committed {
			t.Errorf("%s: current release %s (before %s), committed %v", c.at, cur, before, c.committed)
		}
		if got := flavor(); got != c.wantFlavor {
			t.Errorf("%s: FLAVOR=%q after the restart, want %q", c.at, got, c.wantFlavor)
		}
		waitFor(t, c.at+": nginx to serve "+cur, func() bool {
			_, _, h := in.Get(app, "/")
			return h.Get("X-Conductor-Release") == cur
		})
	}
}

// TestReconcileConverges: at start-up, whatever the files say, the host
// ends serving the recorded release: a current release's watcher whose
// file was lost is installed again from its process spec, a site that
// names another release is rewritten, a `current` link pointing elsewhere
// is set back, and a leftover watcher of no release goes.
func TestReconcileConverges(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	const app = "converge"
	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "Procfile"), workerProcfile(sleepingWorker))
	in.Commit(work, "web and worker")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	cur, port, dir := in.currentRelease(app)
	in.StopAll() // circusd and nginx too: they start afresh from the files
	watchers := filepath.Join(in.Data, "circus", "watchers")
	if err := os.Remove(filepath.Join(watchers, app+"_worker_"+port+".ini")); err != nil {
		t.Fatal(err)
	}
	web, err := os.ReadFile(filepath.Join(watchers, app+"_web_"+port+".ini"))
	if err != nil {
		t.Fatal(err)
	}
	// A watcher of no release (another port), as an interrupted deploy leaves it.
	stray := app + "_web_1999"
	writeFile(t, filepath.Join(watchers, stray+".ini"), strings.ReplaceAll(string(web), app+"_web_"+port, stray))
	// A route naming another release, as a deploy killed after its switch
	// and before its record leaves it.
	route := filepath.Join(in.Data, "nginx", "routes", app+".json")
	conf, err := os.ReadFile(route)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, route, strings.ReplaceAll(string(conf), cur, "20200101T000000-0badc0de"))
	link := filepath.Join(in.Data, "srv", "projects", app, "current")
	os.Remove(link)
	if err := os.Symlink("/tmp", link); err != nil {
		t.Fatal(err)
	}

	in.Start()
	if got, want := in.appWatchers(app), []string{app + "_web_" + port, app + "_worker_" + port}; !slices.Equal(got, want) {
		t.Errorf("watchers after the restart %v, want %v", got, want)
	}
	waitFor(t, "web and worker to run", func() bool {
		n := 0
		for _, e := range in.ps(app) {
			if e.Running == 1 && strings.HasSuffix(e.Watcher, "_"+port) {
				n++
			}
		}
		return n == 2
	})
	if got, _ := os.ReadFile(route); !strings.Contains(string(got), `"release":"`+cur+`"`) {
		t.Errorf("route %s, want release %s", got, cur)
	}
	waitFor(t, "nginx to serve "+cur, func() bool {
		_, _, h := in.Get(app, "/")
		return h.Get("X-Conductor-Release") == cur
	})
	if target, err := os.Readlink(link); err != nil || target != dir {
		t.Errorf("current -> %q (%v), want %s", target, err, dir)
	}
}
