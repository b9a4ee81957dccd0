package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	const token = "e2e-metrics-token-0123456789"
	tokenFile := filepath.Join(t.TempDir(), "metrics.token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	in := StartInstance(t, "--metrics-listen", addr, "--metrics-token-file", tokenFile)

	scrape := func(auth string) (int, string) {
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
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + token, "Bearer " + token + "x"} {
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
	auth := "Bearer " + token
	// The switch's own requests through nginx are the app's first lines in
	// nginx's log: once /metrics counts them all, it has caught up.
	logged := func() float64 {
		raw, err := os.ReadFile(filepath.Join(in.Data, "nginx", "traffic.log"))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range strings.Split(string(raw), "\n") {
			if r, err := traffic.Parse([]byte(l)); err == nil && r.App == "metered" {
				n++
			}
		}
		return float64(n)
	}
	var before map[string]float64
	waitFor(t, "/metrics to count the switch's requests", func() bool {
		before = get(auth)
		return before[`conductor_http_request_duration_seconds_count{app="metered"}`] == logged()
	})
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
