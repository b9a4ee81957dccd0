package gitserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hasadna/conductor/certs"
)

// selfSigned is a PEM certificate for host and its key.
func selfSigned(t *testing.T, host string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) +
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func TestDomainsTLSCommands(t *testing.T) {
	ts := newTestServer(t, filepath.Join(t.TempDir(), "c.db"))
	run := func(line, stdin string, wantCode int, want string) string {
		t.Helper()
		code, out, errOut := ts.run(ts.admin, line, stdin)
		if code != wantCode || !strings.Contains(out+errOut, want) {
			t.Fatalf("%s: exit %d, want %d with %q\n%s%s", line, code, wantCode, want, out, errOut)
		}
		return out
	}
	run("apps:create hello", "", 0, "Created hello")

	// A server without --https-addr says how to get HTTPS.
	run("domains:add hello www.example.org --tls", "", 1, "--https-addr")
	run("domains:cert hello www.example.org", selfSigned(t, "www.example.org"), 1, "--https-addr")

	m := &certs.Manager{Store: ts.db, Dir: filepath.Join(t.TempDir(), "certs"), Challenges: t.TempDir()}
	ts.cfg.Certs = m
	run("domains:add hello www.example.org --tls", "", 1, "--acme-directory")
	run("domains:cert hello www.example.org", selfSigned(t, "www.example.org"), 1, "add it with domains:add first")
	run("domains:add hello www.example.org", "", 0, "Added www.example.org")
	run("domains:cert hello www.example.org", "not pem", 1, "not PEM")
	run("domains:cert hello www.example.org", selfSigned(t, "other.example.org"), 1, "does not cover www.example.org")
	run("domains:cert hello www.example.org", selfSigned(t, "www.example.org"), 0, "Installed the certificate for www.example.org")
	run("domains hello", "", 0, "www.example.org (https, manual certificate, expires ")
	run("domains hello --json", "", 0, `"source": "manual"`)
	fi, err := os.Stat(m.Path("www.example.org"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("certificate file: %v", err)
	}
	// The audit trail names the command, never the key it read.
	entries, err := ts.db.ListAudit(t.Context(), "hello", 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Detail, "PRIVATE") {
			t.Errorf("audit entry holds the key: %+v", e)
		}
	}
	run("domains:remove hello www.example.org", "", 0, "Removed www.example.org")
	if _, err := os.Stat(m.Path("www.example.org")); !os.IsNotExist(err) {
		t.Errorf("certificate file after domains:remove: %v", err)
	}
	if all, err := ts.db.AllCertificates(t.Context()); err != nil || len(all) != 0 {
		t.Errorf("certificates after domains:remove: %v %v", all, err)
	}
}
