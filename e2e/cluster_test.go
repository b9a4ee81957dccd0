package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// natsNode is one nats-server process of a test cluster.
type natsNode struct {
	name, clientURL string
	args            []string
	cmd             *exec.Cmd
	logs            *lockedBuffer
}

// natsCluster is a real 3-node NATS cluster with JetStream and token auth,
// on loopback ports, each node a nats-server process built from the module
// Conductor embeds.
type natsCluster struct {
	t                                    *testing.T
	nodes                                []*natsNode
	tokenFile, caFile, certFile, keyFile string
}

func startNATSCluster(t *testing.T, dir string) *natsCluster {
	t.Helper()
	bin := filepath.Join(dir, "nats-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, out)
	}
	const token = "e2e-cluster-token-0123456789abcdef"
	c := &natsCluster{t: t, tokenFile: filepath.Join(dir, "nats.token")}
	if err := os.WriteFile(c.tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Clients reach the nodes over TLS, with a certificate of a CA only
	// the test knows: conductor and workers must be given it.
	c.caFile, c.certFile, c.keyFile = writeLoopbackCert(t, dir)
	var routes []string
	clientAddrs := make([]string, 3)
	for i := range 3 {
		clientAddrs[i] = freeAddr(t)
		routes = append(routes, "nats://"+freeAddr(t))
	}
	for i := range 3 {
		_, port, _ := strings.Cut(clientAddrs[i], ":")
		_, clusterPort, _ := strings.Cut(strings.TrimPrefix(routes[i], "nats://"), ":")
		n := &natsNode{name: fmt.Sprintf("n%d", i+1), clientURL: "nats://" + clientAddrs[i], logs: &lockedBuffer{}}
		n.clientURL = "tls://" + clientAddrs[i]
		n.args = []string{"-n", n.name, "-a", "127.0.0.1", "-p", port, "--auth", token,
			"--tls", "--tlscert", c.certFile, "--tlskey", c.keyFile,
			"-js", "-sd", filepath.Join(dir, "nats-"+n.name),
			"--cluster_name", "conductor-e2e", "--cluster", "nats://127.0.0.1:" + clusterPort,
			"--routes", strings.Join(routes, ",")}
		n.cmd = exec.Command(bin, n.args...)
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		c.start(n)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			if n.cmd != nil && n.cmd.Process != nil {
				_ = n.cmd.Process.Kill()
				_ = n.cmd.Wait()
			}
			if t.Failed() {
				t.Logf("nats %s output:\n%s", n.name, n.logs.String())
			}
		}
	})
	return c
}

func (c *natsCluster) start(n *natsNode) {
	c.t.Helper()
	n.cmd = exec.Command(n.cmd.Path, n.args...)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
}

// URLs is the comma-separated client URLs of all nodes.
func (c *natsCluster) URLs() string {
	var urls []string
	for _, n := range c.nodes {
		urls = append(urls, n.clientURL)
	}
	return strings.Join(urls, ",")
}

// Kill kills a node with SIGKILL.
func (c *natsCluster) Kill(i int) {
	n := c.nodes[i]
	_ = n.cmd.Process.Kill()
	_ = n.cmd.Wait()
}

// Worker is a running `conductor worker`: a builder host of its own, with
// its own data dir, circusd and nginx.
type Worker struct {
	t                    *testing.T
	Host, Data, HTTPAddr string
	natsURLs, natsToken  string
	natsCA               string
	Extra                []string // more flags, for the next Start
	cmd                  *exec.Cmd
	out                  *lockedBuffer
	ports                string // --port-range, kept across restarts
}

// StartWorker runs a worker for host against the NATS servers at urls
// (caFile: their TLS certificates' CA, or "").
func (in *Instance) StartWorker(t *testing.T, urls, tokenFile, caFile, host string) *Worker {
	t.Helper()
	w := &Worker{t: t, Host: host, Data: filepath.Join(in.Dir, "worker-"+host), HTTPAddr: freeAddr(t),
		natsURLs: urls, natsToken: tokenFile, natsCA: caFile, out: &lockedBuffer{}}
	w.Start()
	t.Cleanup(func() {
		w.Stop()
		if t.Failed() {
			t.Logf("worker %s output:\n%s", host, w.out.String())
		}
	})
	return w
}

