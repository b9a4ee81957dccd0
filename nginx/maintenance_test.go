package nginx

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPlainMaintenancePageEscapes(t *testing.T) {
	page := string(PlainMaintenancePage("hello", `<script>alert("x")</script> & back at 5`))
	if strings.Contains(page, "<script>") || !strings.Contains(page, "&lt;script&gt;") || !strings.Contains(page, "&amp; back at 5") {
		t.Errorf("the message is not escaped:\n%s", page)
	}
	if page := string(PlainMaintenancePage("hello", "")); !strings.Contains(page, "hello is down for maintenance") {
		t.Errorf("default page:\n%s", page)
	}
}

// TestMaintenanceSiteAccepted: nginx -t takes the site in maintenance, with
// and without TLS, and a page path nginx cannot take literally is refused.
func TestMaintenanceSiteAccepted(t *testing.T) {
	n := setup(t, t.TempDir())
	m := &Maintenance{Page: PlainMaintenancePage("hello", "back soon"), RetryAfter: 120}
	conf := renderSite(t, n, Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost"}, Port: 9000,
		StaticDir: "/srv/static", MediaDir: "/srv/media", Maintenance: m})
	if err := os.WriteFile(filepath.Join(n.sitesDir(), "hello.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.test(context.Background()); err != nil {
		t.Fatalf("nginx -t rejects the maintenance site: %v\n%s", err, conf)
	}
	for _, want := range []string{"return 503;", "add_header Retry-After 120 always;", "proxy_pass"} {
		if got := strings.Contains(string(conf), want); got != (want != "proxy_pass") {
			t.Errorf("maintenance site: contains %q = %v\n%s", want, got, conf)
		}
	}
	if _, err := n.siteConf(Site{App: "hello", Release: "r1", Port: 9000, StaticDir: "/s", Maintenance: &Maintenance{Page: []byte("x"), RetryAfter: 0}}); err == nil {
		t.Errorf("Retry-After 0 was rendered")
	}
	bad := &Nginx{Bin: n.Bin, Dir: "/tmp/a$b", Listen: n.Listen}
	if _, err := bad.siteConf(Site{App: "hello", Release: "r1", Port: 9000, StaticDir: "/s", Maintenance: m}); err == nil {
		t.Errorf("a page path with $ was rendered")
	}
}

// TestMaintenanceServing runs nginx with an app over HTTP and HTTPS: in
// maintenance every path but /static/ and /media/ is 503 with Retry-After
// and the page, whatever the method; out of it the app answers again.
func TestMaintenanceServing(t *testing.T) {
	needNginx(t)
	dir, err := os.MkdirTemp("", "conductor-nginx-maint-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := &Nginx{Bin: nginxBin, Dir: filepath.Join(dir, "nginx"), Listen: freePort(t), HTTPSListen: freePort(t)}
	if os.Geteuid() == 0 {
		n.User = "nobody nogroup"
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "the app") }))
	defer app.Close()
	var appPort int
	_, port, _ := net.SplitHostPort(app.Listener.Addr().String())
	fmt.Sscan(port, &appPort)
	static := filepath.Join(dir, "static")
	if err := os.MkdirAll(static, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(static, "app.css"), []byte("body{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer n.Shutdown()
	defer n.Wait()
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	const host = "secure.example.test"
	certFile := filepath.Join(dir, "certs", host+".pem")
	if err := os.MkdirAll(filepath.Dir(certFile), 0o700); err != nil {
		t.Fatal(err)
	}
	ca.writeLeaf(t, host, certFile)
	site := Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost", host}, Port: appPort,
		StaticDir: static, TLS: []TLSHost{{Host: host, Cert: certFile, Key: certFile}}}
	m := &Maintenance{Page: PlainMaintenancePage("hello", "Upgrading <db>, back at 5"), RetryAfter: 90}
	site.Maintenance = m
	if err := n.WriteSite(ctx, site); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitMaintenance(ctx, "hello.localhost", "r1", m, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitOldWorkers(ctx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	plain := &http.Client{Timeout: 5 * time.Second}
	secure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, n.HTTPSListen)
		},
	}}
	do := func(c *http.Client, method, url, hostHeader string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader("a=1"))
		req.Host = hostHeader
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	for _, tc := range []struct {
		c           *http.Client
		method, url string
		host        string
	}{
		{plain, "GET", "http://" + n.Listen + "/", "hello.localhost"},
		{plain, "POST", "http://" + n.Listen + "/accounts/login/", "hello.localhost"},
		{secure, "GET", "https://" + host + "/admin/", host},
	} {
		code, body, h := do(tc.c, tc.method, tc.url, tc.host)
		if code != 503 || h.Get("Retry-After") != "90" || !strings.Contains(body, "Upgrading &lt;db&gt;, back at 5") ||
			!strings.HasPrefix(h.Get("Content-Type"), "text/html") || h.Get("X-Conductor-Maintenance") != m.Token() {
			t.Errorf("%s %s in maintenance: %d Retry-After %q type %q\n%s", tc.method, tc.url, code, h.Get("Retry-After"), h.Get("Content-Type"), body)
		}
	}
	for _, c := range []struct {
		c    *http.Client
		url  string
		host string
	}{{plain, "http://" + n.Listen + "/static/app.css", "hello.localhost"}, {secure, "https://" + host + "/static/app.css", host}} {
		if code, body, _ := do(c.c, "GET", c.url, c.host); code != 200 || body != "body{}" {
			t.Errorf("GET %s in maintenance: %d %q, want the static file", c.url, code, body)
		}
	}
	if code, _, _ := do(plain, "GET", "http://"+n.Listen+"/.conductor-maintenance.html", "hello.localhost"); code == 200 {
		t.Errorf("the page's internal location answers from outside")
	}

	site.Maintenance = nil
	if err := n.WriteSite(ctx, site); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitMaintenance(ctx, "hello.localhost", "r1", nil, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitOldWorkers(ctx, 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if code, body, h := do(plain, "GET", "http://"+n.Listen+"/", "hello.localhost"); code != 200 || body != "the app" || h.Get("Retry-After") != "" {
		t.Errorf("GET / out of maintenance: %d %q", code, body)
	}
	if code, body, _ := do(secure, "GET", "https://"+host+"/", host); code != 200 || body != "the app" {
		t.Errorf("HTTPS GET / out of maintenance: %d %q", code, body)
	}
}
