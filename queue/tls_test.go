package queue

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The embedded server speaks TLS with a certificate from the data dir's
// CA: a client with ca.pem connects, one without it is refused and told to
// get it, one dialing a name the certificate lacks is refused and told
// about --nats-tls-name. The CA survives a restart; its key is private.
func TestEmbeddedServerTLS(t *testing.T) {
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, TLSDir)
	names := ServerNames("127.0.0.1:0", []string{"nats.example.test"})
	for _, want := range []string{"localhost", "127.0.0.1", "::1", "nats.example.test"} {
		if !contains(names, want) {
			t.Errorf("ServerNames = %q, lacks %q", names, want)
		}
	}
	conf, caFile, err := ServerTLS(tlsDir, names)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(tlsDir, caKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v, mode %v; want 0600", err, fi.Mode())
	}
	firstCA, _ := os.ReadFile(caFile)
	if _, again, err := ServerTLS(tlsDir, names); err != nil {
		t.Fatal(err)
	} else if b, _ := os.ReadFile(again); string(b) != string(firstCA) {
		t.Fatal("a second start made a new CA: workers holding the old ca.pem would be locked out")
	}
	block, _ := pem.Decode(firstCA)
	if ca, err := x509.ParseCertificate(block.Bytes); err != nil || !ca.IsCA {
		t.Fatalf("ca.pem: %v", err)
	}

	const token = "tls-test-token-0123456789"
	ns, err := StartServer("127.0.0.1:0", filepath.Join(dir, "nats"), token, conf)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	ctx := context.Background()

	q, err := Connect(ctx, Conn{URLs: ns.ClientURL(), Token: token, CAFile: caFile}, "tls-test")
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	q.Close()

	if _, err := Connect(ctx, Conn{URLs: ns.ClientURL(), Token: token}, "tls-test"); err == nil || !strings.Contains(err.Error(), "--nats-ca-file") {
		t.Errorf("without the CA: %v, want a hint about --nats-ca-file", err)
	}
	// "localhost" is in the certificate; a name that is not is refused.
	port := ns.ClientURL()[strings.LastIndex(ns.ClientURL(), ":")+1:]
	other := t.TempDir()
	conf2, caFile2, err := ServerTLS(filepath.Join(other, TLSDir), []string{"only.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	ns2, err := StartServer("127.0.0.1:0", filepath.Join(other, "nats"), token, conf2)
	if err != nil {
		t.Fatal(err)
	}
	defer ns2.Shutdown()
	if _, err := Connect(ctx, Conn{URLs: ns2.ClientURL(), Token: token, CAFile: caFile2}, "tls-test"); err == nil || !strings.Contains(err.Error(), "--nats-tls-name") {
		t.Errorf("dialing an address the certificate lacks: %v, want a hint about --nats-tls-name", err)
	}
	if q, err := Connect(ctx, Conn{URLs: "nats://localhost:" + port, Token: token, CAFile: caFile}, "tls-test"); err != nil {
		t.Errorf("dialing localhost: %v", err)
	} else {
		q.Close()
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCheckServerName(t *testing.T) {
	for _, ok := range []string{"conductor", "conductor.example.org", "10.0.0.5", "::1", "a-b.c9"} {
		if err := CheckServerName(ok); err != nil {
			t.Errorf("CheckServerName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b", "-x.org", "x..org", "x.org/", "*.example.org", "a\nb", strings.Repeat("a", 64)} {
		if err := CheckServerName(bad); err == nil {
			t.Errorf("CheckServerName(%q) accepted", bad)
		}
	}
}
