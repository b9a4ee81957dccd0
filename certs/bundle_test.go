package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// testCert makes a certificate for names signed by parent (self-signed
// when parent is nil), valid from nb to na.
func testCert(t *testing.T, key crypto.Signer, names []string, ca bool, parent *x509.Certificate, parentKey crypto.Signer, nb, na time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test " + strings.Join(names, ",")},
		DNSNames: names, NotBefore: nb, NotAfter: na, IsCA: ca, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pemOf(t *testing.T, typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func pkcs8(t *testing.T, k any) string {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PRIVATE KEY", der)
}

func TestParseBundle(t *testing.T) {
	now := time.Now()
	nb, na := now.Add(-time.Hour), now.Add(24*time.Hour)
	caKey, leafKey, otherKey := ecKey(t), ecKey(t), ecKey(t)
	ca := testCert(t, caKey, nil, true, nil, nil, nb, na)
	leaf := testCert(t, leafKey, []string{"www.example.org"}, false, ca, caKey, nb, na)
	wild := testCert(t, leafKey, []string{"*.example.org"}, false, ca, caKey, nb, na)
	expired := testCert(t, leafKey, []string{"www.example.org"}, false, ca, caKey, now.Add(-48*time.Hour), now.Add(-time.Hour))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaLeaf := testCert(t, rsaKey, []string{"www.example.org"}, false, ca, caKey, nb, na)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(leafKey)

	certPEM := func(cs ...*x509.Certificate) string {
		var s string
		for _, c := range cs {
			s += pemOf(t, "CERTIFICATE", c.Raw)
		}
		return s
	}
	for _, tc := range []struct {
		name, input, domain, wantErr string
	}{
		{"chain and PKCS#8 key", certPEM(leaf, ca) + pkcs8(t, leafKey), "www.example.org", ""},
		{"key first, SEC 1", pemOf(t, "EC PRIVATE KEY", ecDER) + certPEM(leaf), "www.example.org", ""},
		{"RSA PKCS#1", certPEM(rsaLeaf) + pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey)), "www.example.org", ""},
		{"wildcard", certPEM(wild) + pkcs8(t, leafKey), "shop.example.org", ""},
		{"wrong domain", certPEM(leaf) + pkcs8(t, leafKey), "example.org", "does not cover"},
		{"wildcard one level only", certPEM(wild) + pkcs8(t, leafKey), "a.b.example.org", "does not cover"},
		{"key of another cert", certPEM(leaf) + pkcs8(t, otherKey), "www.example.org", "does not match"},
		{"intermediate first", certPEM(ca, leaf) + pkcs8(t, leafKey), "www.example.org", "does not match"},
		{"chain out of order", certPEM(leaf, leaf) + pkcs8(t, leafKey), "www.example.org", "not signed by the next"},
		{"expired", certPEM(expired) + pkcs8(t, leafKey), "www.example.org", "not now"},
		{"no key", certPEM(leaf), "www.example.org", "no private key"},
		{"no cert", pkcs8(t, leafKey), "www.example.org", "no certificate"},
		{"two keys", certPEM(leaf) + pkcs8(t, leafKey) + pkcs8(t, leafKey), "www.example.org", "more than one private key"},
		{"ed25519", certPEM(leaf) + pkcs8(t, edKey), "www.example.org", "Ed25519"},
		{"garbage after PEM", certPEM(leaf) + pkcs8(t, leafKey) + "ssl_certificate /etc/shadow;", "www.example.org", "not PEM"},
		{"other block", certPEM(leaf) + pkcs8(t, leafKey) + pemOf(t, "PUBLIC KEY", []byte{1}), "www.example.org", "unexpected PEM block"},
		{"too large", strings.Repeat("x", maxBundle+1), "www.example.org", "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ParseBundle([]byte(tc.input), tc.domain, now)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseBundle: %v", err)
				}
				out, err := b.PEM()
				if err != nil {
					t.Fatal(err)
				}
				// What Conductor writes reads back as the same pair.
				again, err := ParseBundle(out, tc.domain, now)
				if err != nil || !bytes.Equal(again.Leaf().Raw, b.Leaf().Raw) || len(again.Chain) != len(b.Chain) {
					t.Fatalf("the written bundle does not read back: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseBundle error = %v, want one saying %q", err, tc.wantErr)
			}
		})
	}
}
