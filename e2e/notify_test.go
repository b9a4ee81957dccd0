package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookRequest is one POST a test receiver got.
type hookRequest struct {
	Path   string
	Header http.Header
	Body   []byte
	Event  map[string]any
	Answer int
}

// hookReceiver is a real HTTP receiver on loopback: /ok answers 200,
// /flaky 500 twice then 200, /down always 500.
type hookReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	got   []hookRequest
	flaky int
	more  chan struct{}
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{more: make(chan struct{}, 100)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		code := http.StatusOK
		switch req.URL.Path {
		case "/flaky":
			if r.flaky++; r.flaky <= 2 {
				code = http.StatusInternalServerError
			}
		case "/down":
			code = http.StatusInternalServerError
		}
		h := hookRequest{Path: req.URL.Path, Header: req.Header.Clone(), Body: body, Answer: code}
		_ = json.Unmarshal(body, &h.Event)
		r.got = append(r.got, h)
		r.mu.Unlock()
		r.more <- struct{}{}
		w.WriteHeader(code)
		io.WriteString(w, "thanks")
	}))
	t.Cleanup(r.Close)
	return r
}

// wait returns the requests to path until cond holds for them (60 s).
func (r *hookReceiver) wait(t *testing.T, what string, path string, cond func([]hookRequest) bool) []hookRequest {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		r.mu.Lock()
		var got []hookRequest
		for _, h := range r.got {
			if h.Path == path {
				got = append(got, h)
			}
		}
		r.mu.Unlock()
		if cond(got) {
			return got
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; %s got %d requests", what, path, len(got))
		}
	}
}

// withEvent is a condition: some request carries event ev.
func withEvent(ev string) func([]hookRequest) bool {
	return func(hs []hookRequest) bool { return findEvent(hs, ev) != nil }
}

func findEvent(hs []hookRequest, ev string) *hookRequest {
	for i := range hs {
		if hs[i].Event["event"] == ev {
			return &hs[i]
		}
	}
	return nil
}

// checkSignature verifies a delivery as a receiver would: HMAC-SHA256 with
// the subscription's secret of "<timestamp>.<body>", a recent timestamp.
func checkSignature(t *testing.T, h *hookRequest, secret string) {
	t.Helper()
	ts := h.Header.Get("X-Conductor-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		t.Errorf("timestamp %q is not a recent Unix time", ts)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(h.Body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	if got := h.Header.Get("X-Conductor-Signature"); !hmac.Equal([]byte(got), []byte(want)) {
		t.Errorf("signature %q, want %q", got, want)
	}
}

type notifyAdded struct {
	Subscription struct {
		ID int64 `json:"id"`
	} `json:"subscription"`
	Secret string `json:"secret"`
}

func addHook(t *testing.T, in *Instance, key, args string) notifyAdded {
	t.Helper()
	var a notifyAdded
	out := must(t, "notify:add "+args, in.SSH(key, "notify:add "+args+" --json"))
	if err := json.Unmarshal([]byte(out), &a); err != nil || a.Secret == "" || a.Subscription.ID == 0 {
		t.Fatalf("notify:add --json: %v\n%s", err, out)
	}
	return a
}

type notifyListed struct {
	ID         int64  `json:"id"`
	URL        string `json:"url"`
	App        string `json:"app"`
	Failed     int    `json:"failed"`
	Deliveries []struct {
		Event    string `json:"event"`
		Status   string `json:"status"`
		Attempts int    `json:"attempts"`
		Code     int    `json:"response_code"`
		Error    string `json:"error"`
	} `json:"deliveries"`
}

func listHooks(t *testing.T, in *Instance, key string) map[int64]notifyListed {
	t.Helper()
	out := must(t, "notify --json", in.SSH(key, "notify --json"))
	var l []notifyListed
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("notify --json: %v\n%s", err, out)
	}
	m := map[int64]notifyListed{}
	for _, e := range l {
		m[e.ID] = e
	}
	return m
}

