// Package certs gives apps' custom domains TLS certificates: issued with
// ACME HTTP-01 (golang.org/x/crypto/acme) answered by Conductor's nginx, or
// given by a user, kept under the data dir and recorded in the store, and
// renewed in the background before they expire.
package certs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/lazyre"
)

// Manager issues, installs and renews certificates.
type Manager struct {
	Store conductor.Store
	// Dir holds the certificate files (<domain>.pem: chain and key, mode
	// 0600) and the ACME account key.
	Dir string
	// Challenges is the directory nginx serves at
	// /.well-known/acme-challenge/ on every host name.
	Challenges string
	// Responder, when set, says who answers an app's HTTP-01 challenges:
	// the nginx of the app's host, which may be a worker's (agent.Client).
	// Nil, or a nil Responder returned, means this host's Challenges dir.
	Responder func(ctx context.Context, appID int64) (Responder, error)

	// Directory is the ACME directory URL ("": no ACME, only domains:cert).
	Directory string
	// Email is the ACME account's contact ("" : none).
	Email string
	// HTTPClient talks to the ACME server (nil: http.DefaultClient); it
	// carries the roots that --acme-ca-file adds.
	HTTPClient *http.Client

	// RenewBefore is how long before expiry a certificate is renewed.
	RenewBefore time.Duration
	// Reload makes the web server load renewed certificate files; renewed
	// maps each renewed domain to its new leaf (DER), so it can confirm.
	Reload func(ctx context.Context, renewed map[string][]byte) error
	// Deliver, when set, hands a renewed certificate of an app served by
	// another host to that host (a restart job, whose builder writes it for
	// its nginx) and reports whether it did; the others are Reloaded here.
	Deliver func(ctx context.Context, c *conductor.Certificate) (bool, error)
	// Expiring, when set, is told of a certificate due for renewal that was
	// not renewed (given with domains:cert, no ACME directory, or its
	// renewal failed: why says which), at most once a day per domain
	// (the cert.expiring notification).
	Expiring func(c *conductor.Certificate, why string)
	warned   map[string]time.Time // domain -> when Expiring was last called; Renew's

	mu     sync.Mutex // one issuance at a time: they share the account and challenge dir
	client *acme.Client
}

// Responder publishes the answer to an HTTP-01 challenge where the CA will
// fetch it, http://<domain>/.well-known/acme-challenge/<token>, and takes it
// down afterwards.
type Responder interface {
	PutChallenge(ctx context.Context, token, keyAuth string) error
	RemoveChallenge(ctx context.Context, token string) error
}

// ChallengeDir answers challenges from a directory this host's nginx serves.
type ChallengeDir string

// ValidToken reports whether token may be an HTTP-01 token (RFC 8555 §8.3:
// base64url). It names a file in the challenge dir, so nothing else is
// accepted.
func ValidToken(token string) bool { return tokenRE.MatchString(token) }

// keyAuthRE is what a key authorization is: the token, ".", and the
// account key's base64url thumbprint.
var keyAuthRE = lazyre.New(`^[A-Za-z0-9_-]{16,256}\.[A-Za-z0-9_-]{16,256}$`)

// PutChallenge writes the key authorization into the directory.
func (d ChallengeDir) PutChallenge(_ context.Context, token, keyAuth string) error {
	if !ValidToken(token) || !keyAuthRE.MatchString(keyAuth) {
		return conductor.Errorf(conductor.EINVALID, "invalid http-01 token or key authorization")
	}
	if err := os.MkdirAll(string(d), 0o755); err != nil {
		return err
	}
	// Key authorizations are public by design (the CA fetches them over
	// plain HTTP); nginx's workers must read them.
	if err := os.WriteFile(filepath.Join(string(d), token), []byte(keyAuth), 0o644); err != nil {
		return fmt.Errorf("write challenge response: %w", err)
	}
	return nil
}

