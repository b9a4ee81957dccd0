package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPushEndsBeforeRetire: a push ends once its release is live, not when
// the previous release has finished its requests. A request the previous
// release is still serving (it waits for a file the test makes only after
// the push returned) keeps it from being retired; the push returns anyway,
// the request then ends well (retire drained it, nothing reset it), and
// `logs --build` shows the retire that followed the push's end.
func TestPushEndsBeforeRetire(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	const app = "retirelate"
	gate, err := os.MkdirTemp("", "conductor-gate-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(gate) })
	if err := os.Chmod(gate, 0o755); err != nil { // the app's user looks in it
		t.Fatal(err)
	}
	open := filepath.Join(gate, "open")

	work := in.WorkTree("hello")
	views := filepath.Join(work, "greetings", "views.py")
	writeFile(t, views, readFile(t, views)+fmt.Sprintf(`

def slow(request):
    import sys, time
    print("slow request started", flush=True)
    sys.stderr.flush()
    deadline = time.monotonic() + 120
    while not os.path.exists(%q) and time.monotonic() < deadline:
        time.sleep(0.02)
    return HttpResponse("slow request done", content_type="text/plain")
`, open))
	urls := filepath.Join(work, "hello", "urls.py")
	writeFile(t, urls, strings.Replace(readFile(t, urls), `path("health", views.health, name="health"),`,
		`path("health", views.health, name="health"),
    path("slow", views.slow, name="slow"),`, 1))
	in.Commit(work, "a slow view")
	if r := in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("push v1: %s", r)
	}
	_, oldPort, _ := in.currentRelease(app)

	type answer struct {
		code int
		body string
	}
	slowDone := make(chan answer, 1)
	go func() {
		code, body, _ := getWithin(in.HTTPAddr, app, "/slow", 3*time.Minute)
		slowDone <- answer{code, body}
	}()
	webLog := filepath.Join(in.Data, "srv", "projects", app, "logs", "web.log")
	waitFor(t, "the slow request to reach v1", func() bool {
		data, _ := os.ReadFile(webLog)
		return strings.Contains(string(data), "slow request started")
	})

	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	r := in.Push(work, app, "main")
	if r.Code != 0 {
		t.Fatalf("push v2: %s", r)
	}
	select {
	case a := <-slowDone:
		t.Fatalf("the slow request ended (%d %q) before the push returned: it was never held", a.code, a.body)
	default:
	}
	if !strings.Contains(r.Stderr, "-----> Deployed "+app) || strings.Contains(r.Stderr, "Retiring the previous release") {
		t.Errorf("the push should end at its Deployed line, before retiring v1:\n%s", r.Stderr)
	}
	if code, body, _ := in.Get(app, "/"); code != 200 || !strings.Contains(body, "Hello from Conductor v2<") {
		t.Errorf("after the push: GET / = %d %q, want v2", code, body)
	}
	// v1 is still draining: its web watcher runs until the request ends.
	if got := in.appWatchers(app); !slices.Contains(got, app+"_web_"+oldPort) {
		t.Errorf("watchers while v1 serves its last request: %v, want %s among them", got, app+"_web_"+oldPort)
	}

	if err := os.WriteFile(open, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-slowDone:
		if a.code != 200 || a.body != "slow request done" {
			t.Errorf("the slow request on v1 ended %d %q, want 200 and its answer", a.code, a.body)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the slow request did not end")
	}
	_, newPort, _ := in.currentRelease(app)
	waitFor(t, "v1's watchers to go", func() bool {
		return slices.Equal(in.appWatchers(app), []string{app + "_web_" + newPort})
	})
	logs := in.SSH(in.AdminKey, "logs "+app+" --build")
	inOrder(t, logs.Stdout, "Release v2 is live", "-----> Deployed "+app, "-----> Retiring the previous release", "-----> Deploy succeeded")
}
