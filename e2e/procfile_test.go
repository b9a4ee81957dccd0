package e2e

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// webPortRE finds the port the start step gave the new web process.
var webPortRE = regexp.MustCompile(`web: .* on port (\d+)`)

func webPort(t *testing.T, r Result) string {
	t.Helper()
	m := webPortRE.FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("no web port in the push output:\n%s", r.Stderr)
	}
	return m[1]
}

// listening tells whether something accepts connections on a local port.
func listening(port string) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
	if err == nil {
		c.Close()
		return true
	}
	return !errors.Is(err, syscall.ECONNREFUSED)
}

// startSh is a wrapper script that does not exec: gunicorn is its child,
// as in many real projects' start scripts.
const startSh = `#!/bin/bash
echo "wrapper starting on port $PORT"
gunicorn hello.wsgi --log-file -
`

func healthJSON(content string, attempts int) string {
	return `{"name": "hello", "healthchecks": {"web": [{"type": "startup", "name": "ready", "path": "/health",` +
		` "content": "` + content + `", "attempts": ` + strconv.Itoa(attempts) + `, "timeout": 5, "wait": 0}]}}` + "\n"
}

// TestProcfileShellAndHealthchecks pushes Procfiles as Heroku runs them
// (bash -c: pipes, &&, VAR=value, $PORT, a wrapper script) and app.json
// health checks, over real SSH and git: a passing check deploys, a wrong
// one fails the push with its reason while the old release serves and
// leaves nothing on the failed release's port, a retired wrapper's
// gunicorn stops with it, CONDUCTOR_HEALTHCHECK overrides app.json, and a
// worker-only app deploys.
func TestProcfileShellAndHealthchecks(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	const app = "shellproc"
	work := in.WorkTree("hello")
	procfile := `web: test -n "$PORT" && GREETING="port $PORT" bash start.sh` + "\n" +
		`worker: echo "worker $((6*7)) ready" | tr a-z A-Z && exec python -u -c "import time; time.sleep(100000)"` + "\n" +
		`release: yes "yes" | python manage.py migrate --noinput && echo "release ran as $(id -un)"` + "\n"
	writeFile(t, filepath.Join(work, "Procfile"), procfile)
	writeFile(t, filepath.Join(work, "start.sh"), startSh)
	writeFile(t, filepath.Join(work, "app.json"), healthJSON("ok", 5))
	in.Commit(work, "shell procfile and health check")

	r := in.pushOK(work, app)
	for _, want := range []string{`Health check: GET /health expecting "ok", 5 attempts (from app.json)`, "GET /health answered 200", "release ran as "} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("push output lacks %q:\n%s", want, r.Stderr)
		}
	}
	if strings.Contains(r.Stderr, "release ran as root") {
		t.Errorf("the release command ran as root:\n%s", r.Stderr)
	}
	port1 := webPort(t, r)
	// VAR=value and $PORT reached the web process through the wrapper.
	if code, body, _ := in.Get(app, "/"); code != 200 || !strings.Contains(body, "greeting: port "+port1+"<") {
		t.Errorf("GET / = %d %q, want the greeting set by the Procfile with port %s", code, body, port1)
	}
	waitFor(t, "the piped worker's output in its log", func() bool {
		r := in.SSH(in.AdminKey, "logs "+app+" --process worker -n 50")
		return strings.Contains(r.Stdout, "WORKER 42 READY")
	})
	logs := must(t, "logs", in.SSH(in.AdminKey, "logs "+app+" --process web -n 50"))
	if !strings.Contains(logs, "wrapper starting on port "+port1) {
		t.Errorf("web log lacks the wrapper's output:\n%s", logs)
	}

	t.Run("wrong health check content fails the push and leaves nothing on its port", func(t *testing.T) {
		writeFile(t, filepath.Join(work, "app.json"), healthJSON("not on the page", 2))
		in.Commit(work, "wrong health check")
		r := in.Push(work, app, "main")
		want := `health check "ready" (GET /health) of the new release failed after 2 attempts (last answer: answered 200 without "not on the page")`
		if r.Code == 0 || !strings.Contains(r.Stderr, want) {
			t.Fatalf("push: want a failure with %q, got %s", want, r)
		}
		failed := webPort(t, r)
		// The wrapper's gunicorn does not outlive its watcher.
		if listening(failed) {
			t.Errorf("something still listens on port %s after the failed deploy", failed)
		}
		if code, body, _ := in.Get(app, "/"); code != 200 || !strings.Contains(body, "greeting: port "+port1+"<") {
			t.Errorf("GET / = %d %q, want the old release serving", code, body)
		}
	})

	t.Run("invalid app.json healthchecks fail the push naming the field", func(t *testing.T) {
		writeFile(t, filepath.Join(work, "app.json"), `{"healthchecks": {"web": [{"path": "/health", "attempts": "5"}]}}`)
		in.Commit(work, "invalid health check")
		r := in.Push(work, app, "main")
		want := "app.json healthchecks.web[0].attempts: want a whole number from 1 to 100"
		if r.Code == 0 || !strings.Contains(r.Stderr, want) || strings.Contains(r.Stderr, "Installing dependencies") {
			t.Fatalf("push: want an early failure with %q, got %s", want, r)
		}
	})

	t.Run("a retired wrapper's gunicorn stops with its watcher", func(t *testing.T) {
		writeFile(t, filepath.Join(work, "app.json"), healthJSON("ok", 5))
		setVersion(t, work, "v3") // a change even when the subtests before were skipped
		in.Commit(work, "good health check again")
		r := in.pushOK(work, app)
		port2 := webPort(t, r)
		if port2 == port1 {
			t.Fatalf("the new release took the serving port %s", port1)
		}
		// The stop signal reaches the wrapper's gunicorn (stop_children):
		// it stops within moments, not when what is left is killed after
		// circus's graceful timeout (10 s) and more.
		start := time.Now()
		for listening(port1) {
			if time.Since(start) > 8*time.Second {
				t.Fatalf("port %s of the retired release still listens %s after the push", port1, time.Since(start).Round(time.Millisecond))
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("the retired release's port was free %s after the push returned", time.Since(start).Round(time.Millisecond))
		port1 = port2
	})

	t.Run("CONDUCTOR_HEALTHCHECK overrides app.json", func(t *testing.T) {
		r := in.SSH(in.AdminKey, "config:set "+app+" CONDUCTOR_HEALTHCHECK=health")
		if r.Code == 0 || !strings.Contains(r.Stderr+r.Stdout, "CONDUCTOR_HEALTHCHECK") {
			t.Errorf("config:set of an invalid CONDUCTOR_HEALTHCHECK: want a refusal naming it, got %s", r)
		}
		if got := in.SSH(in.AdminKey, "config:get "+app+" CONDUCTOR_HEALTHCHECK"); got.Code == 0 && strings.TrimSpace(got.Stdout) != "" {
			t.Errorf("the refused value was stored: %s", got)
		}
		must(t, "config:set none", in.SSH(in.AdminKey, "config:set "+app+" CONDUCTOR_HEALTHCHECK=none"))
		writeFile(t, filepath.Join(work, "app.json"), healthJSON("not on the page", 1))
		in.Commit(work, "wrong health check, skipped")
		r = in.pushOK(work, app)
		if !strings.Contains(r.Stderr, "Health check skipped (from the CONDUCTOR_HEALTHCHECK config var)") {
			t.Errorf("push output lacks the skipped check:\n%s", r.Stderr)
		}
		out := must(t, "config:set a path", in.SSH(in.AdminKey, "config:set "+app+" 'CONDUCTOR_HEALTHCHECK=/health ok'"))
		if !strings.Contains(out, `Health check: GET /health expecting "ok", 5 attempts (from the CONDUCTOR_HEALTHCHECK config var)`) ||
			!strings.Contains(out, "GET /health answered 200") {
			t.Errorf("config:set's restart was not checked by CONDUCTOR_HEALTHCHECK:\n%s", out)
		}
		if code, _, _ := in.Get(app, "/"); code != 200 {
			t.Errorf("GET / = %d after the restart checked by CONDUCTOR_HEALTHCHECK", code)
		}
	})

	t.Run("a worker-only app deploys", func(t *testing.T) {
		w := in.WorkTree("hello")
		writeFile(t, filepath.Join(w, "Procfile"), `worker: echo "only a worker" && exec python -u -c "import time; time.sleep(100000)"`+"\n")
		if err := os.Remove(filepath.Join(w, "hello", "wsgi.py")); err != nil {
			t.Fatal(err)
		}
		in.Commit(w, "worker only")
		r := in.pushOK(w, "workeronly")
		if !strings.Contains(r.Stderr, "No web process in the Procfile") {
			t.Errorf("push output lacks the worker-only note:\n%s", r.Stderr)
		}
		waitFor(t, "the worker's output", func() bool {
			return strings.Contains(in.SSH(in.AdminKey, "logs workeronly --process worker -n 20").Stdout, "only a worker")
		})
	})
}
