package conductor

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Maintenance is an app in maintenance mode (maintenance:on): its front
// nginx answers 503 with Retry-After and a maintenance page for everything
// but its static files and uploads, while its processes keep running. It
// is state, so deploys, rollbacks and restarts keep it until
// maintenance:off.
type Maintenance struct {
	AppID      int64     `json:"app_id"`
	Message    string    `json:"message"`     // shown on the plain page ("" for the default)
	RetryAfter int       `json:"retry_after"` // seconds, sent in Retry-After
	By         string    `json:"by"`          // who turned it on
	Since      time.Time `json:"since"`
}

// MaintenanceStore holds apps' maintenance mode. Builders read it (and
// db:restore sets it), so it is in BuilderStore.
type MaintenanceStore interface {
	// Maintenance is the app's maintenance mode; ENOTFOUND when it is off.
	Maintenance(ctx context.Context, appID int64) (*Maintenance, error)
	// SetMaintenance turns it on, or replaces its message and Retry-After.
	SetMaintenance(ctx context.Context, m *Maintenance) error
	// ClearMaintenance turns it off; off already is not an error.
	ClearMaintenance(ctx context.Context, appID int64) error
}

// Bounds of maintenance:on's values.
const (
	MaxMaintenanceMessage    = 500 // characters
	DefaultMaintenanceRetry  = 60  // seconds
	MaxMaintenanceRetryAfter = 86400
)

// ValidateMaintenanceMessage checks a --message: printable UTF-8 text on
// one line (no control characters), at most MaxMaintenanceMessage
// characters. The page escapes it as HTML; this keeps it a short line.
func ValidateMaintenanceMessage(msg string) error {
	if !utf8.ValidString(msg) {
		return Errorf(EINVALID, "invalid --message: it is not UTF-8 text")
	}
	if strings.TrimSpace(msg) == "" {
		return Errorf(EINVALID, "invalid --message: it is empty (leave --message out for the default page)")
	}
	if n := utf8.RuneCountInString(msg); n > MaxMaintenanceMessage {
		return Errorf(EINVALID, "invalid --message: %d characters, at most %d", n, MaxMaintenanceMessage)
	}
	for i, r := range msg {
		if !unicode.IsPrint(r) {
			return Errorf(EINVALID, "invalid --message: character %d (%U) is not printable; use one line of text", utf8.RuneCountInString(msg[:i])+1, r)
		}
	}
	return nil
}

// ParseMaintenanceRetryAfter checks a --retry-after: whole seconds from 1
// to a day.
func ParseMaintenanceRetryAfter(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxMaintenanceRetryAfter {
		return 0, Errorf(EINVALID, "invalid --retry-after %q: whole seconds from 1 to %d", truncate(s), MaxMaintenanceRetryAfter)
	}
	return n, nil
}
