package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestKillWorkerAtEveryStep is TestKillAtEveryStep for an app on a worker
// host: the `conductor worker` whose builder runs the deploy is SIGKILLed
// while the deploy is paused at a point (builder's test hook), serve runs
// on. The push, still following the job's log on serve, ends when the
// worker is back: its start-up reconcile fails the deploy (before the
// commit point: the push fails) or ends its log as live (after it: the
// push succeeds). Then the invariant holds as serve's state records it
// (current release, deploys, releases) and on the worker (nginx, route
// file, `current`, watchers, processes), the app served every request
// meanwhile, and the next push works. Killed at switch:served, two
// requests the new release holds (one in a view, one in its accept queue)
// are answered: the reconcile that points the route back waits for them
// before it stops that release. A worker restart takes a second or two,
// so this covers all of TestKillAtEveryStep's points.
func TestKillWorkerAtEveryStep(t *testing.T) {
	pauses := t.TempDir()
	t.Setenv("CONDUCTOR_TEST_PAUSE_DIR", pauses) // serve's builder runs no job of this app
	natsAddr := freeAddr(t)
	in := StartInstance(t, "--nats-addr", natsAddr)
	w := in.StartWorker(t, "nats://"+natsAddr, filepath.Join(in.Data, "nats.token"), filepath.Join(in.Data, "nats-tls", "ca.pem"), "w1")
	in.waitHosts(t, "local", "w1")
	const app = "atomicw"
	if r := in.SSH(in.AdminKey, "apps:create "+app+" --host w1"); r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}
	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "Procfile"), workerProcfile(sleepingWorker))
	gate := addGatedView(t, work)
	setVersion(t, work, "v0")
	in.Commit(work, "web and worker")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("first push: %s", r)
	}
	// The worker's nginx, circusd and the app outlive the killed worker.
	l := startLoadAt(w.HTTPAddr, app, 2, 10*time.Minute, 1000000)
	serving := "v0"
	for i, p := range killPoints {
		start := time.Now()
		version := fmt.Sprintf("v%d", i+1)
		prevID, _, _ := in.currentRelease(app)
		pushed, newID := pushPaused(t, in, pauses, work, app, version, p.at)
		// Killed here, the restart's reconcile points the route back and
		// stops the new release, which nginx sent requests to meanwhile.
		var held <-chan error
		if p.at == "switch:served" {
			held = holdRequests(t, w, app, gate, version)
		}
		w.Kill()
		os.Remove(filepath.Join(pauses, "pause-at"))
		mark := len(w.out.String())
		w.Start()
		if held != nil {
			// Let the held requests finish once reconcile waits for them
			// (or, without that wait, once it is done).
			waitFor(t, p.at+": the reconcile to wait for the requests it would cut", func() bool {
				log := w.out.String()[mark:]
				return strings.Contains(log, "letting requests to releases nginx no longer routes to finish") || strings.Contains(log, "worker is serving")
			})
			writeFile(t, filepath.Join(gate, "go"), "")
			for range 2 {
				if err := <-held; err != nil {
					t.Errorf("%s: a request the new release was serving when the worker restarted: %v", p.at, err)
				}
			}
		}
		waitFor(t, p.at+": the worker to serve again", func() bool {
			return strings.Contains(w.out.String()[mark:], "worker is serving")
		})
		// The pusher learns the outcome from the restarted worker's
		// reconcile, not from a redelivery a minute later.
		var r Result
		select {
		case r = <-pushed:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: the push did not end within 30 s of the worker's restart", p.at)
		}
		if p.committed {
			serving = version
			if r.Code != 0 {
				t.Errorf("%s: the push of a deploy killed after its commit point failed: %s", p.at, r)
			}
		} else if r.Code == 0 || !strings.Contains(r.Stderr, "the builder stopped during this deploy") {
			t.Errorf("%s: the push of a deploy killed before its commit point: %s", p.at, r)
		}
		in.checkKilledDeploy(t, deployHost{w.Data, w.HTTPAddr}, app, p, prevID, newID, serving)
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("%s: push, kill, restart and checks took %s", p.at, time.Since(start).Round(time.Millisecond))
	}
	l.check(t, "the worker's kills and restarts", false) // a switch changes the route only: no reload
	// The next push works.
	setVersion(t, work, "final")
	in.Commit(work, "final")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("push after the kills: %s", r)
	}
	if _, body, _ := getAt(w.HTTPAddr, app, "/"); !strings.Contains(body, "Hello from Conductor final<") {
		t.Errorf("GET / = %q, want the final version", body)
	}
	in.waitRetired(t, app)
	_, port, _ := in.currentRelease(app)
	if got, want := watchersIn(w.Data, app), []string{app + "_web_" + port, app + "_worker_" + port}; !slices.Equal(got, want) {
		t.Errorf("watchers after the last push %v, want %v", got, want)
	}
}

// addGatedView adds GET /slow to the hello app in work: it says it started
// (<gate>/started) and answers only once <gate>/go exists. gate is made
// for the app's user to use.
func addGatedView(t *testing.T, work string) string {
	t.Helper()
	gate, err := os.MkdirTemp("", "conductor-e2e-gate-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(gate) })
	if err := os.Chmod(gate, 0o777); err != nil {
		t.Fatal(err)
	}
	views, err := os.ReadFile(filepath.Join(work, "greetings", "views.py"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work, "greetings", "views.py"), string(views)+fmt.Sprintf(`

def slow(request):
    import time
    open(os.path.join(%[1]q, "started"), "w").close()
    while not os.path.exists(os.path.join(%[1]q, "go")):
        time.sleep(0.02)
    return HttpResponse("slow done " + VERSION, content_type="text/plain")
`, gate))
	urls, err := os.ReadFile(filepath.Join(work, "hello", "urls.py"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work, "hello", "urls.py"), strings.Replace(string(urls), "urlpatterns = [\n", "urlpatterns = [\n    path(\"slow\", views.slow),\n", 1))
	return gate
}

// holdRequests sends two GET /slow through the worker's nginx to the
// release its route names now (that of version): the web process (one
// sync worker) holds the first in the view until <gate>/go exists, the
// second waits in its accept queue. Each request's error (nil: answered
// 200 by that version) comes on the channel.
func holdRequests(t *testing.T, w *Worker, app, gate, version string) <-chan error {
	t.Helper()
	for _, f := range []string{"started", "go"} {
		os.Remove(filepath.Join(gate, f))
	}
	var route struct{ Upstream string }
	raw, err := os.ReadFile(filepath.Join(w.Data, "nginx", "routes", app+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &route); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(route.Upstream, ":")
	done := make(chan error, 2)
	get := func() {
		// Longer than circus gives a stopping process (graceful_timeout).
		code, body, _ := getWithin(w.HTTPAddr, app, "/slow", 30*time.Second)
		if code != 200 || body != "slow done "+version {
			done <- fmt.Errorf("GET /slow = %d %q", code, body)
			return
		}
		done <- nil
	}
	go get()
	waitFor(t, "the first slow request to be in the view", func() bool {
		_, err := os.Stat(filepath.Join(gate, "started"))
		return err == nil
	})
	go get()
	// Its connection is accepted by the kernel, not yet by gunicorn: two
	// connections are open to the port (the load's come and go).
	waitFor(t, "the second slow request to wait in the accept queue", func() bool {
		out, _ := exec.Command("ss", "-Htn", "state", "established", "( sport = :"+port+" )").Output()
		return strings.Count(string(out), "\n") >= 2
	})
	return done
}
