package gitserver

import (
	"context"

	"github.com/hasadna/conductor"
)

type contextKey struct{ name string }

var (
	userKey        = &contextKey{"user"}
	fingerprintKey = &contextKey{"fingerprint"}
	appKey         = &contextKey{"app"}
	auditKey       = &contextKey{"audit"}
)

// WithUser returns a context carrying the authenticated user.
func WithUser(ctx context.Context, u *conductor.User) context.Context {
	return context.WithValue(ctx, userKey, u)
}

// UserFromContext returns the authenticated user, or nil.
func UserFromContext(ctx context.Context) *conductor.User {
	u, _ := ctx.Value(userKey).(*conductor.User)
	return u
}

// WithFingerprint returns a context carrying the fingerprint of the key the
// session proved.
func WithFingerprint(ctx context.Context, fp string) context.Context {
	return context.WithValue(ctx, fingerprintKey, fp)
}

// FingerprintFromContext returns the session key's fingerprint, or "".
func FingerprintFromContext(ctx context.Context) string {
	fp, _ := ctx.Value(fingerprintKey).(string)
	return fp
}

// withApp carries the app a command acts on, once authorized.
func withApp(ctx context.Context, app *conductor.App) context.Context {
	return context.WithValue(ctx, appKey, app)
}

// appFromContext returns the app the command was authorized for. Commands
// whose Permission is PerApp always have one.
func appFromContext(ctx context.Context) *conductor.App {
	a, _ := ctx.Value(appKey).(*conductor.App)
	return a
}

func withAudit(ctx context.Context, e *conductor.AuditEntry) context.Context {
	return context.WithValue(ctx, auditKey, e)
}

// auditFromContext returns the audit entry of the running command; a
// command adds detail to it. Never nil.
func auditFromContext(ctx context.Context) *conductor.AuditEntry {
	if e, ok := ctx.Value(auditKey).(*conductor.AuditEntry); ok {
		return e
	}
	return &conductor.AuditEntry{}
}
