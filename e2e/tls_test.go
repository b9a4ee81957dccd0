package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pebbleVersion is the ACME test server the TLS test runs (Let's Encrypt's
// pebble, built from the Go module proxy).
const pebbleVersion = "v2.10.1"

// buildPebble builds pebble and its mock DNS server into a temp dir.
func buildPebble(t *testing.T) (pebble, challtestsrv string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "install",
		"github.com/letsencrypt/pebble/v2/cmd/pebble@"+pebbleVersion,
		"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@"+pebbleVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pebble %s: %v\n%s", pebbleVersion, err, out)
	}
	return filepath.Join(dir, "pebble"), filepath.Join(dir, "pebble-challtestsrv")
}

// apiCA writes a CA and a certificate for 127.0.0.1 signed by it, for
// pebble's own HTTPS (the ACME API); conductor trusts the CA through
// --acme-ca-file. It returns the CA's, the certificate's and the key's files
// (the CA's key is api-ca-key.pem beside them).
func apiCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e ACME API CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	cakder, _ := x509.MarshalPKCS8PrivateKey(caKey)
	caFile, certFile, keyFile = filepath.Join(dir, "api-ca.pem"), filepath.Join(dir, "api-cert.pem"), filepath.Join(dir, "api-key.pem")
	for path, block := range map[string]*pem.Block{caFile: {Type: "CERTIFICATE", Bytes: caDER},
		certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: kder},
		filepath.Join(dir, "api-ca-key.pem"): {Type: "PRIVATE KEY", Bytes: cakder}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}

// startProcess runs a helper server until the test ends.
func startProcess(t *testing.T, name string, env []string, args ...string) *lockedBuffer {
	t.Helper()
	out := &lockedBuffer{}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	return out
}

func waitTLSListening(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, addr+" to listen", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// TestTLS: domains:add --tls gets a certificate from a local ACME CA
// (pebble) that checks the HTTP-01 challenge through Conductor's nginx;
// the app is then served over HTTPS with it, plain HTTP redirects there
// (except the challenge path), and the renewal loop replaces the
// certificate before it expires and nginx serves the new one.
// acmeCA is a running pebble (with its mock DNS server, which resolves
// every name to 127.0.0.1): the ACME directory conductor is given, the CA
// file that makes conductor trust pebble's API, and its management API.
type acmeCA struct {
	t                       *testing.T
	Directory, CAFile       string
	dir, apiCert, apiKey    string
	addr, mgmt, dns, dnsAPI string
	pebble, challtestsrv    string
}

// newACME builds pebble and picks its addresses; Start starts it.
func newACME(t *testing.T) *acmeCA {
	t.Helper()
	a := &acmeCA{t: t, dir: t.TempDir(), addr: freeAddr(t), mgmt: freeAddr(t), dns: freeAddr(t), dnsAPI: freeAddr(t)}
	a.pebble, a.challtestsrv = buildPebble(t)
	a.CAFile, a.apiCert, a.apiKey = apiCA(t, a.dir)
	a.Directory = "https://" + a.addr + "/dir"
	return a
}

// Start starts pebble, which fetches HTTP-01 answers from
// http://<domain>:<httpPort>/.well-known/acme-challenge/ (an nginx of
// Conductor's) and issues certificates valid for 40 s.
func (a *acmeCA) Start(httpPort string) {
	t := a.t
	t.Helper()
	startProcess(t, a.challtestsrv, nil, "-dnsserver", a.dns, "-management", a.dnsAPI,
		"-http01", "", "-https01", "", "-doh", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "")
	config := map[string]any{"pebble": map[string]any{
		"listenAddress": a.addr, "managementListenAddress": a.mgmt,
		"certificate": a.apiCert, "privateKey": a.apiKey, "httpPort": atoi(t, httpPort), "tlsPort": 0,
		"keyAlgorithm": "ecdsa", "retryAfter": map[string]int{"authz": 1, "order": 1},
		"profiles": map[string]any{"default": map[string]any{"description": "e2e", "validityPeriod": 40}},
	}}
	raw, _ := json.Marshal(config)
	configFile := filepath.Join(a.dir, "pebble.json")
	if err := os.WriteFile(configFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	startProcess(t, a.pebble, []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_VA_ALWAYS_VALID=0", "PEBBLE_WFE_NONCEREJECT=0"},
		"-config", configFile, "-dnsserver", a.dns)
	waitTLSListening(t, a.dns)
	waitTLSListening(t, a.addr)
	waitTLSListening(t, a.mgmt)
}

// Roots is pebble's root certificate, which only its management API hands
// out: what the certificates it issues chain to.
func (a *acmeCA) Roots() *x509.CertPool {
	t := a.t
	t.Helper()
	apiPool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(a.CAFile)
	apiPool.AppendCertsFromPEM(caPEM)
	mgmt := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: apiPool}}}
	resp, err := mgmt.Get("https://" + a.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("pebble's root is not PEM: %q", rootPEM)
	}
	return roots
}

