package nginx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasadna/conductor/internal/loopport"
)

const nginxBin = "/usr/sbin/nginx"

func TestValidateHost(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	long253 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 61) // 4*63+... = 253 chars
	if len(long253) != 253 {
		t.Fatalf("test setup: len = %d", len(long253))
	}
	tests := []struct {
		host string
		ok   bool
	}{
		{"hello.localhost", true},
		{"a-b.example.com", true},
		{"localhost", true},
		{"a", true},
		{"127.0.0.1", true},
		{"xn--bcher-kva.example", true},
		{"app1.conductor.example.org", true},
		{label63 + ".com", true},
		{long253, true},
		{long253 + "b", false},
		{strings.Repeat("a.", 127) + "ab", false}, // 256 chars
		{strings.Repeat("a", 64) + ".com", false},
		{"", false},
		{"a;b", false},
		{"a b", false},
		{"a}", false},
		{"a{", false},
		{"evil.com;\n", false},
		{"evil.com\n", false},
		{"a.com; include /etc/passwd", false},
		{"-a.com", false},
		{"a-.com", false},
		{"a.-b.com", false},
		{"Hello.localhost", false},
		{"HELLO.COM", false},
		{"a..b", false},
		{".a.com", false},
		{"a.com.", false},
		{"*.example.com", false},
		{"~^.*$", false},
		{"a_b.com", false},
		{"a$host.com", false},
		{`a"b.com`, false},
		{"a'b.com", false},
		{"a\\b.com", false},
		{"éxample.com", false},
		{"a.com:80", false},
		{"a/b", false},
	}
	for _, tt := range tests {
		err := ValidateHost(tt.host)
		if tt.ok && err != nil {
			t.Errorf("ValidateHost(%.60q) = %v, want nil", tt.host, err)
		}
		if !tt.ok && err == nil {
			t.Errorf("ValidateHost(%.60q) = nil, want an error", tt.host)
		}
	}
}

