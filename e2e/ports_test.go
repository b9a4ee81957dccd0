package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// foreignListener is another program on an app's port: it answers every
// request 200 and counts them.
type foreignListener struct {
	l    net.Listener
	hits atomic.Int64
}

func listenForeign(t *testing.T, port int) *foreignListener {
	t.Helper()
	f := &foreignListener{}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// The port may still be held by a release being retired.
	waitFor(t, "to listen on "+addr, func() bool {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			f.l = l
		}
		return err == nil
	})
	go func() {
		_ = http.Serve(f.l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.hits.Add(1)
			fmt.Fprint(w, "a foreign program")
		}))
	}()
	t.Cleanup(func() { f.l.Close() })
	return f
}

// appPorts reads an app's port pair from the state.
func appPorts(t *testing.T, in *Instance, app string) [2]int {
	t.Helper()
	out, err := exec.Command("sqlite3", filepath.Join(in.Data, "conductor.db"),
		"SELECT port_a || ' ' || port_b FROM apps WHERE name = '"+app+"'").CombinedOutput()
	if err != nil {
		t.Fatalf("read the ports of %s: %v\n%s", app, err, out)
	}
	var p [2]int
	if _, err := fmt.Sscan(string(out), &p[0], &p[1]); err != nil {
		t.Fatalf("ports of %s: %q: %v", app, out, err)
	}
	return p
}

var servedOn = regexp.MustCompile(`web: .* on port (\d+)`)

// lastPort is the port the push's output says the web process started on
// last.
func lastPort(t *testing.T, r Result) int {
	t.Helper()
	m := servedOn.FindAllStringSubmatch(r.Stdout+r.Stderr, -1)
	if len(m) == 0 {
		t.Fatalf("the push does not say which port web runs on: %s", r)
	}
	p, _ := strconv.Atoi(m[len(m)-1][1])
	return p
}

// TestPortTakenByAnotherProgram: another program listening on an app's idle
// port before a push, or taking it while the push builds, does not take the
// deploy: the release moves to a free port (recorded, and said in the push
// output), and the health check is not answered by the other program.
func TestPortTakenByAnotherProgram(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	const app = "portmove"
	work := in.WorkTree("hello")
	r := in.Push(work, app, "main")
	if r.Code != 0 {
		t.Fatalf("push v1: %s", r)
	}
	serving := lastPort(t, r)
	pair := appPorts(t, in, app)
	idle := pair[0]
	if idle == serving {
		idle = pair[1]
	}

	// Before the push: provision sees the listener and moves the port.
	before := listenForeign(t, idle)
	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	r = in.Push(work, app, "main")
	if r.Code != 0 {
		t.Fatalf("push v2 with port %d taken: %s", idle, r)
	}
	if want := fmt.Sprintf("Port %d is taken (another program listens on it): this release moves to port", idle); !strings.Contains(r.Stdout+r.Stderr, want) {
		t.Errorf("the push does not say %q: %s", want, r)
	}
	moved := lastPort(t, r)
	if moved == idle || moved == serving {
		t.Errorf("v2 runs on port %d (taken %d, v1's %d)", moved, idle, serving)
	}
	if got := appPorts(t, in, app); got != [2]int{serving, moved} && got != [2]int{moved, serving} {
		t.Errorf("the app's ports are %v, want %d and %d", got, serving, moved)
	}
	if _, body, _ := in.Get(app, "/"); !strings.Contains(body, "Hello from Conductor v2<") {
		t.Errorf("after v2: GET / = %q", body)
	}
	if n := before.hits.Load(); n != 0 {
		t.Errorf("the other program on port %d got %d requests", idle, n)
	}

	// During the build: the release phase runs after provision; the other
	// program takes the port v1 served on (now idle) meanwhile, and answers
	// the health check before the release's own processes could.
	final, during := in.pushWhilePortTaken(t, work, app, "v3", "", serving, moved)
	for range 4 {
		if code, body, _ := in.Get(app, "/"); code != 200 || !strings.Contains(body, "Hello from Conductor v3<") {
			t.Errorf("after v3: GET / = %d %q (the other program answers %d requests)", code, body, during.hits.Load())
		}
	}
	if got := appPorts(t, in, app); got != [2]int{final, moved} && got != [2]int{moved, final} {
		t.Errorf("the app's ports are %v, want %d and %d", got, moved, final)
	}

	// The same with a worker, whose check runs beside the web's: the move
	// waits for it to end, then starts both on the new port; the worker
	// started on the taken port and removed by the move does not fail the
	// push.
	writeFile(t, filepath.Join(work, "portmove_worker.py"), `import os, time, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hello.settings")
django.setup()
while True:
    time.sleep(1)
`)
	in.pushWhilePortTaken(t, work, app, "v4", "worker: python portmove_worker.py\n", moved, final)
	// One worker runs: the one started on the new port.
	waitFor(t, "one worker of "+app, func() bool {
		out, _ := exec.Command("pgrep", "-f", "python portmove_worker.py").Output()
		return len(strings.Fields(string(out))) == 1
	})
}

// pushWhilePortTaken pushes version with a slow release phase (and the
// Procfile lines extra), has another program take port meanwhile, and
// checks that the push succeeded by moving the release off it, to a port
// other than other (the serving release's), and that the new version
// answers; it returns the port the release runs on and the other program.
func (in *Instance) pushWhilePortTaken(t *testing.T, work, app, version, extra string, port, other int) (int, *foreignListener) {
	t.Helper()
	pushed := in.pushSlowReleaseWith(t, work, app, version, 3, extra)
	taker := listenForeign(t, port)
	var r Result
	select {
	case r = <-pushed:
	case <-time.After(5 * time.Minute):
		t.Fatalf("push %s did not end", version)
	}
	if r.Code != 0 {
		t.Fatalf("push %s with port %d taken during the build: %s", version, port, r)
	}
	if want := fmt.Sprintf("Port %d is taken (another program answered the health check on it): this release moves to port", port); !strings.Contains(r.Stdout+r.Stderr, want) {
		t.Errorf("the push does not say %q: %s", want, r)
	}
	moved := lastPort(t, r)
	if moved == port || moved == other {
		t.Errorf("%s runs on port %d (taken %d, the previous release's %d)", version, moved, port, other)
	}
	if code, body, _ := in.Get(app, "/"); code != 200 || !strings.Contains(body, "Hello from Conductor "+version+"<") {
		t.Errorf("after %s: GET / = %d %q (the other program answers %d requests)", version, code, body, taker.hits.Load())
	}
	return moved, taker
}
