package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Options tune a Notifier (conductor serve's --notify-* flags).
type Options struct {
	// Attempts is how many times a delivery is tried (default 5).
	Attempts int
	// Backoff is the wait after the first failed attempt; each next wait
	// doubles it (default 10 s: 10+20+40+80 s, 2.5 minutes in all).
	Backoff time.Duration
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
	// AllowPrivate lets deliveries reach loopback, private, link-local and
	// other non-public addresses (docs/security.md: SSRF).
	AllowPrivate bool
	// Host names this conductor in events.
	Host string
}

// Notifier sends events to the subscriptions that want them. Emit never
// blocks and never fails its caller: a deploy is not slowed by a slow or
// broken receiver.
type Notifier struct {
	store  Store
	opts   Options
	client *http.Client
	sem    chan struct{} // bounds deliveries in flight
	wg     sync.WaitGroup
	ctx    context.Context
}

// New makes a Notifier; its deliveries stop when ctx ends.
func New(ctx context.Context, store Store, o Options) *Notifier {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	d := &net.Dialer{Timeout: o.Timeout, Control: dialControl(o.AllowPrivate)}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the address check
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
	}
	return &Notifier{
		store: store, opts: o, ctx: ctx,
		sem: make(chan struct{}, 8),
		client: &http.Client{
			Transport: tr,
			Timeout:   o.Timeout,
			// A redirect is not followed: it could lead anywhere, and a
			// webhook that moved should be updated.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// errPrivate is a dial to an address the policy refuses.
var errPrivate = errors.New("the address is not public (conductor serve --notify-allow-private allows it)")

// dialControl refuses, unless allowPrivate, connections to addresses that
// are not public unicast. It runs on the address actually dialed, after DNS,
// so a name that resolves (or rebinds) to an internal address is caught.
func dialControl(allowPrivate bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("dial %s: %w", address, err)
		}
		if !IsPublic(ap.Addr()) {
			return fmt.Errorf("dial %s: %w", address, errPrivate)
		}
		return nil
	}
}

// IsPublic tells whether a is a public unicast address: not loopback,
// private (RFC 1918, fc00::/7), link-local (cloud metadata's 169.254.169.254),
// CGNAT, unspecified or multicast.
func IsPublic(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // CGNAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach IPv4 internals
}

// Start resumes the deliveries that were pending when conductor stopped.
func (n *Notifier) Start() {
	ds, err := n.store.PendingDeliveries(n.ctx)
	if err != nil {
		slog.Error("notify: pending deliveries", "err", err)
		return
	}
	for _, d := range ds {
		s, err := n.store.FindSubscription(n.ctx, d.SubscriptionID)
		if err != nil {
			slog.Error("notify: resume delivery", "delivery", d.ID, "err", err)
			continue
		}
		n.goDeliver(s, d)
	}
}

// Wait waits for the deliveries in flight (after ctx ended, for tests).
func (n *Notifier) Wait() { n.wg.Wait() }

// Emit sends ev to every subscription that wants it, in the background.
func (n *Notifier) Emit(ev Event) {
	if n == nil {
		return
	}
	n.fill(&ev)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		subs, err := n.store.ListSubscriptions(n.ctx)
		if err != nil {
			slog.Error("notify: list subscriptions", "event", ev.Event, "err", err)
			return
		}
		for _, s := range subs {
			if !s.Wants(&ev) || ev.Event == Test {
				continue
			}
			d, err := n.record(s, &ev)
			if err != nil {
				slog.Error("notify: record delivery", "subscription", s.ID, "event", ev.Event, "err", err)
				continue
			}
			n.goDeliver(s, d)
		}
	}()
}

func (n *Notifier) fill(ev *Event) {
	if ev.ID == "" {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		ev.ID = hex.EncodeToString(b)
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	if ev.Host == "" {
		ev.Host = n.opts.Host
	}
}

func (n *Notifier) record(s *Subscription, ev *Event) (*Delivery, error) {
	body, err := Body(s.Format, ev)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", ev.Event, err)
	}
	d := &Delivery{SubscriptionID: s.ID, Event: ev.Event, Status: StatusPending, Body: body}
	return d, n.store.AddDelivery(n.ctx, d)
}