func (w *Worker) Start() {
	w.t.Helper()
	if w.ports == "" { // its own ports: other tests run at the same time
		p := nextPorts()
		w.ports = fmt.Sprintf("%d-%d", p, p+19)
	}
	args := []string{"worker", "--host", w.Host, "--data", w.Data, "--http-addr", w.HTTPAddr,
		"--nats-url", w.natsURLs, "--nats-token-file", w.natsToken, "--log-level", "debug", "--port-range", w.ports}
	if w.natsCA != "" {
		args = append(args, "--nats-ca-file", w.natsCA)
	}
	args = append(args, w.Extra...)
	w.cmd = exec.Command(conductorBin, args...)
	w.cmd.Stdout, w.cmd.Stderr = w.out, w.out
	if err := w.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
}

// Stop sends SIGTERM and waits.
func (w *Worker) Stop() {
	if w.cmd == nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			w.t.Errorf("worker %s exited with %v", w.Host, err)
		}
	case <-time.After(60 * time.Second):
		_ = w.cmd.Process.Kill()
		w.t.Errorf("worker %s did not stop within 60s of SIGTERM", w.Host)
		<-done
	}
	w.cmd = nil
}

// Kill kills the worker with SIGKILL, as a crash would.
func (w *Worker) Kill() {
	_ = w.cmd.Process.Kill()
	_ = w.cmd.Wait()
	w.cmd = nil
}

// Get fetches path from the worker's nginx with the app's Host header.
func (w *Worker) Get(app, path string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+w.HTTPAddr+path, nil)
	req.Host = app + ".localhost"
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (in *Instance) waitHosts(t *testing.T, want ...string) {
	t.Helper()
	waitFor(t, "hosts "+strings.Join(want, ", "), func() bool {
		r := in.SSH(in.AdminKey, "hosts")
		for _, h := range want {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(h) + `\s+up\s`).MatchString(r.Stdout) {
				return false
			}
		}
		return r.Code == 0
	})
}