// httpsClient trusts roots and connects every request to addr (an nginx's
// HTTPS port), whatever the URL's host; each request sees the certificate
// nginx serves at that moment.
func httpsClient(roots *x509.CertPool, addr string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	httpsAddr := freeAddr(t)
	const domain = "secure.example.test"

	// Certificates live 40 s and are renewed 30 s before they expire, so
	// the loop (checking every second) renews one about 10 s after issue.
	acme := newACME(t)
	in := StartInstance(t, "--https-addr", httpsAddr, "--acme-directory", acme.Directory,
		"--acme-ca-file", acme.CAFile, "--acme-renew-before", "30s", "--acme-renew-check", "1s")
	_, httpPort, _ := net.SplitHostPort(in.HTTPAddr)
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)
	acme.Start(httpPort)

	if r := in.Push(in.WorkTree("hello"), "tls-app", "main"); r.Code != 0 {
		t.Fatalf("push failed: %s", r)
	}
	r := in.SSH(in.AdminKey, "domains:add tls-app "+domain+" --tls")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Certificate for "+domain+" valid until") || !strings.Contains(r.Stdout, "Answering the CA's http-01 challenge") {
		t.Fatalf("domains:add --tls: %s", r)
	}

	// The certificate chains to pebble's root.
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	secure := httpsClient(acme.Roots(), httpsAddr)
	getHTTPS := func() (*http.Response, string) {
		t.Helper()
		resp, err := secure.Get("https://" + domain + "/")
		if err != nil {
			t.Fatalf("GET https://%s/: %v", domain, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, body := getHTTPS()
	if resp.StatusCode != 200 || !strings.Contains(body, "Hello from Conductor") {
		t.Fatalf("GET https://%s/: %d\n%s", domain, resp.StatusCode, body)
	}
	first := resp.TLS.PeerCertificates[0]
	if first.Issuer.CommonName == "" || first.VerifyHostname(domain) != nil {
		t.Fatalf("served certificate %v does not name %s", first.Subject, domain)
	}

	// Plain HTTP redirects to HTTPS; the ACME challenge path does not.
	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]int{"/greet?x=1": http.StatusPermanentRedirect, "/.well-known/acme-challenge/no-such-token-123456": http.StatusNotFound} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+in.HTTPAddr+path, nil)
		req.Host = domain
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET http://%s%s: %d, want %d", domain, path, resp.StatusCode, want)
		}
		if loc := "https://" + domain + ":" + httpsPort + path; want == http.StatusPermanentRedirect && resp.Header.Get("Location") != loc {
			t.Errorf("redirect to %q, want %q", resp.Header.Get("Location"), loc)
		}
	}
	// The app's own name stays on plain HTTP.
	if code, body, _ := in.Get("tls-app", "/"); code != 200 || !strings.Contains(body, "Hello from Conductor") {
		t.Errorf("GET http://tls-app.localhost/: %d", code)
	}
	if r := in.SSH(in.AdminKey, "domains tls-app"); r.Code != 0 || !strings.Contains(r.Stdout, domain+" (https, acme certificate, expires ") {
		t.Errorf("domains: %s", r)
	}

	// Renewal: the loop gets a new certificate and has nginx load it; once
	// it says so, the workers that had the old one have exited.
	waitFor(t, "the renewed certificate to be served", func() bool {
		return strings.Contains(in.logs.String(), "nginx serves the renewed certificates")
	})
	resp, body = getHTTPS()
	renewed := resp.TLS.PeerCertificates[0]
	if resp.StatusCode != 200 || !strings.Contains(body, "Hello from Conductor") || renewed.SerialNumber.Cmp(first.SerialNumber) == 0 ||
		!renewed.NotAfter.After(first.NotAfter) {
		t.Fatalf("after renewal: %d, certificate until %s (first until %s)", resp.StatusCode, renewed.NotAfter, first.NotAfter)
	}
	var listing struct {
		TLS []struct {
			Domain, Source string
			NotAfter       time.Time `json:"not_after"`
			LastError      string    `json:"last_error"`
		} `json:"tls"`
	}
	r = in.SSH(in.AdminKey, "domains tls-app --json")
	if err := json.Unmarshal([]byte(r.Stdout), &listing); err != nil || len(listing.TLS) != 1 {
		t.Fatalf("domains --json: %v\n%s", err, r)
	}
	if c := listing.TLS[0]; c.Domain != domain || c.Source != "acme" || !c.NotAfter.After(first.NotAfter) || c.LastError != "" {
		t.Errorf("recorded certificate after renewal: %+v", c)
	}
	// Keys are private: the certificate file (chain and key) is 0600.
	certFile := filepath.Join(in.Data, "certs", domain+".pem")
	if fi, err := os.Stat(certFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("certificate file: %v", err)
	}

	// A certificate given on stdin (domains:cert) for another domain: a key
	// that is not the certificate's is refused, the right one is served.
	const manual = "manual.example.test"
	if r := in.SSH(in.AdminKey, "domains:add tls-app "+manual); r.Code != 0 {
		t.Fatalf("domains:add %s: %s", manual, r)
	}
	ownCA, _, _ := apiCA(t, t.TempDir())
	caPEM, _ := os.ReadFile(ownCA)
	leafPEM, keyPEM, otherKeyPEM := signLeaf(t, ownCA, manual)
	if r := in.sshStdin(in.AdminKey, "domains:cert tls-app "+manual, leafPEM+otherKeyPEM); r.Code == 0 || !strings.Contains(r.Stderr, "does not match") {
		t.Errorf("domains:cert with another key: %s", r)
	}
	if r := in.sshStdin(in.AdminKey, "domains:cert tls-app "+manual, leafPEM+keyPEM); r.Code != 0 || !strings.Contains(r.Stdout, "Installed the certificate for "+manual) {
		t.Fatalf("domains:cert: %s", r)
	}
	own := x509.NewCertPool()
	own.AppendCertsFromPEM(caPEM)
	ownClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: own},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, httpsAddr)
		},
	}}
	if resp, err := ownClient.Get("https://" + manual + "/"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET https://%s/ with the given certificate: %v", manual, err)
	} else {
		resp.Body.Close()
	}

	// domains:remove takes the domain off HTTPS and deletes its file.
	if r := in.SSH(in.AdminKey, "domains:remove tls-app "+domain); r.Code != 0 {
		t.Fatalf("domains:remove: %s", r)
	}
	if _, err := os.Stat(certFile); !os.IsNotExist(err) {
		t.Errorf("certificate file after domains:remove: %v", err)
	}
	if _, err := secure.Get("https://" + domain + "/"); err == nil {
		t.Errorf("%s is still served over HTTPS after domains:remove", domain)
	}

	// apps:destroy takes the certificates of the app's domains with it.
	manualFile := filepath.Join(in.Data, "certs", manual+".pem")
	if _, err := os.Stat(manualFile); err != nil {
		t.Fatalf("certificate file of %s: %v", manual, err)
	}
	if r := in.SSH(in.AdminKey, "apps:destroy tls-app --confirm tls-app"); r.Code != 0 {
		t.Fatalf("apps:destroy: %s", r)
	}
	if _, err := os.Stat(manualFile); !os.IsNotExist(err) {
		t.Errorf("certificate file of %s after apps:destroy: %v", manual, err)
	}

	// The dashboard, conductor.<domain>, got its own certificate from the
	// CA (it answered the challenge over plain HTTP), is served over HTTPS
	// with it, and plain HTTP redirects there.
	const dashboard = "conductor.localhost"
	var dash *http.Response
	waitFor(t, "the dashboard over HTTPS with a certificate from the CA", func() bool {
		r, err := secure.Get("https://" + dashboard + "/login")
		if err != nil {
			return false
		}
		r.Body.Close()
		dash = r
		return true
	})
	if c := dash.TLS.PeerCertificates[0]; c.VerifyHostname(dashboard) != nil || dash.StatusCode >= 500 {
		t.Errorf("the dashboard over HTTPS: %d, certificate for %v", dash.StatusCode, c.DNSNames)
	}
	if r := in.SSH(in.AdminKey, "dashboard"); !strings.Contains(r.Stdout, "https://"+dashboard+":"+httpsPort+"/") {
		t.Errorf("ssh dashboard does not give an https URL: %s", r)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.HTTPAddr+"/login", nil)
	req.Host = dashboard
	if r, err := plain.Do(req); err != nil || r.StatusCode != http.StatusPermanentRedirect {
		t.Errorf("the dashboard over plain HTTP: %v %v, want a redirect to HTTPS", r, err)
	} else {
		r.Body.Close()
	}
}

// signLeaf signs a certificate for host with the CA made by apiCA (its key
// is the file next to it) and returns the certificate, its key and another
// key, as PEM.
func signLeaf(t *testing.T, caFile, host string) (leafPEM, keyPEM, otherKeyPEM string) {
	t.Helper()
	raw, _ := os.ReadFile(caFile)
	block, _ := pem.Decode(raw)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = os.ReadFile(filepath.Join(filepath.Dir(caFile), "api-ca-key.pem"))
	block, _ = pem.Decode(raw)
	caKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := x509.MarshalPKCS8PrivateKey(key)
	k2, _ := x509.MarshalPKCS8PrivateKey(other)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k1})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k2}))
}

// sshStdin is SSH with stdin.
func (in *Instance) sshStdin(key, remote, stdin string) Result {
	in.t.Helper()
	args := append(strings.Fields(in.sshCommand(key))[1:], "git@127.0.0.1", remote)
	return runCmd(in.t, "", nil, strings.NewReader(stdin), "ssh", args...)
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