// goDeliver tries d until it is delivered or its attempts run out, waiting
// Backoff, then twice that, … between attempts.
func (n *Notifier) goDeliver(s *Subscription, d *Delivery) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		wait := n.opts.Backoff << min(d.Attempts, 20)
		if d.Attempts == 0 {
			wait = 0
		}
		for d.Status == StatusPending {
			if wait > 0 {
				select {
				case <-n.ctx.Done():
					return // still pending: resumed at the next start
				case <-time.After(wait):
				}
			}
			n.attempt(s, d)
			wait = n.opts.Backoff << min(d.Attempts-1, 20)
		}
	}()
}

// attempt sends d once and records the outcome.
func (n *Notifier) attempt(s *Subscription, d *Delivery) {
	select {
	case n.sem <- struct{}{}:
	case <-n.ctx.Done():
		return
	}
	code, _, err := n.send(n.ctx, s, d)
	<-n.sem
	d.Attempts++
	d.ResponseCode, d.Error = code, ""
	switch {
	case err != nil:
		d.Error = err.Error()
	case code < 200 || code > 299:
		d.Error = "the receiver answered " + strconv.Itoa(code)
	default:
		d.Status = StatusDelivered
	}
	if d.Status == StatusPending && d.Attempts >= n.opts.Attempts {
		d.Status = StatusFailed
	}
	if d.Status != StatusDelivered {
		slog.Warn("notify: delivery failed", "subscription", s.ID, "event", d.Event, "attempt", d.Attempts, "err", d.Error)
	}
	if err := n.store.UpdateDelivery(context.WithoutCancel(n.ctx), d); err != nil {
		slog.Error("notify: record delivery", "delivery", d.ID, "err", err)
	}
}

// send POSTs d's body, signed, and returns the receiver's status and the
// start of its answer.
func (n *Notifier) send(ctx context.Context, s *Subscription, d *Delivery) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(d.Body))
	if err != nil {
		return 0, "", fmt.Errorf("make the request: %w", err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Conductor-Webhook/1")
	req.Header.Set(HeaderEvent, d.Event)
	req.Header.Set(HeaderDelivery, strconv.FormatInt(d.ID, 10))
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(s.Secret, ts, d.Body))
	resp, err := n.client.Do(req)
	if err != nil {
		if errors.Is(err, errPrivate) {
			return 0, "", errPrivate
		}
		return 0, "", fmt.Errorf("POST: %w", unwrapURLError(err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(b), nil
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// TestResult is what notify:test reports.
type TestResult struct {
	Delivery int64  `json:"delivery"`
	Code     int    `json:"response_code,omitempty"`
	Answer   string `json:"answer,omitempty"`
	Error    string `json:"error,omitempty"`
}

// SendTest sends a test event to s once, now, records it and returns the
// receiver's answer.
func (n *Notifier) SendTest(ctx context.Context, s *Subscription, user string) (*TestResult, error) {
	ev := Event{Event: Test, App: s.App, Pusher: user, Message: fmt.Sprintf("Conductor test notification for subscription %d, sent by %s", s.ID, user)}
	n.fill(&ev)
	d, err := n.record(s, &ev)
	if err != nil {
		return nil, err
	}
	code, answer, err := n.send(ctx, s, d)
	d.Attempts, d.ResponseCode = 1, code
	res := &TestResult{Delivery: d.ID, Code: code, Answer: answer}
	switch {
	case err != nil:
		d.Status, d.Error = StatusFailed, err.Error()
	case code < 200 || code > 299:
		d.Status, d.Error = StatusFailed, "the receiver answered "+strconv.Itoa(code)
	default:
		d.Status = StatusDelivered
	}
	res.Error = d.Error
	if err := n.store.UpdateDelivery(context.WithoutCancel(ctx), d); err != nil {
		return nil, err
	}
	return res, nil
}

// Store returns the store of subscriptions and deliveries.
func (n *Notifier) Store() Store { return n.store }
