package certs

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/lazyre"
)

// tokenRE is what an HTTP-01 token may be (RFC 8555 §8.3: base64url). It
// names a file in the challenge dir, so nothing else is written.
var tokenRE = lazyre.New(`^[A-Za-z0-9_-]{16,256}$`)

// acmeClient returns the account's client, registering the account with
// the CA the first time.
func (m *Manager) acmeClient(ctx context.Context) (*acme.Client, error) {
	if m.client != nil {
		return m.client, nil
	}
	key, err := m.accountKey()
	if err != nil {
		return nil, err
	}
	c := &acme.Client{Key: key, DirectoryURL: m.Directory, HTTPClient: m.HTTPClient, UserAgent: "conductor"}
	acct := &acme.Account{}
	if m.Email != "" {
		acct.Contact = []string{"mailto:" + m.Email}
	}
	if _, err := c.Register(ctx, acct, acme.AcceptTOS); err != nil && !errors.Is(err, acme.ErrAccountAlreadyExists) {
		return nil, fmt.Errorf("register ACME account at %s: %w", m.Directory, err)
	}
	m.client = c
	return c, nil
}

// accountKey loads the ACME account key, or makes one (ECDSA P-256, 0600).
func (m *Manager) accountKey() (crypto.Signer, error) {
	path := filepath.Join(m.Dir, "acme-account.key")
	data, err := os.ReadFile(path)
	if err == nil {
		block, _ := pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("ACME account key %s: not PEM", path)
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ACME account key %s: %w", path, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("ACME account key %s: %T cannot sign", path, k)
		}
		return s, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read ACME account key: %w", err)
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	if err := WritePrivate(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		return nil, fmt.Errorf("write ACME account key: %w", err)
	}
	return k, nil
}

// obtain runs one ACME order for domain: authorize with HTTP-01, finalize
// with a new key's CSR, download the chain.
func (m *Manager) obtain(ctx context.Context, appID int64, domain string, log io.Writer) (*Bundle, error) {
	client, err := m.acmeClient(ctx)
	if err != nil {
		return nil, err
	}
	logf(log, "       Ordering a certificate for %s from %s", domain, m.Directory)
	order, err := client.AuthorizeOrder(ctx, acme.DomainIDs(domain))
	if err != nil {
		return nil, fmt.Errorf("ACME order for %s: %w", domain, err)
	}
	for _, u := range order.AuthzURLs {
		if err := m.authorize(ctx, client, appID, u, domain, log); err != nil {
			return nil, err
		}
	}
	if order, err = client.WaitOrder(ctx, order.URI); err != nil {
		return nil, fmt.Errorf("ACME order for %s: %w", domain, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{domain}}, key)
	if err != nil {
		return nil, fmt.Errorf("certificate request for %s: %w", domain, err)
	}
	ders, _, err := client.CreateCertFromOrder(ctx, order, csr, true)
	if err != nil {
		return nil, fmt.Errorf("ACME finalize for %s: %w", domain, err)
	}
	b := &Bundle{Key: key}
	for _, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("certificate from the CA for %s: %w", domain, err)
		}
		b.Chain = append(b.Chain, c)
	}
	if len(b.Chain) == 0 {
		return nil, fmt.Errorf("the CA sent no certificate for %s", domain)
	}
	if err := b.Check(domain, time.Now()); err != nil {
		return nil, fmt.Errorf("certificate from the CA for %s: %w", domain, err)
	}
	logf(log, "       Certificate issued for %s, valid until %s", domain, b.Leaf().NotAfter.UTC().Format(time.RFC3339))
	return b, nil
}

// authorize proves control of domain for one authorization: the key
// authorization goes to the nginx of the app's host (a Responder), which
// serves it at http://<domain>/.well-known/acme-challenge/<token>, until
// the CA has looked.
func (m *Manager) authorize(ctx context.Context, client *acme.Client, appID int64, url, domain string, log io.Writer) error {
	z, err := client.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("ACME authorization for %s: %w", domain, err)
	}
	if z.Status == acme.StatusValid {
		return nil // the CA still remembers an earlier proof
	}
	var chal *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == "http-01" {
			chal = c
		}
	}
	if chal == nil {
		return conductor.Errorf(conductor.EUNAVAILABLE, "the CA offers no http-01 challenge for %s", domain)
	}
	if !ValidToken(chal.Token) {
		return fmt.Errorf("the CA sent an invalid http-01 token for %s", domain)
	}
	body, err := client.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		return err
	}
	r, err := m.responder(ctx, appID)
	if err != nil {
		return err
	}
	if err := r.PutChallenge(ctx, chal.Token, body); err != nil {
		return fmt.Errorf("publish the http-01 challenge for %s: %w", domain, err)
	}
	defer func() {
		// Its own time: ctx may be what ended.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := r.RemoveChallenge(rctx, chal.Token); err != nil {
			slog.Warn("remove http-01 challenge", "domain", domain, "err", err)
		}
	}()
	logf(log, "       Answering the CA's http-01 challenge at http://%s%s", domain, client.HTTP01ChallengePath(chal.Token))
	if _, err := client.Accept(ctx, chal); err != nil {
		return fmt.Errorf("ACME challenge for %s: %w", domain, err)
	}
	if _, err := client.WaitAuthorization(ctx, z.URI); err != nil {
		return conductor.Errorf(conductor.EINVALID, "the CA could not verify %s: %v (does %s resolve to the app's host, and is port 80 forwarded to its nginx?)", domain, err, domain)
	}
	return nil
}
