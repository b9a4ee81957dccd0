package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hasadna/conductor"
)

// DeleteApp removes an app; its config, grants, deploys, releases, domains
// and scale go with it (ON DELETE CASCADE). The audit trail stays.
func (db *DB) DeleteApp(ctx context.Context, appID int64) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM apps WHERE id = ?`, appID)
	if err != nil {
		return fmt.Errorf("delete app: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conductor.Errorf(conductor.ENOTFOUND, "app not found")
	}
	return nil
}

// Domains returns an app's custom domains, sorted.
func (db *DB) Domains(ctx context.Context, appID int64) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT host FROM domains WHERE app_id = ? ORDER BY host`, appID)
	if err != nil {
		return nil, fmt.Errorf("domains: %w", err)
	}
	defer rows.Close()
	hosts := []string{}
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		hosts = append(hosts, h)
	}
	return hosts, rows.Err()
}

// AddDomain gives a host name to an app; a host belongs to one app only.
func (db *DB) AddDomain(ctx context.Context, appID int64, host string) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO domains (app_id, host) VALUES (?, ?)`, appID, host)
	if isUnique(err) {
		return conductor.Errorf(conductor.ECONFLICT, "domain %s is already in use", host)
	} else if err != nil {
		return fmt.Errorf("add domain: %w", err)
	}
	return nil
}

// RemoveDomain takes a host name from an app.
func (db *DB) RemoveDomain(ctx context.Context, appID int64, host string) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM domains WHERE app_id = ? AND host = ?`, appID, host)
	if err != nil {
		return fmt.Errorf("remove domain: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conductor.Errorf(conductor.ENOTFOUND, "the app has no domain %s", host)
	}
	return nil
}

// ProcessScale returns the process counts set with SetProcessScale.
func (db *DB) ProcessScale(ctx context.Context, appID int64) (map[string]int, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT type, count FROM process_scale WHERE app_id = ?`, appID)
	if err != nil {
		return nil, fmt.Errorf("process scale: %w", err)
	}
	defer rows.Close()
	scale := map[string]int{}
	for rows.Next() {
		var typ string
		var n int
		if err := rows.Scan(&typ, &n); err != nil {
			return nil, err
		}
		scale[typ] = n
	}
	return scale, rows.Err()
}

// SetProcessScale records process counts in one transaction.
func (db *DB) SetProcessScale(ctx context.Context, appID int64, scale map[string]int) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		for typ, n := range scale {
			if _, err := tx.ExecContext(ctx, `INSERT INTO process_scale (app_id, type, count) VALUES (?, ?, ?)
				ON CONFLICT (app_id, type) DO UPDATE SET count = excluded.count`, appID, typ, n); err != nil {
				return fmt.Errorf("scale %s: %w", typ, err)
			}
		}
		return nil
	})
}
