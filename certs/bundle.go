package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/hasadna/conductor"
)

// maxBundle bounds a PEM bundle given on stdin: a chain of a few
// certificates and a key is a few KiB.
const maxBundle = 64 << 10

// Bundle is a certificate chain (leaf first) and the leaf's private key.
type Bundle struct {
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// Leaf is the certificate the server presents.
func (b *Bundle) Leaf() *x509.Certificate { return b.Chain[0] }

// ParseBundle reads PEM certificates (the leaf first, then its
// intermediates) and one private key (PKCS#8, PKCS#1 or SEC 1), in any
// order, and checks that they belong together and cover domain now.
func ParseBundle(data []byte, domain string, now time.Time) (*Bundle, error) {
	if len(data) > maxBundle {
		return nil, invalid("the PEM input is larger than %d KiB", maxBundle>>10)
	}
	var b Bundle
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if len(bytes.TrimSpace(rest)) != 0 {
				return nil, invalid("the input has text that is not PEM")
			}
			break
		}
		switch block.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, invalid("a certificate does not parse: %v", err)
			}
			b.Chain = append(b.Chain, c)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if b.Key != nil {
				return nil, invalid("the input has more than one private key")
			}
			k, err := parseKey(block)
			if err != nil {
				return nil, err
			}
			b.Key = k
		default:
			return nil, invalid("unexpected PEM block %q (want CERTIFICATE and PRIVATE KEY blocks)", block.Type)
		}
	}
	if len(b.Chain) == 0 {
		return nil, invalid("the input has no certificate")
	}
	if b.Key == nil {
		return nil, invalid("the input has no private key")
	}
	if err := b.Check(domain, now); err != nil {
		return nil, err
	}
	return &b, nil
}

func parseKey(block *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		k, err = x509.ParseECPrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, invalid("the private key does not parse: %v", err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		return k.(crypto.Signer), nil
	case ed25519.PrivateKey:
		// Browsers do not accept Ed25519 certificates.
		return nil, invalid("Ed25519 keys are not supported for TLS certificates: use ECDSA or RSA")
	default:
		return nil, invalid("unsupported private key type %T", k)
	}
}

// Check verifies that the key is the leaf's, that each certificate is
// signed by the next, and that the leaf covers domain and is valid now.
func (b *Bundle) Check(domain string, now time.Time) error {
	leaf := b.Leaf()
	pub, ok := b.Key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return invalid("the private key does not match the certificate (the first CERTIFICATE block must be the domain's own)")
	}
	for i := 0; i+1 < len(b.Chain); i++ {
		if err := b.Chain[i].CheckSignatureFrom(b.Chain[i+1]); err != nil {
			return invalid("certificate %d of the chain is not signed by the next one: %v", i+1, err)
		}
	}
	if err := leaf.VerifyHostname(domain); err != nil {
		return invalid("the certificate does not cover %s (it names %v)", domain, leaf.DNSNames)
	}
	if now.Before(leaf.NotBefore) || !now.Before(leaf.NotAfter) {
		return invalid("the certificate is valid from %s to %s, not now", leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// PEM encodes the chain, then the key as PKCS#8: the one file nginx reads
// for both ssl_certificate and ssl_certificate_key.
func (b *Bundle) PEM() ([]byte, error) {
	var buf bytes.Buffer
	for _, c := range b.Chain {
		if err := pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			return nil, err
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(b.Key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	if err := pem.Encode(&buf, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func invalid(format string, args ...any) error {
	return conductor.Errorf(conductor.EINVALID, format, args...)
}

var errNoACME = conductor.Errorf(conductor.EUNAVAILABLE, "this server has no ACME directory: start conductor serve with --acme-directory URL, or give a certificate with domains:cert")
