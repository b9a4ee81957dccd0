package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// AppSettings returns the settings stored with SetAppSettings (apps:set).
func (db *DB) AppSettings(ctx context.Context, appID int64) (map[string]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT key, value FROM app_settings WHERE app_id = ?`, appID)
	if err != nil {
		return nil, fmt.Errorf("app settings: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, rows.Err()
}

// SetAppSettings stores set and forgets the keys in unset, all or nothing.
func (db *DB) SetAppSettings(ctx context.Context, appID int64, set map[string]string, unset []string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		for k, v := range set {
			if _, err := tx.ExecContext(ctx, `INSERT INTO app_settings (app_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT (app_id, key) DO UPDATE SET value = excluded.value`, appID, k, v); err != nil {
				return fmt.Errorf("set %s: %w", k, err)
			}
		}
		for _, k := range unset {
			if _, err := tx.ExecContext(ctx, `DELETE FROM app_settings WHERE app_id = ? AND key = ?`, appID, k); err != nil {
				return fmt.Errorf("reset %s: %w", k, err)
			}
		}
		return nil
	})
}
