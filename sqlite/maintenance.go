package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hasadna/conductor"
)

// Maintenance returns the app's maintenance mode, ENOTFOUND when it is off.
func (db *DB) Maintenance(ctx context.Context, appID int64) (*conductor.Maintenance, error) {
	m := &conductor.Maintenance{AppID: appID}
	var since string
	err := db.db.QueryRowContext(ctx, `SELECT message, retry_after, by_user, since FROM app_maintenance WHERE app_id = ?`, appID).
		Scan(&m.Message, &m.RetryAfter, &m.By, &since)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, conductor.Errorf(conductor.ENOTFOUND, "the app is not in maintenance")
	} else if err != nil {
		return nil, fmt.Errorf("read the app's maintenance mode: %w", err)
	}
	m.Since = parseTime(since)
	return m, nil
}

// SetMaintenance turns an app's maintenance mode on, or replaces its
// message and Retry-After (keeping since when it was on).
func (db *DB) SetMaintenance(ctx context.Context, m *conductor.Maintenance) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO app_maintenance (app_id, message, retry_after, by_user) VALUES (?, ?, ?, ?)
		ON CONFLICT (app_id) DO UPDATE SET message = excluded.message, retry_after = excluded.retry_after, by_user = excluded.by_user`,
		m.AppID, m.Message, m.RetryAfter, m.By)
	if err != nil {
		return fmt.Errorf("record the app's maintenance mode: %w", err)
	}
	return nil
}

// ClearMaintenance turns an app's maintenance mode off.
func (db *DB) ClearMaintenance(ctx context.Context, appID int64) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM app_maintenance WHERE app_id = ?`, appID); err != nil {
		return fmt.Errorf("turn the app's maintenance mode off: %w", err)
	}
	return nil
}