// RemoveChallenge deletes a challenge's file; a missing one is fine.
func (d ChallengeDir) RemoveChallenge(_ context.Context, token string) error {
	if !ValidToken(token) {
		return conductor.Errorf(conductor.EINVALID, "invalid http-01 token")
	}
	if err := os.Remove(filepath.Join(string(d), token)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// responder is who answers appID's challenges.
func (m *Manager) responder(ctx context.Context, appID int64) (Responder, error) {
	if m.Responder != nil {
		r, err := m.Responder(ctx, appID)
		if err != nil || r != nil {
			return r, err
		}
	}
	return ChallengeDir(m.Challenges), nil
}

// Path is where a domain's certificate and key are kept. Domains are
// validated DNS names, so the name cannot leave Dir.
func (m *Manager) Path(domain string) string { return filepath.Join(m.Dir, domain+".pem") }

// CanIssue is nil when ACME is configured, or says how to configure it.
func (m *Manager) CanIssue() error {
	if m.Directory == "" {
		return errNoACME
	}
	return nil
}

// Install checks a user's PEM bundle for domain and makes it the domain's
// certificate. It is not renewed: the user gives a new one in time.
func (m *Manager) Install(ctx context.Context, appID int64, domain string, pemData []byte) (*conductor.Certificate, error) {
	if err := conductor.ValidateDomain(domain); err != nil {
		return nil, err
	}
	b, err := ParseBundle(pemData, domain, time.Now())
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.save(ctx, appID, domain, conductor.CertManual, b)
}

// save writes the bundle to the domain's file and records it.
func (m *Manager) save(ctx context.Context, appID int64, domain, source string, b *Bundle) (*conductor.Certificate, error) {
	data, err := b.PEM()
	if err != nil {
		return nil, err
	}
	path := m.Path(domain)
	if err := WritePrivate(path, data); err != nil {
		return nil, fmt.Errorf("write certificate of %s: %w", domain, err)
	}
	c := &conductor.Certificate{AppID: appID, Domain: domain, Source: source, Path: path,
		NotBefore: b.Leaf().NotBefore, NotAfter: b.Leaf().NotAfter, PEM: data}
	if err := m.Store.PutCertificate(ctx, c); err != nil {
		if conductor.ErrorCode(err) == conductor.ENOTFOUND {
			_ = os.Remove(path) // the domain was removed meanwhile
		}
		return nil, err
	}
	return c, nil
}

// Forget deletes a domain's certificate file once the domain is gone (its
// record went with the domain). A missing file is fine. It waits for a
// renewal in flight, whose save then finds no domain and removes its file.
func (m *Manager) Forget(domain string) error {
	if err := conductor.ValidateDomain(domain); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := os.Remove(m.Path(domain)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove certificate of %s: %w", domain, err)
	}
	return nil
}

// WritePrivate writes data to path with mode 0600, replacing the file in
// one rename so a reader (nginx) sees the old pair or the new one.
func WritePrivate(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Issue obtains a certificate for domain from the ACME server, answering
// its HTTP-01 challenge through nginx, and records it. Progress goes to
// log (the user's SSH session or the server log).
func (m *Manager) Issue(ctx context.Context, appID int64, domain string, log io.Writer) (*conductor.Certificate, error) {
	if err := m.CanIssue(); err != nil {
		return nil, err
	}
	if err := conductor.ValidateDomain(domain); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.obtain(ctx, appID, domain, log)
	if err != nil {
		return nil, err
	}
	return m.save(ctx, appID, domain, conductor.CertACME, b)
}

// leafDER is the raw leaf of a certificate file, for confirming that nginx
// serves it.
func leafDER(b *Bundle) []byte { return b.Leaf().Raw }

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
	slog.Debug(fmt.Sprintf(format, args...))
}

// Own keeps an ACME certificate for one of Conductor's own host names
// (conductor.<domain>, the dashboard's), which no app owns: it is not in
// the state, and its file at Path(domain) is its record. Own orders one
// when the file is missing, unreadable or due (RenewBefore), answering the
// challenge from this host's nginx, and tells whether it did.
func (m *Manager) Own(ctx context.Context, domain string) (path string, renewed bool, err error) {
	if err := conductor.ValidateDomain(domain); err != nil {
		return "", false, err
	}
	path = m.Path(domain)
	if raw, err := os.ReadFile(path); err == nil {
		if b, err := ParseBundle(raw, domain, time.Now()); err == nil && time.Until(b.Leaf().NotAfter) > m.RenewBefore {
			return path, false, nil
		}
	}
	if err := m.CanIssue(); err != nil {
		return "", false, err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.obtain(ctx, OwnHost, domain, io.Discard)
	if err != nil {
		return "", false, err
	}
	pemData, err := b.PEM()
	if err != nil {
		return "", false, err
	}
	if err := WritePrivate(path, pemData); err != nil {
		return "", false, fmt.Errorf("write the certificate of %s: %w", domain, err)
	}
	return path, true, nil
}

// OwnHost stands for "no app" where an app id is asked for: a certificate
// of Conductor's own (Own), whose challenge this host's nginx answers.
const OwnHost int64 = 0
