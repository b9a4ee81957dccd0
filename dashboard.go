package conductor

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// Dashboard logins: `ssh conductor dashboard` makes a one-time login token;
// opening its URL trades it for a session. Only hashes of either are stored
// (a copy of the state database logs no one in).
const (
	// DashboardTokenTTL is how long a login URL works, once.
	DashboardTokenTTL = 2 * time.Minute
	// DashboardSessionTTL is how long a browser stays logged in.
	DashboardSessionTTL = 12 * time.Hour
)

// DashboardSession is a browser logged in to the dashboard as User.
type DashboardSession struct {
	ID        int64
	UserID    int64
	User      string
	CreatedAt time.Time
	ExpiresAt time.Time
	SeenAt    time.Time
	Agent     string // the browser's User-Agent, cut short, to tell sessions apart
	// Fingerprint is the key whose `dashboard` command started it: the
	// session ends with that key (keys:remove).
	Fingerprint string
}

// DashboardStore keeps login tokens and sessions (sqlite/dashboard.go).
// Only the conductor's serve reads it: workers never need it, so it is not
// part of Store and has no NATS twin.
type DashboardStore interface {
	// AddDashboardToken records a login token's hash for the user and the
	// key (fingerprint) that asked for it.
	AddDashboardToken(ctx context.Context, userID int64, fingerprint string, hash []byte, expires time.Time) error
	// UseDashboardToken consumes the token with this hash, if it is unused
	// and not expired, and starts a session (sessionHash) for its user, in
	// one transaction: a token logs in once. ENOTFOUND otherwise.
	UseDashboardToken(ctx context.Context, hash, sessionHash []byte, agent string, now, expires time.Time) (*DashboardSession, error)
	// DashboardSession finds the live session with this hash and notes
	// that it was seen. ENOTFOUND when there is none (ended, expired, or
	// the key that started it was removed).
	DashboardSession(ctx context.Context, hash []byte, now time.Time) (*DashboardSession, error)
	// ListDashboardSessions lists the live sessions, of one user or
	// (userID 0) of everyone.
	ListDashboardSessions(ctx context.Context, userID int64, now time.Time) ([]*DashboardSession, error)
	// EndDashboardSessions ends one session (id) or, with id 0, all of
	// the user's (userID 0: everyone's), and returns how many ended.
	EndDashboardSessions(ctx context.Context, userID, id int64) (int, error)
}

// NewDashboardSecret returns a random token for a login URL or a session
// cookie: 32 bytes from the system's CSPRNG, URL-safe base64.
func NewDashboardSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashDashboardSecret is what the store keeps of a token or cookie.
func HashDashboardSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}