// TestNotifications: deploy events delivered signed to a real receiver,
// retries with backoff on 500, failures listed by notify, notify:test,
// and who may subscribe to what.
func TestNotifications(t *testing.T) {
	recv := newHookReceiver(t)
	// The receiver is on loopback, which the default policy refuses; a
	// short backoff keeps the retries quick (50+100+200+400 ms); circus's
	// pids are looked at every 200 ms for process.crashing.
	t.Setenv("CONDUCTOR_CRASH_CHECK_INTERVAL", "200ms")
	t.Setenv("CONDUCTOR_CRASH_RESTARTS", "2") // more than 2: 3 respawns, ~15 s
	in := StartInstance(t, "--notify-allow-private", "--notify-backoff", "50ms", "--notify-attempts", "5")
	admin := in.AdminKey

	ok := addHook(t, in, admin, recv.URL+"/ok --events deploy.succeeded,deploy.failed")
	flaky := addHook(t, in, admin, recv.URL+"/flaky --events deploy.succeeded")
	down := addHook(t, in, admin, recv.URL+"/down --events deploy.failed")
	refused(t, "bad URL", in.SSH(admin, "notify:add ftp://example.com/x"), "http:// or https://")
	refused(t, "URL with a password", in.SSH(admin, "notify:add https://u:p@example.com/x"), "user or password")
	refused(t, "unknown event", in.SSH(admin, "notify:add https://example.com/x --events deploy.maybe"), "unknown event")

	work := in.WorkTree("hello")
	start := time.Now()
	if r := in.Push(work, "notified", "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	pushTook := time.Since(start)
	rev := strings.TrimSpace(in.mustGit(work, "rev-parse", "HEAD"))
	h := findEvent(recv.wait(t, "deploy.succeeded", "/ok", withEvent("deploy.succeeded")), "deploy.succeeded")
	checkSignature(t, h, ok.Secret)
	if h.Event["app"] != "notified" || h.Event["commit"] != rev || h.Event["release"] != "v1" || h.Event["pusher"] != "admin" ||
		h.Event["duration"] == nil || h.Event["time"] == nil {
		t.Errorf("deploy.succeeded event: %s", h.Body)
	}
	if h.Header.Get("X-Conductor-Event") != "deploy.succeeded" {
		t.Errorf("X-Conductor-Event = %q", h.Header.Get("X-Conductor-Event"))
	}
	// 500, 500, then 200: the third attempt delivers.
	fl := recv.wait(t, "the flaky receiver's third attempt", "/flaky", func(hs []hookRequest) bool { return len(hs) >= 3 })
	for _, x := range fl {
		checkSignature(t, &x, flaky.Secret)
		if string(x.Body) != string(fl[0].Body) {
			t.Errorf("a retry's body differs from the first:\n%s\n%s", x.Body, fl[0].Body)
		}
	}
	waitFor(t, "the flaky delivery recorded delivered", func() bool {
		ds := listHooks(t, in, admin)[flaky.Subscription.ID].Deliveries
		return len(ds) == 1 && ds[0].Status == "delivered" && ds[0].Attempts == 3
	})
	t.Logf("push took %s; the flaky receiver got %d requests", pushTook, len(fl))

	// A failing push: deploy.failed, with the error line and the log command.
	mig, err := os.ReadFile(filepath.Join("..", "examples", "hello-bad-migration", "0002_fail.py"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "greetings", "migrations", "0002_fail.py"), mig, 0o644); err != nil {
		t.Fatal(err)
	}
	in.Commit(work, "broken migration")
	if r := in.Push(work, "notified", "main"); r.Code == 0 {
		t.Fatalf("push with a failing migration succeeded: %s", r)
	}
	badRev := strings.TrimSpace(in.mustGit(work, "rev-parse", "HEAD"))
	h = findEvent(recv.wait(t, "deploy.failed", "/ok", withEvent("deploy.failed")), "deploy.failed")
	checkSignature(t, h, ok.Secret)
	errLine, _ := h.Event["error"].(string)
	logCmd, _ := h.Event["log"].(string)
	if h.Event["commit"] != badRev || !strings.Contains(errLine, "migrate") || strings.Contains(errLine, "\n") ||
		!strings.HasPrefix(logCmd, "logs notified --build ") {
		t.Errorf("deploy.failed event: %s", h.Body)
	}
	// /down answers 500 to all 5 attempts: notify lists the failure.
	recv.wait(t, "5 attempts at /down", "/down", func(hs []hookRequest) bool { return len(hs) >= 5 })
	waitFor(t, "the failed delivery recorded", func() bool {
		e := listHooks(t, in, admin)[down.Subscription.ID]
		return e.Failed == 1 && len(e.Deliveries) == 1 && e.Deliveries[0].Status == "failed" &&
			e.Deliveries[0].Attempts == 5 && e.Deliveries[0].Code == 500
	})
	if out := must(t, "notify", in.SSH(admin, "notify")); !strings.Contains(out, "the receiver answered 500") ||
		!strings.Contains(out, "1 of the last 1 deliveries failed") {
		t.Errorf("notify does not show the failure:\n%s", out)
	}

	// notify:test sends now and reports the answer.
	if out := must(t, "notify:test", in.SSH(admin, "notify:test "+strconv.FormatInt(ok.Subscription.ID, 10))); !strings.Contains(out, "answered 200") {
		t.Errorf("notify:test: %q", out)
	}
	checkSignature(t, findEvent(recv.wait(t, "the test event", "/ok", withEvent("test")), "test"), ok.Secret)
	refused(t, "notify:test of a failing receiver", in.SSH(admin, "notify:test "+strconv.FormatInt(down.Subscription.ID, 10)), "answered 500")

	// A developer: their app's subscriptions only.
	dev := in.NewKey("dev")
	must(t, "keys:add dev", in.SSHIn(admin, "keys:add dev", readFile(t, dev+".pub")))
	must(t, "apps:create notified-shop", in.SSH(admin, "apps:create notified-shop"))
	must(t, "access:grant", in.SSH(admin, "access:grant notified-shop dev"))
	refused(t, "dev platform-wide", in.SSH(dev, "notify:add "+recv.URL+"/ok"), "need an admin")
	refused(t, "dev on an app not granted", in.SSH(dev, "notify:add "+recv.URL+"/ok --app notified"), `app "notified" not found`)
	mine := addHook(t, in, dev, recv.URL+"/ok --app notified-shop --events deploy.failed")
	seen := listHooks(t, in, dev)
	if len(seen) != 1 || seen[mine.Subscription.ID].App != "notified-shop" {
		t.Errorf("dev's notify lists %v, want only subscription %d", seen, mine.Subscription.ID)
	}
	refused(t, "dev removes the admin's", in.SSH(dev, "notify:remove "+strconv.FormatInt(ok.Subscription.ID, 10)), "not found")
	refused(t, "dev tests the admin's", in.SSH(dev, "notify:test "+strconv.FormatInt(ok.Subscription.ID, 10)), "not found")
	must(t, "dev notify:test", in.SSH(dev, "notify:test "+strconv.FormatInt(mine.Subscription.ID, 10)))
	must(t, "dev notify:remove", in.SSH(dev, "notify:remove "+strconv.FormatInt(mine.Subscription.ID, 10)))
	if _, still := listHooks(t, in, admin)[mine.Subscription.ID]; still {
		t.Error("a removed subscription is still listed")
	}

	// A worker that exits a second after it starts: circus restarts it,
	// and more than N restarts within 10 minutes is one process.crashing.
	crashy := in.WorkTree("hello")
	writeFile(t, filepath.Join(crashy, "Procfile"), "web: gunicorn hello.wsgi --log-file -\nworker: sleep 1; exit 3\n")
	writeFile(t, filepath.Join(crashy, "app.json"), `{"cron": [{"name": "fail", "command": "echo failing; exit 3", "schedule": "@monthly"}]}`)
	in.Commit(crashy, "a worker that crashes, a job that fails")
	if r := in.Push(crashy, "notified-crashy", "main"); r.Code != 0 {
		t.Fatalf("push notified-crashy: %s", r)
	}
	crash := addHook(t, in, admin, recv.URL+"/crash --app notified-crashy --events process.crashing,cron.failed,backup.failed")
	crashed := time.Now()
	h = findEvent(recv.wait(t, "process.crashing", "/crash", withEvent("process.crashing")), "process.crashing")
	checkSignature(t, h, crash.Secret)
	if h.Event["app"] != "notified-crashy" || h.Event["process"] != "worker" || h.Event["log"] != "logs notified-crashy --process worker" {
		t.Errorf("process.crashing event: %s", h.Body)
	}
	t.Logf("process.crashing delivered %s after the subscription", time.Since(crashed).Round(time.Millisecond))
	// Once per incident: the restarts go on, the event is not sent again.
	time.Sleep(3 * time.Second) // a look for something that must not come
	if n := len(recv.wait(t, "", "/crash", func([]hookRequest) bool { return true })); n != 1 {
		t.Errorf("process.crashing sent %d times in one incident", n)
	}

	// A scheduled job that fails: cron.failed, from the app's host.
	if r := in.SSH(admin, "cron:run notified-crashy fail"); r.Code == 0 {
		t.Errorf("cron:run of a failing job: %s", r)
	}
	h = findEvent(recv.wait(t, "cron.failed", "/crash", withEvent("cron.failed")), "cron.failed")
	checkSignature(t, h, crash.Secret)
	if e, _ := h.Event["error"].(string); h.Event["app"] != "notified-crashy" || !strings.Contains(e, "3") {
		t.Errorf("cron.failed event: %s", h.Body)
	}
	// A database backup that fails (its file unreadable): backup.failed.
	sq := filepath.Join(in.Data, "srv", "projects", "notified-crashy", "data", "db.sqlite3")
	if err := os.Chmod(sq, 0); err != nil {
		t.Fatal(err)
	}
	refused(t, "backup of an unreadable database", in.SSH(admin, "db:backup notified-crashy"), "failed")
	if err := os.Chmod(sq, 0o600); err != nil {
		t.Fatal(err)
	}
	h = findEvent(recv.wait(t, "backup.failed", "/crash", withEvent("backup.failed")), "backup.failed")
	checkSignature(t, h, crash.Secret)
	if e, _ := h.Event["error"].(string); h.Event["app"] != "notified-crashy" || e == "" {
		t.Errorf("backup.failed event: %s", h.Body)
	}

	// The audit trail has the commands, without the webhook URL's path.
	audit := must(t, "audit", in.SSH(admin, "audit"))
	for _, want := range []string{"notify:add", "notify:remove", "notify:test"} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit lacks %s:\n%s", want, audit)
		}
	}
	if strings.Contains(audit, "/flaky") {
		t.Errorf("audit keeps a webhook URL's path:\n%s", audit)
	}
}

