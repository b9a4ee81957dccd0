package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hasadna/conductor/traffic"
)

// TestMetrics pushes an app, sends it requests through nginx (200s, 404s
// and 500s from a view that fails), and scrapes /metrics with the bearer
// token: the deploy is counted as succeeded with every pipeline step's
// duration, the app's requests and 5xx by status class match what was
// sent, and a scrape without the token gets 401. The traffic package reads
// nginx's log and its Series shows the requests.
func TestMetrics(t *testing.T) {
	tokenFile := metricsTokenFile(t)
	addr := freeAddr(t)
	// The crash watch looks at circus's pids every 200 ms (restarts).
	t.Setenv("CONDUCTOR_CRASH_CHECK_INTERVAL", "200ms")
	in := StartInstance(t, "--metrics-listen", addr, "--metrics-token-file", tokenFile)
	scrape := func(auth string) (int, string) { return scrapeMetrics(t, addr, auth) }
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + metricsToken, "Bearer " + metricsToken + "x"} {
		if code, body := scrape(auth); code != http.StatusUnauthorized || strings.Contains(body, "conductor_") {
			t.Errorf("scrape with Authorization %q: %d, want 401 without metrics", auth, code)
		}
	}

	work := in.WorkTree("hello")
	// A view that fails: Django answers 500.
	urls := filepath.Join(work, "hello", "urls.py")
	raw, err := os.ReadFile(urls)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, urls, strings.Replace(string(raw), "urlpatterns = [", "def boom(request):\n    raise RuntimeError(\"boom\")\n\n\nurlpatterns = [\n    path(\"boom\", boom),", 1))
	in.Commit(work, "a failing view")
	if r := in.Push(work, "metered", "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}

	get := func(auth string) map[string]float64 {
		code, body := scrape(auth)
		if code != 200 {
			t.Fatalf("scrape with the token: %d\n%s", code, body)
		}
		return parseMetrics(body)
	}
	auth := "Bearer " + metricsToken
	before := caughtUp(t, filepath.Join(in.Data, "nginx", "traffic.log"), "metered", func() map[string]float64 { return get(auth) })
	if v := before[`conductor_deploys_total{kind="deploy",outcome="succeeded"}`]; v != 1 {
		t.Errorf("succeeded deploys = %v, want 1", v)
	}
	for _, step := range []string{"provision", "unpack", "virtualenv", "settings", "collectstatic", "release", "start", "check", "switch", "retire"} {
		if v := before[`conductor_deploy_step_duration_seconds_count{step="`+step+`"}`]; v != 1 {
			t.Errorf("step %s observed %v times, want 1", step, v)
		}
	}
	if before[`conductor_deploy_queue_wait_seconds_count`] != 1 || before[`conductor_deploy_queue_depth`] != 0 {
		t.Errorf("queue: wait count %v, depth %v; want 1, 0", before[`conductor_deploy_queue_wait_seconds_count`], before[`conductor_deploy_queue_depth`])
	}
	if before[`conductor_ssh_sessions_total{kind="git"}`] < 1 {
		t.Errorf("git SSH sessions = %v, want at least the push", before[`conductor_ssh_sessions_total{kind="git"}`])
	}

	sent := map[string]int{"/": 3, "/missing": 2, "/boom": 2}
	wantCode := map[string]int{"/": 200, "/missing": 404, "/boom": 500}
	start := time.Now()
	for path, n := range sent {
		for range n {
			if code, body, _ := in.Get("metered", path); code != wantCode[path] {
				t.Fatalf("GET %s = %d, want %d: %s", path, code, wantCode[path], body)
			}
		}
	}
	series := func(m map[string]float64, code string) float64 {
		return m[`conductor_http_requests_total{app="metered",code="`+code+`"}`]
	}
	var after map[string]float64
	waitFor(t, "the requests in /metrics", func() bool {
		after = get(auth)
		return series(after, "5xx")-series(before, "5xx") >= 2 && series(after, "2xx")-series(before, "2xx") >= 3 && series(after, "4xx")-series(before, "4xx") >= 2
	})
	for code, want := range map[string]float64{"2xx": 3, "4xx": 2, "5xx": 2} {
		if got := series(after, code) - series(before, code); got != want {
			t.Errorf("%s requests counted %v, want %v", code, got, want)
		}
	}
	hist := `conductor_http_request_duration_seconds_count{app="metered"}`
	if got := after[hist] - before[hist]; got != 7 {
		t.Errorf("latency histogram counted %v requests, want 7", got)
	}
	if v := after[`conductor_traffic_log_bad_lines_total`]; v != 0 {
		t.Errorf("bad traffic log lines: %v", v)
	}

	// nginx's own log, read by package traffic as serve reads it.
	stats := &traffic.Stats{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = (&traffic.Tailer{Path: filepath.Join(in.Data, "nginx", "traffic.log"), Stats: stats, Poll: 20 * time.Millisecond}).Run(ctx)
	}()
	var pts []traffic.Point
	waitFor(t, "the requests in traffic's Series", func() bool {
		pts, err = stats.Series(ctx, "metered", 5*time.Minute, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		errs := 0
		for _, p := range pts {
			errs += p.Errors5xx
		}
		return errs == 2
	})
	total := 0
	for _, p := range pts {
		total += p.Requests
		if p.Requests > 0 && (p.P99 <= 0 || p.P50 > p.P99) {
			t.Errorf("point %s: percentiles %s ≤ %s ≤ %s", p.Time, p.P50, p.P95, p.P99)
		}
	}
	if total < 7 {
		t.Errorf("Series shows %d requests, want at least the 7 sent (and the switch's checks)", total)
	}
	t.Logf("requests sent in %s; Series: %+v", time.Since(start), pts)

	// The web process dies: circus starts it again, and the crash watch
	// counts a restart of metered's web.
	restarts := `conductor_process_restarts_total{app="metered",process="web"}`
	if v := get(auth)[restarts]; v != 0 {
		t.Fatalf("restarts before any: %v", v)
	}
	out, err := exec.Command("pgrep", "-o", "-u", "metered", "-f", "gunicorn").Output()
	pid, perr := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || perr != nil {
		t.Fatalf("the web process's pid: %v %v %q", err, perr, out)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, "a counted restart", func() bool { return get(auth)[restarts] >= 1 })
	t.Logf("restart counted %s after the kill", time.Since(killed).Round(time.Millisecond))
}

// metricsToken is the bearer token the tests' /metrics are given.
const metricsToken = "e2e-metrics-token-0123456789"

// metricsTokenFile writes metricsToken to a 0600 file.
func metricsTokenFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "metrics.token")
	if err := os.WriteFile(path, []byte(metricsToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// scrapeMetrics GETs /metrics at addr with an Authorization header ("":
// none).
func scrapeMetrics(t *testing.T, addr, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// caughtUp scrapes until the metrics count every request to app in nginx's
// traffic log so far (the deploy's switch sends some through nginx) and
// returns that scrape.
func caughtUp(t *testing.T, trafficLog, app string, scrape func() map[string]float64) map[string]float64 {
	t.Helper()
	logged := func() float64 {
		raw, err := os.ReadFile(trafficLog)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range strings.Split(string(raw), "\n") {
			if r, err := traffic.Parse([]byte(l)); err == nil && r.App == app {
				n++
			}
		}
		return float64(n)
	}
	var m map[string]float64
	waitFor(t, "/metrics to count the requests nginx logged", func() bool {
		m = scrape()
		return m[`conductor_http_request_duration_seconds_count{app="`+app+`"}`] == logged()
	})
	return m
}

// TestMetricsOnWorker: a worker's --metrics-listen counts its own
// builder's deploys and steps and its nginx's requests to the apps placed
// on it, and the conductor's counts none of them.
func TestMetricsOnWorker(t *testing.T) {
	t.Parallel()
	tokenFile := metricsTokenFile(t)
	natsAddr, serveMetrics, workerMetrics := freeAddr(t), freeAddr(t), freeAddr(t)
	in := StartInstance(t, "--nats-addr", natsAddr, "--metrics-listen", serveMetrics, "--metrics-token-file", tokenFile)
	w := &Worker{t: t, Host: "w1", Data: filepath.Join(in.Dir, "worker-w1"), HTTPAddr: freeAddr(t),
		natsURLs: "nats://" + natsAddr, natsToken: filepath.Join(in.Data, "nats.token"),
		natsCA: filepath.Join(in.Data, "nats-tls", "ca.pem"), out: &lockedBuffer{},
		Extra: []string{"--metrics-listen", workerMetrics, "--metrics-token-file", tokenFile}}
	w.Start()
	t.Cleanup(func() {
		w.Stop()
		if t.Failed() {
			t.Logf("worker output:\n%s", w.out.String())
		}
	})
	in.waitHosts(t, "local", "w1")
	if code, _ := scrapeMetrics(t, workerMetrics, ""); code != http.StatusUnauthorized {
		t.Errorf("the worker's /metrics without the token: %d, want 401", code)
	}
	if r := in.SSH(in.AdminKey, "apps:create remote-metrics --host w1"); r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}
	if r := in.Push(in.WorkTree("hello"), "remote-metrics", "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	get := func(addr string) map[string]float64 {
		code, body := scrapeMetrics(t, addr, "Bearer "+metricsToken)
		if code != 200 {
			t.Fatalf("scrape %s: %d", addr, code)
		}
		return parseMetrics(body)
	}
	before := caughtUp(t, filepath.Join(w.Data, "nginx", "traffic.log"), "remote-metrics", func() map[string]float64 { return get(workerMetrics) })
	if v := before[`conductor_deploys_total{kind="deploy",outcome="succeeded"}`]; v != 1 {
		t.Errorf("the worker's succeeded deploys = %v, want 1", v)
	}
	if v := before[`conductor_deploy_step_duration_seconds_count{step="switch"}`]; v != 1 {
		t.Errorf("the worker's switch steps = %v, want 1", v)
	}
	if v := get(serveMetrics)[`conductor_deploys_total{kind="deploy",outcome="succeeded"}`]; v != 0 {
		t.Errorf("the conductor counted the worker's deploy: %v", v)
	}
	for range 3 {
		if code, body := w.Get("remote-metrics", "/"); code != 200 {
			t.Fatalf("GET / on w1: %d %s", code, body)
		}
	}
	if code, _ := w.Get("remote-metrics", "/missing"); code != 404 {
		t.Fatalf("GET /missing on w1: %d", code)
	}
	key := func(code string) string {
		return `conductor_http_requests_total{app="remote-metrics",code="` + code + `"}`
	}
	var after map[string]float64
	waitFor(t, "the worker's /metrics to count the requests", func() bool {
		after = get(workerMetrics)
		return after[key("2xx")]-before[key("2xx")] >= 3 && after[key("4xx")]-before[key("4xx")] >= 1
	})
	if d2, d4 := after[key("2xx")]-before[key("2xx")], after[key("4xx")]-before[key("4xx")]; d2 != 3 || d4 != 1 {
		t.Errorf("the worker counted %v 2xx and %v 4xx, want 3 and 1", d2, d4)
	}
}

// parseMetrics reads Prometheus's text format into series → value.
func parseMetrics(body string) map[string]float64 {
	m := map[string]float64{}
	for _, line := range strings.Split(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m
}
