package nginx

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTrafficLogRotates runs a real nginx: an app's requests are logged as
// JSON lines with the app's name, and RotateLogs moves the grown log aside
// and has nginx write a new one (0640) without a restart.
func TestTrafficLogRotates(t *testing.T) {
	needNginx(t)
	dir := t.TempDir()
	// nginx's workers (nobody, as root) pass through to what they read.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	n := &Nginx{Bin: nginxBin, Dir: dir, Listen: freePort(t)}
	ctx, cancel := context.WithCancel(context.Background())
	if err := n.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	// Supervision ends first, or it would start nginx again.
	defer func() { cancel(); n.Wait(); n.Shutdown() }()
	if err := n.WriteSite(ctx, Site{App: "shop", Release: "v1", Hosts: []string{"shop.localhost"},
		Port: 1, StaticDir: filepath.Join(dir, "static")}); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitRelease(ctx, "shop.localhost", "v1", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// The workers from before the site was written may still accept a
	// connection and answer it from the default server (a 404 logged in
	// access.log): only the new ones log the app's requests.
	if err := n.WaitOldWorkers(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	get := func(path string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.Listen+path, nil)
		req.Host = "shop.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway { // the app's port 1 refuses
			t.Fatalf("GET %s = %d, want the app's server block's 502", path, resp.StatusCode)
		}
	}
	// count reads a log's GET lines (the switch's checks are HEADs), each
	// checked to be the app's request.
	count := func(file string) int {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil || m["app"] != "shop" {
				t.Fatalf("%s: unexpected line %s (%v)", file, l, err)
			}
			if m["method"] != "GET" {
				continue
			}
			if m["status"] != float64(502) || m["host"] != "shop.localhost" {
				t.Fatalf("%s: unexpected line %s", file, l)
			}
			n++
		}
		return n
	}
	log := n.TrafficLog()
	sent := 0
	get("/before")
	sent++
	if err := n.RotateLogs(1); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(log + ".1"); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	fi, err := os.Stat(log)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("new log: %v, mode %v", err, fi)
	}
	// Workers write the old file until they have reopened the log.
	deadline := time.Now().Add(10 * time.Second)
	for count(log) == 0 {
		if time.Now().After(deadline) {
			errs, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx never wrote the new log; error.log: %s", errs)
		}
		get("/after")
		sent++
	}
	// A line is written once its response is sent: wait for all of them.
	for count(log)+count(log+".1") != sent {
		if time.Now().After(deadline) {
			t.Fatalf("%d lines in the two logs, want the %d requests sent", count(log)+count(log+".1"), sent)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Nothing to rotate: no signal, no error.
	if err := n.RotateLogs(1 << 30); err != nil {
		t.Fatal(err)
	}
}

// TestSystemSitesDeclareTrafficFormat: in system mode each app's site
// declares its own log format (the host's nginx.conf has none of
// Conductor's), so nginx -t takes two of them side by side.
func TestSystemSitesDeclareTrafficFormat(t *testing.T) {
	needNginx(t)
	dir := t.TempDir()
	old := SystemTrafficLog
	SystemTrafficLog = filepath.Join(dir, "conductor-traffic.log")
	defer func() { SystemTrafficLog = old }()
	n := &Nginx{Bin: nginxBin, Dir: filepath.Join(dir, "data"), Listen: freePort(t), System: true,
		SitesDir: filepath.Join(dir, "sites"), Conf: filepath.Join(dir, "nginx.conf"), PidFile: filepath.Join(dir, "nginx.pid")}
	for _, d := range []string{n.Dir, n.SitesDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The host's nginx.conf, as Debian's includes its sites.
	conf := "pid " + quote(n.PidFile) + ";\nerror_log " + quote(filepath.Join(dir, "error.log")) + ";\n"
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_http_js_module.so"); err == nil {
		conf = "load_module /usr/lib/nginx/modules/ngx_http_js_module.so;\n" + conf
	}
	conf += "events {}\nhttp {\n    access_log " + quote(filepath.Join(dir, "access.log")) + ";\n    include " + quote(n.SitesDir+"/*.conf") + ";\n}\n"
	if err := os.WriteFile(n.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"shop", "blog"} {
		site := renderSite(t, n, Site{App: app, Release: "v1", Hosts: []string{app + ".example.org"}, Port: 20000, StaticDir: filepath.Join(dir, "static")})
		for _, want := range []string{
			"log_format conductor_traffic_" + app + " escape=json",
			"set $conductor_app " + app + ";",
			"access_log " + quote(SystemTrafficLog) + " conductor_traffic_" + app + ";",
		} {
			if !strings.Contains(string(site), want) {
				t.Errorf("%s's site lacks %q:\n%s", app, want, site)
			}
		}
		if err := os.WriteFile(n.SitePath(app), site, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.test(context.Background()); err != nil {
		t.Fatalf("nginx -t rejects two system-mode sites: %v", err)
	}
}
