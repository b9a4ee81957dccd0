package nginx

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA signs leaf certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "conductor test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert, key, pool}
}

// writeLeaf writes a PEM bundle (leaf, key) for host to path and returns
// the leaf's DER.
func (ca *testCA) writeLeaf(t *testing.T, host, path string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	return der
}

func TestTLSSiteChecks(t *testing.T) {
	n := &Nginx{Dir: "/data/nginx", Listen: "127.0.0.1:8080", HTTPSListen: "127.0.0.1:8443"}
	base := Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost", "secure.example.org"}, Port: 9000, StaticDir: "/srv/static"}
	for _, tc := range []struct {
		name string
		tls  []TLSHost
		want string
	}{
		{"host not in the site", []TLSHost{{"other.example.org", "/c.pem", "/c.pem"}}, "not one of the site's hosts"},
		{"twice", []TLSHost{{"secure.example.org", "/c.pem", "/c.pem"}, {"secure.example.org", "/c.pem", "/c.pem"}}, "twice"},
		{"no key", []TLSHost{{"secure.example.org", "/c.pem", ""}}, "no certificate or key"},
		{"dollar in path", []TLSHost{{"secure.example.org", "/c$host.pem", "/c.pem"}}, "$"},
		{"newline in path", []TLSHost{{"secure.example.org", "/c.pem", "/c\nssl_certificate_key /etc/shadow"}}, "control character"},
	} {
		s := base
		s.TLS = tc.tls
		if _, err := n.siteConf(s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: siteConf error = %v, want one saying %q", tc.name, err, tc.want)
		}
	}
	for _, addr := range []string{"127.0.0.1:8443; root /", "8443", "a b:443"} {
		bad := &Nginx{Dir: n.Dir, Listen: n.Listen, HTTPSListen: addr}
		s := base
		s.TLS = []TLSHost{{"secure.example.org", "/c.pem", "/c.pem"}}
		if _, err := bad.siteConf(s); err == nil {
			t.Errorf("siteConf accepted HTTPS address %q", addr)
		}
	}
	// Without an HTTPS address, TLS hosts are served over plain HTTP.
	plain := &Nginx{Dir: n.Dir, Listen: n.Listen}
	s := base
	s.TLS = []TLSHost{{"secure.example.org", "/c.pem", "/c.pem"}}
	conf, err := plain.siteConf(s)
	if err != nil || strings.Contains(string(conf), "ssl") || !strings.Contains(string(conf), "server_name hello.localhost secure.example.org;") {
		t.Errorf("siteConf without HTTPS: %v\n%s", err, conf)
	}
}

// TestTLSServing runs nginx with a TLS site: HTTPS is served with the
// site's certificate, plain HTTP redirects there except ACME challenges,
// a host without a certificate stays on HTTP, an unknown name is refused
// in the handshake, and ReloadCerts picks up a replaced certificate file.
func TestTLSServing(t *testing.T) {
	needNginx(t)
	dir, err := os.MkdirTemp("", "conductor-nginx-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// nginx's workers (nobody, when root) read the challenge files.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	n := &Nginx{Bin: nginxBin, Dir: filepath.Join(dir, "nginx"), Listen: freePort(t), HTTPSListen: freePort(t)}
	if os.Geteuid() == 0 {
		n.User = "nobody nogroup"
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app at %s via %s", r.Host, r.Header.Get("X-Forwarded-Proto"))
	}))
	defer app.Close()
	_, port, _ := net.SplitHostPort(app.Listener.Addr().String())
	var appPort int
	fmt.Sscan(port, &appPort)

	ctx, cancel := context.WithCancel(context.Background())
	defer n.Shutdown() // nginx outlives supervision
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
	if err := n.WriteSite(ctx, Site{App: "hello", Release: "r1", Hosts: []string{"hello.localhost", host}, Port: appPort,
		StaticDir: filepath.Join(dir, "static"), TLS: []TLSHost{{Host: host, Cert: certFile, Key: certFile}}}); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitServing(ctx, "hello.localhost", "r1", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	_, httpsPort, _ := net.SplitHostPort(n.HTTPSListen)

	plain := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(c *http.Client, url, hostHeader string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = hostHeader
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s (Host %s): %v", url, hostHeader, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}

	code, _, h := get(plain, "http://"+n.Listen+"/path?q=1", host)
	if want := "https://" + host + ":" + httpsPort + "/path?q=1"; code != http.StatusPermanentRedirect || h.Get("Location") != want {
		t.Errorf("plain HTTP for %s: %d Location %q, want 308 to %s", host, code, h.Get("Location"), want)
	}
	if code, body, _ := get(plain, "http://"+n.Listen+"/", "hello.localhost"); code != 200 || body != "app at hello.localhost via http" {
		t.Errorf("a host without TLS: %d %q, want the app over HTTP", code, body)
	}
	// ACME challenges are answered over plain HTTP, for the TLS host and
	// for a host no site has yet.
	if err := os.MkdirAll(n.ChallengeDir(), 0o755); err != nil { // certs.Manager makes it
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.ChallengeDir(), "tok_-en123456789012"), []byte("key-authorization"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, hh := range []string{host, "new.example.test"} {
		code, body, _ := get(plain, "http://"+n.Listen+"/.well-known/acme-challenge/tok_-en123456789012", hh)
		if code != 200 || body != "key-authorization" {
			t.Errorf("ACME challenge for %s: %d %q", hh, code, body)
		}
	}

	dialer := &net.Dialer{Timeout: 5 * time.Second}
	secure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, n.HTTPSListen)
		},
	}}
	if code, body, h := get(secure, "https://"+host+"/", host); code != 200 || body != "app at "+host+" via https" || h.Get("X-Conductor-Release") != "r1" {
		t.Errorf("HTTPS: %d %q release %q", code, body, h.Get("X-Conductor-Release"))
	}
	if _, err := tls.DialWithDialer(dialer, "tcp", n.HTTPSListen, &tls.Config{ServerName: "unknown.example.test", InsecureSkipVerify: true}); err == nil {
		t.Errorf("a TLS handshake for a name without a certificate succeeded")
	}

	// A renewal replaces the file in place; ReloadCerts confirms nginx
	// presents the new certificate.
	newLeaf := ca.writeLeaf(t, host, certFile)
	if err := n.ReloadCerts(ctx, map[string][]byte{host: newLeaf}); err != nil {
		t.Fatal(err)
	}
	if got := n.servedLeaf(ctx, host); string(got) != string(newLeaf) {
		t.Errorf("after ReloadCerts nginx presents another certificate")
	}
}