// TestQuote checks the escapes nginx does honour in a double-quoted string.
// Whether a "$" in the value stays literal is checked against nginx itself
// in TestSiteStaticDirDollarRefused: nginx has no escape for "$".
func TestQuote(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `""`},
		{"/srv/static", `"/srv/static"`},
		{"a b", `"a b"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{`\"`, `"\\\""`},
		{"a;b{c}#d", `"a;b{c}#d"`},
		{"it's", `"it's"`},
	}
	for _, tt := range tests {
		if got := quote(tt.in); got != tt.want {
			t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func needNginx(t *testing.T) {
	t.Helper()
	if fi, err := os.Stat(nginxBin); err != nil || fi.IsDir() {
		t.Fatalf("%s is missing: run make setup (%v)", nginxBin, err)
	}
}

// startNginx starts a real nginx under a temp dir, which it returns, and
// stops it when the test ends. nginx's workers (nobody, when the test runs
// as root) pass through the temp dirs to routes and static files.
func startNginx(t *testing.T) (*Nginx, string, context.Context) {
	t.Helper()
	needNginx(t)
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	n := &Nginx{Bin: nginxBin, Dir: filepath.Join(dir, "nginx"), Listen: freePort(t)}
	ctx, cancel := context.WithCancel(context.Background())
	// Supervision ends first, or it would start nginx again; nginx
	// outlives supervision.
	t.Cleanup(func() { cancel(); n.Wait(); n.Shutdown() })
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return n, dir, ctx
}

// freePort finds a loopback address for nginx to listen on, from 4000 to
// 4999: below the kernel's ephemeral range (loopport).
func freePort(t *testing.T) string {
	t.Helper()
	addr, err := nginxPorts.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

var nginxPorts = &loopport.Range{From: 4000, To: 4999}

// setup renders nginx.conf into a fresh prefix the way Start does, without
// starting nginx.
func setup(t *testing.T, dir string) *Nginx {
	t.Helper()
	needNginx(t)
	n := &Nginx{Bin: nginxBin, Dir: dir, Listen: freePort(t)}
	for _, d := range []string{n.sitesDir(), filepath.Join(dir, "tmp"), filepath.Join(dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.writeScript(); err != nil {
		t.Fatal(err)
	}
	conf, err := n.mainConf()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.confPath(), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

func renderSite(t *testing.T, n *Nginx, s Site) []byte {
	t.Helper()
	conf, err := n.siteConf(s)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

func TestMainConfigAccepted(t *testing.T) {
	n := setup(t, t.TempDir())
	if err := n.test(context.Background()); err != nil {
		t.Fatalf("nginx -t rejects the rendered nginx.conf: %v", err)
	}
}

// TestMainConfigDirWithSpace renders nginx.conf under a data dir whose path
// has a space, as `conductor serve --data "/srv/My Data"` would.
func TestMainConfigDirWithSpace(t *testing.T) {
	n := setup(t, filepath.Join(t.TempDir(), "my data", "nginx"))
	if err := n.test(context.Background()); err != nil {
		t.Fatalf("nginx -t rejects nginx.conf under a dir with a space: %v", err)
	}
}

func TestSiteStaticDirAccepted(t *testing.T) {
	base := t.TempDir()
	n := setup(t, filepath.Join(base, "nginx"))
	tests := []struct {
		name, dir string
	}{
		{"plain", "/srv/projects/hello/releases/20240101T000000-abcd1234/staticfiles"},
		{"spaces", "/srv/my projects/hello world/staticfiles"},
		{"double quote", `/srv/a"b/staticfiles`},
		{"single quote", `/srv/it's/staticfiles`},
		{"backslash", `/srv/a\b/staticfiles`},
		{"semicolon and braces", "/srv/a;b{c}/staticfiles"},
		{"hash", "/srv/a#b/staticfiles"},
		{"everything", `/srv/a "b" 'c' \d e; {f} #g/staticfiles`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := renderSite(t, n, Site{
				App: "hello", Release: "20240101T000000-abcd1234", Hosts: []string{"hello.localhost", "www.hello.localhost"},
				Port: 9000, StaticDir: tt.dir,
			})
			path := filepath.Join(n.sitesDir(), "hello.conf")
			if err := os.WriteFile(path, conf, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(path)
			if err := n.test(context.Background()); err != nil {
				t.Fatalf("nginx -t rejects StaticDir %q: %v\n%s", tt.dir, err, conf)
			}
			// The dir is in the route (JSON), never in the site: it reads
			// back whole, whatever it holds.
			raw, err := siteRoute(Site{App: "hello", Release: "r1", Port: 9000, StaticDir: tt.dir})
			if err != nil {
				t.Fatal(err)
			}
			var r route
			if err := json.Unmarshal(raw, &r); err != nil || r.Static != tt.dir+"/" {
				t.Errorf("route %s: static dir reads back as %q (%v), want %q", raw, r.Static, err, tt.dir+"/")
			}
			if bytes.Contains(conf, []byte("staticfiles")) {
				t.Errorf("the site names the static dir:\n%s", conf)
			}
		})
	}
}

// TestSiteConfigDumped checks with `nginx -T` that the rendered server block
// is loaded as one server with the app's hosts and port.
func TestSiteConfigDumped(t *testing.T) {
	n := setup(t, t.TempDir())
	conf := renderSite(t, n, Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost", "h2.example.com"}, Port: 9123, StaticDir: "/srv/static"})
	if err := os.WriteFile(filepath.Join(n.sitesDir(), "hello.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(n.Bin, "-T", "-p", n.Dir, "-c", n.confPath()).CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -T: %v\n%s", err, out)
	}
	for _, want := range []string{
		"listen " + n.Listen + ";",
		"server_name hello.localhost h2.example.com;",
		"proxy_pass http://$conductor_upstream;",
		"add_header X-Conductor-Release $conductor_release always;",
		"set $conductor_route " + quote(n.RoutePath("hello")) + ";",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("nginx -T output lacks %q", want)
		}
	}
}

func listSites(t *testing.T, n *Nginx) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(n.sitesDir())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(n.sitesDir(), e.Name()))
		out[e.Name()] = string(data)
	}
	return out
}

