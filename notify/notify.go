// Package notify delivers Conductor's events (a deploy's outcome, a failed
// backup or cron run, a crashing process…) to webhooks: each subscription
// (notify:add) gets a JSON body signed with its own secret, or a Slack
// shape, sent asynchronously with bounded retries and recorded in SQLite.
package notify

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hasadna/conductor"
)

// The events a subscription may ask for.
const (
	DeploySucceeded = "deploy.succeeded"
	DeployFailed    = "deploy.failed"
	BackupFailed    = "backup.failed"
	CronFailed      = "cron.failed"
	CertExpiring    = "cert.expiring"
	ProcessCrashing = "process.crashing"
	// Test is what notify:test sends; every subscription gets it.
	Test = "test"
)

// Events lists the event names notify:add accepts, in documentation order.
var Events = []string{DeploySucceeded, DeployFailed, BackupFailed, CronFailed, CertExpiring, ProcessCrashing}

// Body formats.
const (
	FormatJSON  = "json"  // the Event, signed
	FormatSlack = "slack" // {"text": …}, for Slack and Mattermost incoming webhooks
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)

// Event is the documented JSON body of a delivery (docs/production.md).
// Fields that do not apply to an event are left out.
type Event struct {
	ID       string    `json:"id"`    // unique per event, the same in every retry
	Event    string    `json:"event"` // one of Events, or "test"
	App      string    `json:"app,omitempty"`
	Host     string    `json:"host,omitempty"`
	Release  string    `json:"release,omitempty"` // "v12"
	Deploy   string    `json:"deploy,omitempty"`  // the deploy (job) id
	Commit   string    `json:"commit,omitempty"`
	Ref      string    `json:"ref,omitempty"`
	Pusher   string    `json:"pusher,omitempty"`
	Process  string    `json:"process,omitempty"`  // the process type (process.crashing)
	Domain   string    `json:"domain,omitempty"`   // cert.expiring
	Duration float64   `json:"duration,omitempty"` // seconds
	Error    string    `json:"error,omitempty"`    // one line
	Log      string    `json:"log,omitempty"`      // the command that shows the log
	Message  string    `json:"message"`            // a human summary, the Slack text
	Time     time.Time `json:"time"`
}