// TestNotificationsOnWorker: an app on a worker's host gets the same
// events: its deploy's outcome (recorded over natsstore on the
// conductor) and a failed scheduled job (sent by the worker over NATS).
func TestNotificationsOnWorker(t *testing.T) {
	t.Parallel()
	recv := newHookReceiver(t)
	natsAddr := freeAddr(t)
	in := StartInstance(t, "--nats-addr", natsAddr, "--notify-allow-private")
	in.StartWorker(t, "nats://"+natsAddr, filepath.Join(in.Data, "nats.token"), filepath.Join(in.Data, "nats-tls", "ca.pem"), "w1")
	in.waitHosts(t, "local", "w1")
	must(t, "apps:create", in.SSH(in.AdminKey, "apps:create remote-notify --host w1"))
	sub := addHook(t, in, in.AdminKey, recv.URL+"/ok --app remote-notify --events deploy.succeeded,cron.failed")

	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "app.json"), `{"cron": [{"name": "fail", "command": "exit 3", "schedule": "@monthly"}]}`)
	in.Commit(work, "a job that fails")
	if r := in.Push(work, "remote-notify", "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	h := findEvent(recv.wait(t, "deploy.succeeded", "/ok", withEvent("deploy.succeeded")), "deploy.succeeded")
	checkSignature(t, h, sub.Secret)
	if h.Event["app"] != "remote-notify" || h.Event["host"] != "w1" || h.Event["release"] != "v1" {
		t.Errorf("deploy.succeeded of an app on w1: %s", h.Body)
	}
	if r := in.SSH(in.AdminKey, "cron:run remote-notify fail"); r.Code == 0 {
		t.Errorf("cron:run of a failing job: %s", r)
	}
	h = findEvent(recv.wait(t, "cron.failed", "/ok", withEvent("cron.failed")), "cron.failed")
	checkSignature(t, h, sub.Secret)
	if h.Event["app"] != "remote-notify" || h.Event["host"] != "w1" {
		t.Errorf("cron.failed of an app on w1: %s", h.Body)
	}
}