func TestWriteSiteRefusesHostileHosts(t *testing.T) {
	n := setup(t, t.TempDir())
	good := renderSite(t, n, Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost"}, Port: 9000, StaticDir: "/srv/static"})
	if err := os.WriteFile(filepath.Join(n.sitesDir(), "hello.conf"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	before := listSites(t, n)
	for _, host := range []string{
		"evil.com;\n}\nserver { listen 80; root /; }",
		"evil.com; include /etc/passwd",
		"a b",
		"a}",
		"",
		"-a.com",
		"UPPER.com",
		strings.Repeat("a", 254),
	} {
		for _, app := range []string{"hello", "other"} {
			err := n.WriteSite(context.Background(), Site{
				App: app, Release: "r2", Hosts: []string{"ok.localhost", host}, Port: 9001, StaticDir: "/srv/static",
			})
			if err == nil {
				t.Fatalf("WriteSite(app %s, host %.40q) succeeded", app, host)
			}
			if after := listSites(t, n); len(after) != len(before) || after["hello.conf"] != before["hello.conf"] {
				t.Fatalf("WriteSite(host %.40q) changed the sites dir: %v", host, after)
			}
		}
	}
}

// TestWriteSiteRollsBack: when nginx -t refuses the new block, the previous
// one is put back (or the new one removed), and nothing is reloaded.
func TestWriteSiteRollsBack(t *testing.T) {
	n := setup(t, t.TempDir())
	good := renderSite(t, n, Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost"}, Port: 9000, StaticDir: "/srv/static"})
	if err := os.WriteFile(filepath.Join(n.sitesDir(), "hello.conf"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	goodRoute := []byte(`{"release":"r1"}`)
	if err := os.WriteFile(n.RoutePath("hello"), goodRoute, 0o644); err != nil {
		t.Fatal(err)
	}
	// A certificate file that does not exist passes the template but not
	// nginx -t.
	n.HTTPSListen = freePort(t)
	bad := Site{Release: "r2", Hosts: []string{"hello.localhost", "s.example.org"}, Port: 9001, StaticDir: "/srv/static",
		TLS: []TLSHost{{Host: "s.example.org", Cert: "/nonexistent/cert.pem", Key: "/nonexistent/cert.pem"}}}
	for _, app := range []string{"hello", "newapp"} {
		bad.App = app
		err := n.WriteSite(context.Background(), bad)
		if err == nil || !strings.Contains(err.Error(), "nginx -t") {
			t.Fatalf("WriteSite(%s, a missing certificate) error = %v, want an nginx -t failure", app, err)
		}
	}
	sites := listSites(t, n)
	if len(sites) != 1 || sites["hello.conf"] != string(good) {
		t.Errorf("after failed WriteSites the sites dir is %v, want only the old hello.conf", sites)
	}
	// The routes are put back too: hello's as it was, none for newapp.
	if got, _ := os.ReadFile(n.RoutePath("hello")); !bytes.Equal(got, goodRoute) {
		t.Errorf("hello's route after the failed WriteSite: %s, want %s", got, goodRoute)
	}
	if _, err := os.Stat(n.RoutePath("newapp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("newapp's route after its failed first WriteSite: %v, want none", err)
	}
	if err := n.test(context.Background()); err != nil {
		t.Errorf("configuration broken after rollback: %v", err)
	}
}

// TestSiteStaticDirDollarRefused: nginx reads "$x" in any string as a
// variable, so a path with "$" is refused before anything is written.
func TestSiteStaticDirDollarRefused(t *testing.T) {
	n := setup(t, filepath.Join(t.TempDir(), "nginx"))
	for _, dir := range []string{"/srv/a$b/staticfiles", "/srv/${host}/staticfiles", "/srv/a\nb"} {
		err := n.WriteSite(context.Background(), Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost"}, Port: 9000, StaticDir: dir})
		if err == nil {
			t.Errorf("WriteSite accepted StaticDir %q", dir)
		}
		if sites := listSites(t, n); len(sites) != 0 {
			t.Errorf("WriteSite(%q) left files: %v", dir, sites)
		}
	}
	bad := &Nginx{Bin: n.Bin, Dir: filepath.Join(t.TempDir(), "a$b"), Listen: n.Listen}
	if err := bad.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "$") {
		t.Errorf("Start with a $ in Dir: %v", err)
	}
}