func (in *Instance) deployStatuses(t *testing.T, app string) string {
	t.Helper()
	out, err := exec.Command("sqlite3", filepath.Join(in.Data, "conductor.db"),
		"SELECT d.status || ' ' || d.error FROM deploys d JOIN apps a ON a.id = d.app_id WHERE a.name = '"+app+"' ORDER BY d.created_at").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestCluster: a conductor and two workers on a real 3-node NATS cluster.
// Apps are placed on hosts and deployed, served and logged there; a host
// that is down makes its jobs wait; a worker killed mid-deploy fails the
// job cleanly when it comes back and deploys again; the conductor killed
// while a worker deploys loses no job; a NATS node killed does not stop
// pushes.
func TestCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cluster := startNATSCluster(t, dir)
	in := StartInstance(t, "--nats-url", cluster.URLs(), "--nats-token-file", cluster.tokenFile, "--nats-ca-file", cluster.caFile)
	h1 := in.StartWorker(t, cluster.URLs(), cluster.tokenFile, cluster.caFile, "h1")
	h2 := in.StartWorker(t, cluster.URLs(), cluster.tokenFile, cluster.caFile, "h2")
	in.waitHosts(t, "local", "h1", "h2")

	// A worker refuses a host name another live worker holds.
	dup := exec.Command(conductorBin, "worker", "--host", "h1", "--data", filepath.Join(in.Dir, "dup"), "--http-addr", freeAddr(t),
		"--nats-url", cluster.URLs(), "--nats-token-file", cluster.tokenFile, "--nats-ca-file", cluster.caFile)
	if out, err := dup.CombinedOutput(); err == nil || !strings.Contains(string(out), "host h1 is already served by another worker") {
		t.Errorf("a second worker for h1: %v\n%s", err, out)
	}
	// A worker that does not trust the cluster's CA does not connect.
	untrusting := exec.Command(conductorBin, "worker", "--host", "h3", "--data", filepath.Join(in.Dir, "h3"), "--http-addr", freeAddr(t),
		"--nats-url", cluster.URLs(), "--nats-token-file", cluster.tokenFile)
	if out, err := untrusting.CombinedOutput(); err == nil || !strings.Contains(string(out), "certificate signed by unknown authority") {
		t.Errorf("a worker without the cluster's CA: %v\n%s", err, out)
	}
	// Bad placement is refused and changes nothing.
	if r := in.SSH(in.AdminKey, "apps:create ghost --host h9"); r.Code == 0 || !strings.Contains(r.Stderr, "host h9 is not up") {
		t.Errorf("apps:create --host h9: %s", r)
	}
	if r := in.SSH(in.AdminKey, "apps:create ghost --host 'h.1'"); r.Code == 0 || !strings.Contains(r.Stderr, "invalid host name") {
		t.Errorf("apps:create --host h.1: %s", r)
	}

	for app, host := range map[string]string{"alpha": "h1", "beta": "h2"} {
		if r := in.SSH(in.AdminKey, "apps:create "+app+" --host "+host); r.Code != 0 || !strings.Contains(r.Stdout, "on host "+host) {
			t.Fatalf("apps:create %s --host %s: %s", app, host, r)
		}
	}
	// Without --host, the live host with the fewest apps: local has none.
	if r := in.SSH(in.AdminKey, "apps:create gamma"); r.Code != 0 || !strings.Contains(r.Stdout, "on host local") {
		t.Fatalf("apps:create gamma: %s", r)
	}
	works := map[string]string{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, app := range []string{"alpha", "beta"} {
		works[app] = in.WorkTree("hello")
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := in.Push(works[app], app, "main")
			mu.Lock()
			defer mu.Unlock()
			if r.Code != 0 {
				t.Errorf("push %s: %s", app, r)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for app, w := range map[string]*Worker{"alpha": h1, "beta": h2} {
		if code, body := w.Get(app, "/"); code != 200 || !strings.Contains(body, "Hello from Conductor v1<") {
			t.Errorf("%s on %s: %d %q", app, w.Host, code, body)
		}
		// Each app runs on its host only.
		if code, _, _ := in.Get(app, "/"); code == 200 {
			t.Errorf("%s is served by the conductor's own nginx too", app)
		}
		if r := in.SSH(in.AdminKey, "apps:info "+app); !strings.Contains(r.Stdout, "Host:        "+w.Host) {
			t.Errorf("apps:info %s: %s", app, r)
		}
		// Runtime logs come from the app's host: gunicorn's start-up lines.
		if r := in.SSH(in.AdminKey, "logs "+app); r.Code != 0 || !strings.Contains(r.Stdout, "web.1: ") || !strings.Contains(r.Stdout, "Listening at") {
			t.Errorf("logs %s: %s", app, r)
		}
	}
	if r := in.SSH(in.AdminKey, "hosts"); !strings.Contains(r.Stdout, "h1") || !strings.Contains(r.Stdout, "h2") {
		t.Errorf("hosts: %s", r)
	}

	// ps, ps:scale and run act on the app's host.
	if r := in.SSH(in.AdminKey, "ps:scale beta web=2"); r.Code != 0 {
		t.Errorf("ps:scale beta web=2: %s", r)
	}
	waitFor(t, "two web processes of beta on h2", func() bool {
		return strings.Contains(in.SSH(in.AdminKey, "ps beta").Stdout, "web          2/2  active")
	})
	if r := in.SSH(in.AdminKey, "ps:scale beta nosuch=1"); r.Code == 0 || !strings.Contains(r.Stderr, "has no process type nosuch") {
		t.Errorf("ps:scale beta nosuch=1: %s", r)
	}
	if r := in.SSH(in.AdminKey, "run alpha -- python -c 'import os; print(\"cwd\", os.getcwd())'"); r.Code != 0 ||
		!strings.Contains(r.Stdout, "cwd "+h1.Data+"/srv/projects/alpha/releases/") {
		t.Errorf("run on h1: %s", r)
	}
	if r := in.SSH(in.AdminKey, "run alpha -- python -c 'import sys; sys.stderr.write(\"oops\\n\"); sys.exit(7)'"); r.Code != 7 || !strings.Contains(r.Stderr, "oops") {
		t.Errorf("run with exit 7 on h1: %s", r)
	}

	t.Run("host down: the job waits for its worker", func(t *testing.T) {
		h2.Stop()
		// Commands that need the host say it is down; hosts shows it.
		if r := in.SSH(in.AdminKey, "ps beta"); r.Code == 0 || !strings.Contains(r.Stderr, "host h2 is down") {
			t.Errorf("ps beta while h2 is down: %s", r)
		}
		if r := in.SSH(in.AdminKey, "hosts"); !regexp.MustCompile(`(?m)^h2\s+down\s`).MatchString(r.Stdout) {
			t.Errorf("hosts while h2 is down: %s", r)
		}
		setVersion(t, works["beta"], "v2")
		in.Commit(works["beta"], "v2")
		pushed := make(chan Result, 1)
		go func() { pushed <- in.Push(works["beta"], "beta", "main") }()
		time.Sleep(3 * time.Second)
		if s := in.deployStatuses(t, "beta"); strings.Count(s, "\n") != 0 {
			t.Errorf("a job ran while its host was down: %s", s)
		}
		h2.Start()
		r := <-pushed
		if r.Code != 0 || !strings.Contains(r.Stderr, "Host h2 of beta is down: the job waits in the queue") {
			t.Fatalf("push while h2 was down: %s", r)
		}
		if _, body := h2.Get("beta", "/"); !strings.Contains(body, "Hello from Conductor v2<") {
			t.Errorf("beta after h2 came back: %q", body)
		}
	})

	t.Run("worker killed mid-deploy", func(t *testing.T) {
		work := works["alpha"]
		pushed := in.pushSlowRelease(t, work, "alpha", "v2", 120)
		h1.Kill()
		h1.Start()
		r := <-pushed
		if r.Code == 0 || !strings.Contains(r.Stderr, "the builder stopped during this deploy") {
			t.Errorf("push whose worker was killed: %s", r)
		}
		waitFor(t, "v1 served by h1 after its restart", func() bool {
			_, body := h1.Get("alpha", "/")
			return strings.Contains(body, "Hello from Conductor v1<")
		})
		if s := in.deployStatuses(t, "alpha"); !strings.HasSuffix(s, "failed the builder stopped during this deploy; the previous release kept serving") {
			t.Errorf("alpha's deploys: %s", s)
		}
		writeFile(t, filepath.Join(work, "Procfile"), "web: gunicorn hello.wsgi --log-file -\n")
		setVersion(t, work, "v3")
		in.Commit(work, "v3")
		if r := in.Push(work, "alpha", "main"); r.Code != 0 {
			t.Fatalf("push after the worker came back: %s", r)
		}
		if _, body := h1.Get("alpha", "/"); !strings.Contains(body, "Hello from Conductor v3<") {
			t.Errorf("alpha: %q, want v3", body)
		}
	})

	t.Run("conductor killed while a worker deploys", func(t *testing.T) {
		work := works["beta"]
		pushed := in.pushSlowRelease(t, work, "beta", "v3", 8)
		in.Kill()
		<-pushed // the pusher's connection went with the conductor
		in.Start()
		waitFor(t, "beta's v3 to go live on h2 anyway", func() bool {
			_, body := h2.Get("beta", "/")
			return strings.Contains(body, "Hello from Conductor v3<")
		})
		waitFor(t, "the deploy recorded as succeeded", func() bool {
			s := in.deployStatuses(t, "beta")
			return strings.HasSuffix(s, "succeeded")
		})
	})

	t.Run("destroy on the app's host", func(t *testing.T) {
		r := in.SSH(in.AdminKey, "apps:destroy alpha --confirm alpha")
		if r.Code != 0 || !strings.Contains(r.Stdout, "Removing alpha from host h1") {
			t.Fatalf("apps:destroy alpha: %s", r)
		}
		if _, err := os.Stat(filepath.Join(h1.Data, "srv", "projects", "alpha")); !os.IsNotExist(err) {
			t.Errorf("alpha's files on h1 after destroy: %v", err)
		}
		if code, _ := h1.Get("alpha", "/"); code == 200 {
			t.Errorf("alpha still served by h1 after destroy")
		}
	})

	t.Run("a NATS node killed", func(t *testing.T) {
		cluster.Kill(0)
		work := works["beta"]
		writeFile(t, filepath.Join(work, "Procfile"), "web: gunicorn hello.wsgi --log-file -\n")
		setVersion(t, work, "v4")
		in.Commit(work, "v4")
		if r := in.Push(work, "beta", "main"); r.Code != 0 {
			t.Fatalf("push with one NATS node down: %s", r)
		}
		if _, body := h2.Get("beta", "/"); !strings.Contains(body, "Hello from Conductor v4<") {
			t.Errorf("beta: %q, want v4", body)
		}
		if r := in.SSH(in.AdminKey, "logs beta -n 5"); r.Code != 0 {
			t.Errorf("logs with one NATS node down: %s", r)
		}
	})
}

// TestWorkerOnEmbeddedNATS: the default topology for a few hosts, a worker
// talking to the conductor's embedded NATS server over TLS (verified with
// the CA in the conductor's data dir) with the token from that data dir. A
// client with a wrong token or without the CA is refused, and the worker
// carries on after the conductor (and with it the NATS server) restarts.
func TestWorkerOnEmbeddedNATS(t *testing.T) {
	t.Parallel()
	natsAddr := freeAddr(t)
	in := StartInstance(t, "--nats-addr", natsAddr)
	tokenFile := filepath.Join(in.Data, "nats.token")
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("nats.token: %v (mode %v), want a 0600 file made by serve", err, fi)
	}
	caFile := filepath.Join(in.Data, "nats-tls", "ca.pem")
	if fi, err := os.Stat(filepath.Join(in.Data, "nats-tls", "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("nats-tls/ca.key: %v (mode %v), want a 0600 file made by serve", err, fi)
	}
	// No token, no NATS: a worker without one is refused by the server.
	empty := filepath.Join(in.Dir, "wrong.token")
	if err := os.WriteFile(empty, []byte("not-the-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := exec.Command(conductorBin, "worker", "--host", "intruder", "--data", filepath.Join(in.Dir, "intruder"),
		"--http-addr", freeAddr(t), "--nats-url", "nats://"+natsAddr, "--nats-token-file", empty, "--nats-ca-file", caFile)
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "Authorization Violation") {
		t.Errorf("worker with a wrong token: %v\n%s", err, out)
	}
	// The right token but no CA: the worker does not trust the server (and
	// so never sends it the token), and says what it needs.
	noCA := exec.Command(conductorBin, "worker", "--host", "noca", "--data", filepath.Join(in.Dir, "noca"),
		"--http-addr", freeAddr(t), "--nats-url", "nats://"+natsAddr, "--nats-token-file", tokenFile)
	if out, err := noCA.CombinedOutput(); err == nil || !strings.Contains(string(out), "--nats-ca-file") {
		t.Errorf("worker without the CA: %v\n%s", err, out)
	}

	w := in.StartWorker(t, "nats://"+natsAddr, tokenFile, caFile, "w1")
	in.waitHosts(t, "local", "w1")
	if r := in.SSH(in.AdminKey, "apps:create remote --host w1"); r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}
	work := in.WorkTree("hello")
	if r := in.Push(work, "remote", "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	if _, body := w.Get("remote", "/"); !strings.Contains(body, "Hello from Conductor v1<") {
		t.Fatalf("remote on w1: %q", body)
	}
	// A backup on the conductor's host says that w1's app files are not in it.
	r := runCmd(t, "", nil, nil, conductorBin, "backup", "--data", in.Data, "--out", filepath.Join(in.Dir, "backup.tar.gz"))
	if r.Code != 0 || !strings.Contains(r.Stderr, "Not included: the files of remote (host w1)") {
		t.Errorf("backup with an app on a worker: %s", r)
	}

	in.Stop()
	in.Start()
	in.waitHosts(t, "local", "w1")
	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	if r := in.Push(work, "remote", "main"); r.Code != 0 {
		t.Fatalf("push after the conductor restarted: %s", r)
	}
	if _, body := w.Get("remote", "/"); !strings.Contains(body, "Hello from Conductor v2<") {
		t.Errorf("remote on w1 after the restart: %q", body)
	}
	if r := in.SSH(in.AdminKey, "run remote -- python -c 'print(6*7)'"); r.Code != 0 || strings.TrimSpace(r.Stdout) != "42" {
		t.Errorf("run on w1 after the restart: %s", r)
	}
}

// writeLoopbackCert writes a CA certificate and a server certificate for
// 127.0.0.1 signed by it, and the server's key.
func writeLoopbackCert(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e NATS CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "nats-ca.pem"), filepath.Join(dir, "nats-cert.pem"), filepath.Join(dir, "nats-key.pem")
	for path, block := range map[string]*pem.Block{
		caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return caFile, certFile, keyFile
}
