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
	"testing"
	"time"
)

// TestDashboardSite: the dashboard's server block proxies conductor.<domain>
// to its loopback listener with the Host (port included) the browser sent;
// with a certificate it is HTTPS only, plain HTTP redirected; an upstream
// off loopback, or TLS without an HTTPS address, is refused.
func TestDashboardSite(t *testing.T) {
	needNginx(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := &Nginx{Bin: nginxBin, Dir: filepath.Join(dir, "nginx"), Listen: freePort(t), HTTPSListen: freePort(t)}
	if os.Geteuid() == 0 {
		n.User = "nobody nogroup"
	}
	dash := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "dashboard at %s via %s", r.Host, r.Header.Get("X-Forwarded-Proto"))
	}))
	defer dash.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer n.Shutdown()
	defer n.Wait()
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const host = "conductor.example.test"
	for _, bad := range []DashboardSite{
		{Host: host, Upstream: "10.0.0.1:80"},
		{Host: host, Upstream: "127.0.0.1:80; include /etc/passwd"},
		{Host: "conductor.example.test; x", Upstream: dash.Listener.Addr().String()},
	} {
		if err := n.WriteDashboardSite(ctx, bad); err == nil {
			t.Errorf("WriteDashboardSite(%+v) accepted", bad)
		}
	}
	noHTTPS := &Nginx{Bin: nginxBin, Dir: n.Dir, Listen: n.Listen}
	if err := noHTTPS.WriteDashboardSite(ctx, DashboardSite{Host: host, Upstream: dash.Listener.Addr().String(), TLS: &TLSHost{Host: host, Cert: "/x", Key: "/x"}}); err == nil {
		t.Errorf("a TLS dashboard without an HTTPS address was accepted")
	}

	ca := newTestCA(t)
	certFile := filepath.Join(dir, "dashboard.pem")
	ca.writeLeaf(t, host, certFile)
	if err := n.WriteDashboardSite(ctx, DashboardSite{Host: host, Upstream: dash.Listener.Addr().String(),
		TLS: &TLSHost{Host: host, Cert: certFile, Key: certFile}}); err != nil {
		t.Fatal(err)
	}
	_, httpsPort, _ := net.SplitHostPort(n.HTTPSListen)
	get := func(c *http.Client, url string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	plain := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, n.Listen)
		}}}
	_, httpPort, _ := net.SplitHostPort(n.Listen)
	// nginx, just started, may still be binding its ports.
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := dialer.Dial("tcp", n.HTTPSListen)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s: %v", n.HTTPSListen, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, _, h := get(plain, "http://"+host+":"+httpPort+"/login?token=x")
	if want := "https://" + host + ":" + httpsPort + "/login?token=x"; code != http.StatusPermanentRedirect || h.Get("Location") != want {
		t.Errorf("plain HTTP: %d Location %q, want 308 to %s", code, h.Get("Location"), want)
	}
	secure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, n.HTTPSListen)
		},
	}}
	if code, body, _ := get(secure, "https://"+host+":"+httpsPort+"/"); code != 200 || body != "dashboard at "+host+":"+httpsPort+" via https" {
		t.Errorf("HTTPS: %d %q", code, body)
	}
}
