package gitserver

import (
	"context"

	"github.com/hasadna/conductor"
)

type contextKey struct{ name string }

var userKey = &contextKey{"user"}

// WithUser returns a context carrying the authenticated user.
func WithUser(ctx context.Context, u *conductor.User) context.Context {
	return context.WithValue(ctx, userKey, u)
}

// UserFromContext returns the authenticated user, or nil.
func UserFromContext(ctx context.Context) *conductor.User {
	u, _ := ctx.Value(userKey).(*conductor.User)
	return u
}