// Subscription is one webhook (notify:add).
type Subscription struct {
	ID        int64     `json:"id"`
	URL       string    `json:"url"`
	AppID     int64     `json:"-"`             // 0: platform-wide
	App       string    `json:"app,omitempty"` // its name, when per app
	Events    []string  `json:"events"`
	Format    string    `json:"format"`
	Secret    string    `json:"-"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
}

// Wants tells whether s gets ev.
func (s *Subscription) Wants(ev *Event) bool {
	if ev.Event == Test {
		return true
	}
	if s.AppID != 0 && s.App != ev.App {
		return false
	}
	return slices.Contains(s.Events, ev.Event)
}

// Delivery is one event sent (or being sent) to a subscription.
type Delivery struct {
	ID             int64     `json:"id"`
	SubscriptionID int64     `json:"subscription"`
	Event          string    `json:"event"`
	Status         string    `json:"status"`
	Attempts       int       `json:"attempts"`
	ResponseCode   int       `json:"response_code,omitempty"`
	Error          string    `json:"error,omitempty"`
	Body           []byte    `json:"-"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Store keeps subscriptions and deliveries (sqlite/notify.go).
type Store interface {
	AddSubscription(ctx context.Context, s *Subscription) error
	ListSubscriptions(ctx context.Context) ([]*Subscription, error)
	FindSubscription(ctx context.Context, id int64) (*Subscription, error)
	RemoveSubscription(ctx context.Context, id int64) error
	AddDelivery(ctx context.Context, d *Delivery) error
	UpdateDelivery(ctx context.Context, d *Delivery) error
	// ListDeliveries returns a subscription's newest deliveries first.
	ListDeliveries(ctx context.Context, subID int64, limit int) ([]*Delivery, error)
	PendingDeliveries(ctx context.Context) ([]*Delivery, error)
}

// ParseEvents parses --events: a comma-separated list of Events ("" is all).
func ParseEvents(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return slices.Clone(Events), nil
	}
	var out []string
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if !slices.Contains(Events, e) {
			return nil, conductor.Errorf(conductor.EINVALID, "unknown event %q: want some of %s", truncate(e), strings.Join(Events, ","))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// ValidateURL checks a webhook URL: http or https, a host, no user or
// password (they would show in notify's listing and the server log; a
// receiver that needs a token takes it in the path or query), at most 2048
// bytes. Where the host may resolve to is checked at each delivery
// (AddressPolicy).
func ValidateURL(raw string) (*url.URL, error) {
	if len(raw) > 2048 {
		return nil, conductor.Errorf(conductor.EINVALID, "the URL is longer than 2048 bytes")
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, conductor.Errorf(conductor.EINVALID, "the URL has spaces or control characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, conductor.Errorf(conductor.EINVALID, "bad URL %q", truncate(raw))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, conductor.Errorf(conductor.EINVALID, "the URL must be http:// or https://")
	case u.Host == "" || u.Hostname() == "":
		return nil, conductor.Errorf(conductor.EINVALID, "the URL has no host")
	case u.User != nil:
		return nil, conductor.Errorf(conductor.EINVALID, "the URL must not carry a user or password: put a token in its path or query, or check the signature")
	case u.Fragment != "":
		return nil, conductor.Errorf(conductor.EINVALID, "the URL must not have a #fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, conductor.Errorf(conductor.EINVALID, "the URL's port %q is not 1-65535", truncate(p))
		}
	}
	return u, nil
}

// NewSecret makes a subscription's signing secret: 32 random bytes, hex.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a webhook secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// The headers of a delivery.
const (
	HeaderSignature = "X-Conductor-Signature" // "sha256=" + hex HMAC
	HeaderTimestamp = "X-Conductor-Timestamp" // Unix seconds, part of the signed text
	HeaderEvent     = "X-Conductor-Event"
	HeaderDelivery  = "X-Conductor-Delivery"
)

// Sign returns the X-Conductor-Signature value of body sent at timestamp
// (Unix seconds): "sha256=" and the hex HMAC-SHA256, keyed with the secret,
// of the timestamp, a dot and the body. The timestamp is signed so a
// receiver can refuse an old body replayed (docs/production.md).
func Sign(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte("."))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify is what a receiver does (and the tests): the signature must match
// and the timestamp be within maxAge of now.
func Verify(secret string, timestampHeader, signatureHeader string, body []byte, now time.Time, maxAge time.Duration) error {
	ts, err := strconv.ParseInt(timestampHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("bad %s %q", HeaderTimestamp, timestampHeader)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxAge || d < -maxAge {
		return fmt.Errorf("timestamp %d is %s away from now", ts, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signatureHeader)) {
		return fmt.Errorf("signature does not match")
	}
	return nil
}

// Body renders ev in format.
func Body(format string, ev *Event) ([]byte, error) {
	if format == FormatSlack {
		return json.Marshal(SlackMessage(ev))
	}
	return json.Marshal(ev)
}

// SlackMessage is the body of a Slack or Mattermost incoming webhook.
func SlackMessage(ev *Event) map[string]string {
	return map[string]string{"text": slackEscape(ev.Message)}
}

// slackEscape escapes what Slack's mrkdwn reads as markup (&, <, >): an
// error line or commit message must not become a link or a mention.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// FirstLine is the first line of s, at most 300 bytes, for Event.Error.
func FirstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return s
}

func truncate(s string) string {
	if len(s) > 80 {
		return strings.ToValidUTF8(s[:80], "") + "…"
	}
	return s
}

// DeployMessage is the human summary of a deploy event.
func DeployMessage(ev *Event) string {
	rev := ev.Commit
	if len(rev) > 12 {
		rev = rev[:12]
	}
	what := ev.App + ": deploy"
	if ev.Release != "" {
		what += " " + ev.Release
	}
	if rev != "" {
		what += " of " + rev
	}
	if ev.Pusher != "" {
		what += " by " + ev.Pusher
	}
	if ev.Event == DeploySucceeded {
		return fmt.Sprintf("%s succeeded in %.1fs", what, ev.Duration)
	}
	msg := what + " failed"
	if ev.Error != "" {
		msg += ": " + ev.Error
	}
	if ev.Log != "" {
		msg += " (build log: " + ev.Log + ")"
	}
	return msg
}

// BackupEvent is backup.failed of one of app's databases.
func BackupEvent(app, host, alias string, id int64, scheduled bool, took time.Duration, errMsg string) Event {
	how := "db:backup"
	if scheduled {
		how = "scheduled backup"
	}
	errLine := FirstLine(errMsg)
	return Event{
		Event: BackupFailed, App: app, Host: host, Duration: took.Round(time.Millisecond).Seconds(), Error: errLine,
		Log:     "db:backups " + app,
		Message: fmt.Sprintf("%s: %s %d of the %s database failed: %s", app, how, id, alias, errLine),
	}
}

// CronEvent is cron.failed of one run of app's entry.
func CronEvent(app, host, entry, release string, status string, took time.Duration, errMsg string) Event {
	errLine := FirstLine(errMsg)
	return Event{
		Event: CronFailed, App: app, Host: host, Release: release, Duration: took.Round(time.Millisecond).Seconds(), Error: errLine,
		Log:     "logs " + app + " --process cron",
		Message: fmt.Sprintf("%s: scheduled job %s %s: %s", app, entry, status, errLine),
	}
}

// CertEvent is cert.expiring of one of app's domains.
func CertEvent(app, domain string, notAfter time.Time, why string) Event {
	return Event{
		Event: CertExpiring, App: app, Domain: domain, Error: FirstLine(why),
		Log:     "domains " + app,
		Message: fmt.Sprintf("%s: the certificate of %s expires %s and was not renewed: %s", app, domain, notAfter.UTC().Format(time.RFC3339), FirstLine(why)),
	}
}
