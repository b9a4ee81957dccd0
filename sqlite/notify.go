package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/notify"
)

// Webhook subscriptions and deliveries (package notify; migration 0016).

// AddSubscription records s and sets its ID and CreatedAt.
func (db *DB) AddSubscription(ctx context.Context, s *notify.Subscription) error {
	var app any
	if s.AppID != 0 {
		app = s.AppID
	}
	var created string
	err := db.db.QueryRowContext(ctx, `INSERT INTO notify_subscriptions (url, app_id, events, format, secret, created_by)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id, created_at`,
		s.URL, app, strings.Join(s.Events, ","), s.Format, s.Secret, s.CreatedBy).Scan(&s.ID, &created)
	if err != nil {
		return fmt.Errorf("add subscription: %w", err)
	}
	s.CreatedAt = parseTime(created)
	return nil
}

const subCols = `s.id, s.url, coalesce(s.app_id, 0), coalesce(a.name, ''), s.events, s.format, s.secret, s.created_by, s.created_at`

func (db *DB) scanSubscriptions(ctx context.Context, where string, args ...any) ([]*notify.Subscription, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+subCols+` FROM notify_subscriptions s
		LEFT JOIN apps a ON a.id = s.app_id `+where+` ORDER BY s.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("list subscriptions: %w", err)
	}
	defer rows.Close()
	out := []*notify.Subscription{}
	for rows.Next() {
		var s notify.Subscription
		var events, created string
		if err := rows.Scan(&s.ID, &s.URL, &s.AppID, &s.App, &events, &s.Format, &s.Secret, &s.CreatedBy, &created); err != nil {
			return nil, fmt.Errorf("list subscriptions: %w", err)
		}
		s.Events = strings.Split(events, ",")
		s.CreatedAt = parseTime(created)
		out = append(out, &s)
	}
	return out, rows.Err()
}

// ListSubscriptions returns every subscription, oldest first.
func (db *DB) ListSubscriptions(ctx context.Context) ([]*notify.Subscription, error) {
	return db.scanSubscriptions(ctx, ``)
}

// FindSubscription returns subscription id.
func (db *DB) FindSubscription(ctx context.Context, id int64) (*notify.Subscription, error) {
	subs, err := db.scanSubscriptions(ctx, `WHERE s.id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(subs) == 0 {
		return nil, conductor.Errorf(conductor.ENOTFOUND, "subscription %d not found", id)
	}
	return subs[0], nil
}

// RemoveSubscription forgets a subscription and its deliveries.
func (db *DB) RemoveSubscription(ctx context.Context, id int64) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM notify_subscriptions WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("remove subscription %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conductor.Errorf(conductor.ENOTFOUND, "subscription %d not found", id)
	}
	return nil
}

// AddDelivery records d and sets its ID.
func (db *DB) AddDelivery(ctx context.Context, d *notify.Delivery) error {
	var created string
	err := db.db.QueryRowContext(ctx, `INSERT INTO notify_deliveries (subscription_id, event, status, attempts, body)
		VALUES (?, ?, ?, ?, ?) RETURNING id, created_at`, d.SubscriptionID, d.Event, d.Status, d.Attempts, d.Body).Scan(&d.ID, &created)
	if err != nil {
		return fmt.Errorf("add delivery: %w", err)
	}
	d.CreatedAt = parseTime(created)
	d.UpdatedAt = d.CreatedAt
	// The log stays bounded: a subscription keeps its newest finished
	// deliveries (notify lists the last 10).
	if _, err := db.db.ExecContext(ctx, `DELETE FROM notify_deliveries WHERE subscription_id = ? AND status != 'pending'
		AND id <= (SELECT id FROM notify_deliveries WHERE subscription_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
		d.SubscriptionID, d.SubscriptionID, keepDeliveries); err != nil {
		return fmt.Errorf("prune deliveries: %w", err)
	}
	return nil
}

// keepDeliveries is how many deliveries a subscription keeps.
const keepDeliveries = 100

// UpdateDelivery records an attempt's outcome. A delivery whose
// subscription was removed meanwhile is gone, which is not an error.
func (db *DB) UpdateDelivery(ctx context.Context, d *notify.Delivery) error {
	_, err := db.db.ExecContext(ctx, `UPDATE notify_deliveries SET status = ?, attempts = ?, response_code = ?, error = ?,
		updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?`, d.Status, d.Attempts, d.ResponseCode, d.Error, d.ID)
	if err != nil {
		return fmt.Errorf("update delivery %d: %w", d.ID, err)
	}
	return nil
}

const deliveryCols = `id, subscription_id, event, status, attempts, response_code, error, body, created_at, updated_at`

func (db *DB) scanDeliveries(ctx context.Context, query string, args ...any) ([]*notify.Delivery, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+deliveryCols+` FROM notify_deliveries `+query, args...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	out := []*notify.Delivery{}
	for rows.Next() {
		var d notify.Delivery
		var created, updated string
		if err := rows.Scan(&d.ID, &d.SubscriptionID, &d.Event, &d.Status, &d.Attempts, &d.ResponseCode, &d.Error, &d.Body, &created, &updated); err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		d.CreatedAt, d.UpdatedAt = parseTime(created), parseTime(updated)
		out = append(out, &d)
	}
	return out, rows.Err()
}

// ListDeliveries returns a subscription's newest deliveries first.
func (db *DB) ListDeliveries(ctx context.Context, subID int64, limit int) ([]*notify.Delivery, error) {
	return db.scanDeliveries(ctx, `WHERE subscription_id = ? ORDER BY id DESC LIMIT ?`, subID, limit)
}

// PendingDeliveries returns the deliveries not yet delivered nor given up.
func (db *DB) PendingDeliveries(ctx context.Context) ([]*notify.Delivery, error) {
	return db.scanDeliveries(ctx, `WHERE status = ? ORDER BY id`, notify.StatusPending)
}

// DeployEvent describes a finished deploy for its notification: its app,
// host ("" for the conductor's), commit, pusher, duration and, when it
// succeeded, its release number.
func (db *DB) DeployEvent(ctx context.Context, id string) (*notify.Event, error) {
	var ev notify.Event
	var created, finished, status string
	var number sql.NullInt64
	err := db.db.QueryRowContext(ctx, `SELECT a.name, a.host, d.rev, d.ref, d.pusher, d.status, d.error, d.created_at, d.finished_at,
			(SELECT r.number FROM releases r WHERE r.id = d.id)
		FROM deploys d JOIN apps a ON a.id = d.app_id WHERE d.id = ?`, id).
		Scan(&ev.App, &ev.Host, &ev.Commit, &ev.Ref, &ev.Pusher, &status, &ev.Error, &created, &finished, &number)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, conductor.Errorf(conductor.ENOTFOUND, "deploy %s not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", id, err)
	}
	ev.Deploy = id
	if number.Valid {
		ev.Release = fmt.Sprintf("v%d", number.Int64)
	}
	if c, f := parseTime(created), parseTime(finished); !c.IsZero() && !f.IsZero() {
		ev.Duration = f.Sub(c).Round(time.Millisecond).Seconds()
	}
	switch status {
	case conductor.DeploySucceeded:
		ev.Event = notify.DeploySucceeded
	case conductor.DeployFailed:
		ev.Event = notify.DeployFailed
	}
	return &ev, nil
}
