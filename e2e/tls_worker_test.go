package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLSOnWorker: an app on a worker host gets HTTPS like one on the
// conductor's host. The conductor runs the ACME order; the worker's nginx
// answers the CA's HTTP-01 challenge (through its agent) and serves the
// certificate, which its builder writes from the state. A worker started
// without --https-addr is refused with the reason; renewal reaches the
// worker (a restart job there); domains:remove deletes the worker's copy.
func TestTLSOnWorker(t *testing.T) {
	t.Parallel()
	natsAddr, httpsAddr, workerHTTPS := freeAddr(t), freeAddr(t), freeAddr(t)
	const domain = "remote-secure.example.test"
	acme := newACME(t)
	in := StartInstance(t, "--nats-addr", natsAddr, "--https-addr", httpsAddr, "--acme-directory", acme.Directory,
		"--acme-ca-file", acme.CAFile, "--acme-renew-before", "30s", "--acme-renew-check", "1s")
	w := in.StartWorker(t, "nats://"+natsAddr, filepath.Join(in.Data, "nats.token"), filepath.Join(in.Data, "nats-tls", "ca.pem"), "w1")
	in.waitHosts(t, "local", "w1")
	_, workerHTTPPort, _ := net.SplitHostPort(w.HTTPAddr)
	acme.Start(workerHTTPPort) // the CA checks challenges at the worker's nginx

	if r := in.SSH(in.AdminKey, "apps:create tlsremote --host w1"); r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}
	if r := in.Push(in.WorkTree("hello"), "tlsremote", "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	if r := in.SSH(in.AdminKey, "domains:add tlsremote "+domain+" --tls"); r.Code == 0 || !strings.Contains(r.Stderr, "w1, which does not serve HTTPS: start its worker with --https-addr") {
		t.Fatalf("domains:add --tls on a worker without HTTPS: %s", r)
	}

	w.Stop()
	w.Extra = []string{"--https-addr", workerHTTPS}
	w.Start()
	in.waitHosts(t, "local", "w1") // its entry went when it stopped
	if r := in.SSH(in.AdminKey, "hosts"); !strings.Contains(r.Stdout, workerHTTPS) {
		t.Errorf("hosts does not show w1's HTTPS address %s: %s", workerHTTPS, r)
	}
	if r := in.SSH(in.AdminKey, "domains:add tlsremote "+domain+" --tls"); r.Code != 0 || !strings.Contains(r.Stdout, "Certificate for "+domain+" valid until") {
		t.Fatalf("domains:add --tls: %s", r)
	}

	secure := httpsClient(acme.Roots(), workerHTTPS)
	resp, err := secure.Get("https://" + domain + "/")
	if err != nil {
		t.Fatalf("GET https://%s/ at the worker: %v", domain, err)
	}
	resp.Body.Close()
	first := resp.TLS.PeerCertificates[0]
	if resp.StatusCode != 200 || first.VerifyHostname(domain) != nil {
		t.Fatalf("GET https://%s/ at the worker: %d, certificate for %v", domain, resp.StatusCode, first.DNSNames)
	}
	certFile := filepath.Join(w.Data, "certs", domain+".pem")
	if fi, err := os.Stat(certFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the worker's certificate file: %v (want mode 0600)", err)
	}
	// The conductor's nginx does not serve the app: only its host does.
	if _, err := httpsClient(acme.Roots(), httpsAddr).Get("https://" + domain + "/"); err == nil {
		t.Errorf("the conductor's nginx serves %s over HTTPS too", domain)
	}

	// Renewal (about 10 s after issue) reaches the worker's nginx.
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := secure.Get("https://" + domain + "/")
		if err == nil {
			resp.Body.Close()
			if c := resp.TLS.PeerCertificates[0]; c.SerialNumber.Cmp(first.SerialNumber) != 0 && c.NotAfter.After(first.NotAfter) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker still serves the first certificate (until %s) 90 s later", first.NotAfter)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if r := in.SSH(in.AdminKey, "deploys tlsremote"); !strings.Contains(r.Stdout, "certificate of "+domain+" renewed") {
		t.Errorf("deploys does not show the renewal's restart: %s", r)
	}

	// domains:remove takes the domain off the worker's HTTPS and deletes
	// the worker's copy of the certificate.
	if r := in.SSH(in.AdminKey, "domains:remove tlsremote "+domain); r.Code != 0 {
		t.Fatalf("domains:remove: %s", r)
	}
	if _, err := os.Stat(certFile); !os.IsNotExist(err) {
		t.Errorf("the worker's certificate file after domains:remove: %v", err)
	}
	if _, err := secure.Get("https://" + domain + "/"); err == nil {
		t.Errorf("%s is still served over HTTPS after domains:remove", domain)
	}
}
