package conductor

import "time"

// Where a certificate came from: issued by Conductor's ACME client (and
// renewed by it) or given by a user with domains:cert (never renewed).
const (
	CertACME   = "acme"
	CertManual = "manual"
)

// Certificate is the TLS certificate of one of an app's custom domains.
// The chain and its private key live in one PEM file under the data dir
// (mode 0600): nginx reads both from it, and a renewal replaces the pair
// with one rename, so nginx never sees a key that does not match.
type Certificate struct {
	AppID  int64
	Domain string
	Source string // CertACME or CertManual
	Path   string // PEM file on the conductor's host: certificate chain, then private key
	// PEM is the file's content, which the builder of the app's host writes
	// where its nginx reads it (nil for a certificate recorded before
	// Conductor kept it). It holds the private key: never log or print it.
	PEM       []byte `json:",omitempty"`
	NotBefore time.Time
	NotAfter  time.Time
	// LastError is why the last renewal failed ("" after a success); the
	// renewal loop tries again later and `domains` shows it.
	LastError string
	UpdatedAt time.Time
}
