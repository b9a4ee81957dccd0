package e2e

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMaintenance: maintenance:on makes the front nginx answer 503 with
// Retry-After and the plain page with the (escaped) message, while the
// static files are still served and `run` still uses the app; a push in
// maintenance deploys and stays in it, now with the repository's
// maintenance.html; a conductor restart keeps it; maintenance:off routes to
// the app again. A developer of another app cannot toggle it, and a bad
// message is refused with nothing changed.
func TestMaintenance(t *testing.T) {
	in := StartInstance(t)
	const app = "maint"
	work := in.WorkTree("hello")
	setVersion(t, work, "m1")
	in.Commit(work, "m1")
	in.pushOK(work, app)

	// Bob develops another app.
	bob := in.NewKey("bob")
	must(t, "keys:add bob", in.SSHIn(in.AdminKey, "keys:add bob", readFile(t, bob+".pub")))
	must(t, "apps:create other", in.SSH(in.AdminKey, "apps:create other"))
	must(t, "access:grant", in.SSH(in.AdminKey, "access:grant other bob"))

	state := func() map[string]any {
		t.Helper()
		var m map[string]any
		out := must(t, "maintenance --json", in.SSH(in.AdminKey, "maintenance "+app+" --json"))
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatalf("maintenance --json: %v\n%s", err, out)
		}
		return m
	}
	serving := func(version string) {
		t.Helper()
		if code, body, _ := in.Get(app, "/"); code != 200 || !strings.Contains(body, "Hello from Conductor "+version) {
			t.Fatalf("GET / = %d, want the app's %s:\n%s", code, version, body)
		}
	}
	inMaintenance := func(want string) {
		t.Helper()
		code, body, h := in.Get(app, "/some/page?x=1")
		if code != 503 || h.Get("Retry-After") != "60" || !strings.Contains(body, want) {
			t.Fatalf("GET /some/page in maintenance = %d Retry-After %q, want 503 with %q:\n%s", code, h.Get("Retry-After"), want, body)
		}
		if code, body, _ := in.Get(app, "/static/hello.css"); code != 200 || body == "" {
			t.Fatalf("GET /static/hello.css in maintenance = %d %q, want the file", code, body)
		}
	}

	// Refused, and nothing changes: another app's developer, bad values.
	for _, r := range []Result{
		in.SSH(bob, "maintenance:on "+app),
		in.SSH(bob, "maintenance "+app),
		in.SSH(in.AdminKey, "maintenance:on "+app+" --message 'bell\a here'"),
		in.SSH(in.AdminKey, "maintenance:on "+app+" --message "+strings.Repeat("x", 501)),
		in.SSH(in.AdminKey, "maintenance:on "+app+" --message ''"),
		in.SSH(in.AdminKey, "maintenance:on "+app+" --retry-after 0"),
		in.SSH(in.AdminKey, "maintenance:on "+app+" --retry-after soon"),
	} {
		if r.Code == 0 || !strings.Contains(r.Stderr, "error:") {
			t.Errorf("a bad maintenance:on was not refused: %s", r)
		}
	}
	if r := in.SSH(bob, "maintenance:on "+app); !strings.Contains(r.Stderr, `app "maint" not found`) {
		t.Errorf("bob's maintenance:on: %s", r)
	}
	if m := state(); m["on"] != false {
		t.Fatalf("maintenance after refused commands: %v", m)
	}
	serving("m1")

	// On: the plain page with the escaped message, at once.
	start := time.Now()
	out := must(t, "maintenance:on", in.SSH(in.AdminKey, "maintenance:on "+app+" --message 'Upgrading <the db> & back at 5'"))
	t.Logf("maintenance:on took %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	inMaintenance("Upgrading &lt;the db&gt; &amp; back at 5")
	if m := state(); m["on"] != true || m["message"] != "Upgrading <the db> & back at 5" || m["by"] != "admin" {
		t.Errorf("maintenance --json while on: %v", m)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+in.HTTPAddr+"/form/", strings.NewReader("a=1"))
	req.Host = app + ".localhost"
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 503 {
		t.Errorf("POST in maintenance: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// The app itself runs on: run reaches its database.
	if r := in.SSH(in.AdminKey, "run "+app+` -- python manage.py shell -c "from greetings.models import Greeting; print('rows', Greeting.objects.count())"`); r.Code != 0 || !strings.Contains(r.Stdout, "rows ") {
		t.Errorf("run in maintenance: %s", r)
	}

	// A push in maintenance deploys, stays in maintenance and serves the
	// repository's maintenance.html.
	writeFile(t, filepath.Join(work, "maintenance.html"), "<html><body>Our own maintenance page</body></html>\n")
	setVersion(t, work, "m2")
	in.Commit(work, "m2 with a maintenance page")
	in.pushOK(work, app)
	inMaintenance("Our own maintenance page")

	// A conductor restart keeps it.
	in.Stop()
	in.Start()
	inMaintenance("Our own maintenance page")

	start = time.Now()
	must(t, "maintenance:off", in.SSH(in.AdminKey, "maintenance:off "+app))
	t.Logf("maintenance:off took %s", time.Since(start).Round(time.Millisecond))
	serving("m2")
	if code, _, h := in.Get(app, "/"); code != 200 || h.Get("Retry-After") != "" {
		t.Errorf("after maintenance:off: %d Retry-After %q", code, h.Get("Retry-After"))
	}
	if m := state(); m["on"] != false {
		t.Errorf("maintenance --json after off: %v", m)
	}

	// A mode recorded while conductor was down (a toggle cut short after
	// its record) is what the start-up reconcile serves.
	in.Stop()
	in.sqlite(`INSERT INTO app_maintenance (app_id, message, retry_after) SELECT id, 'Recorded while down', 60 FROM apps WHERE name = '` + app + `'`)
	in.Start()
	inMaintenance("Our own maintenance page")
	must(t, "maintenance:off", in.SSH(in.AdminKey, "maintenance:off "+app))
	serving("m2")

	audit := must(t, "audit", in.SSH(in.AdminKey, "audit"))
	for _, want := range []string{"maintenance:on", "maintenance:off"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
}

// TestMaintenanceOnWorker: an app on a worker's host goes into and out of
// maintenance at once (its host's agent rewrites the site there), and the
// worker's restart keeps the mode (its reconcile reads it over NATS).
func TestMaintenanceOnWorker(t *testing.T) {
	natsAddr := freeAddr(t)
	in := StartInstance(t, "--nats-addr", natsAddr)
	w := in.StartWorker(t, "nats://"+natsAddr, filepath.Join(in.Data, "nats.token"), filepath.Join(in.Data, "nats-tls", "ca.pem"), "w1")
	in.waitHosts(t, "local", "w1")
	must(t, "apps:create", in.SSH(in.AdminKey, "apps:create remote-maint --host w1"))
	work := in.WorkTree("hello")
	in.pushOK(work, "remote-maint")
	if code, body := w.Get("remote-maint", "/"); code != 200 || !strings.Contains(body, "Hello from Conductor") {
		t.Fatalf("remote-maint on w1: %d %q", code, body)
	}
	must(t, "maintenance:on", in.SSH(in.AdminKey, "maintenance:on remote-maint --message 'Moving house'"))
	if code, body := w.Get("remote-maint", "/"); code != 503 || !strings.Contains(body, "Moving house") {
		t.Fatalf("remote-maint on w1 in maintenance: %d %q", code, body)
	}
	if code, _ := w.Get("remote-maint", "/static/hello.css"); code != 200 {
		t.Errorf("static file on w1 in maintenance: %d", code)
	}
	w.Stop()
	w.Start()
	// Its agent answers once the restarted worker serves.
	waitFor(t, "the restarted worker's agent", func() bool { return in.SSH(in.AdminKey, "ps remote-maint").Code == 0 })
	if code, body := w.Get("remote-maint", "/"); code != 503 || !strings.Contains(body, "Moving house") {
		t.Fatalf("remote-maint on w1 after the worker's restart: %d %q", code, body)
	}
	must(t, "maintenance:off", in.SSH(in.AdminKey, "maintenance:off remote-maint"))
	if code, body := w.Get("remote-maint", "/"); code != 200 || !strings.Contains(body, "Hello from Conductor") {
		t.Fatalf("remote-maint on w1 after maintenance:off: %d %q", code, body)
	}
}
