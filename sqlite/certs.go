package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hasadna/conductor"
)

// PutCertificate records a domain's certificate, replacing the one it had,
// and clears its last error. The domain must be one of the app's.
func (db *DB) PutCertificate(ctx context.Context, c *conductor.Certificate) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO certificates (app_id, domain, source, path, not_before, not_after, pem)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (app_id, domain) DO UPDATE SET source = excluded.source, path = excluded.path,
			not_before = excluded.not_before, not_after = excluded.not_after, pem = excluded.pem, last_error = '',
			updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`,
		c.AppID, c.Domain, c.Source, c.Path, formatTime(c.NotBefore), formatTime(c.NotAfter), c.PEM)
	if err != nil && isForeignKey(err) {
		return conductor.Errorf(conductor.ENOTFOUND, "the app has no domain %s", c.Domain)
	} else if err != nil {
		return fmt.Errorf("record certificate of %s: %w", c.Domain, err)
	}
	return nil
}

const certCols = `app_id, domain, source, path, not_before, not_after, last_error, updated_at, pem`

func scanCertificates(ctx context.Context, db *DB, where string, args ...any) ([]*conductor.Certificate, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+certCols+` FROM certificates `+where+` ORDER BY app_id, domain`, args...)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	defer rows.Close()
	certs := []*conductor.Certificate{}
	for rows.Next() {
		var c conductor.Certificate
		var nb, na, updated string
		if err := rows.Scan(&c.AppID, &c.Domain, &c.Source, &c.Path, &nb, &na, &c.LastError, &updated, &c.PEM); err != nil {
			return nil, fmt.Errorf("list certificates: %w", err)
		}
		c.NotBefore, c.NotAfter, c.UpdatedAt = parseTime(nb), parseTime(na), parseTime(updated)
		certs = append(certs, &c)
	}
	return certs, rows.Err()
}

// Certificates returns an app's certificates by domain.
func (db *DB) Certificates(ctx context.Context, appID int64) ([]*conductor.Certificate, error) {
	return scanCertificates(ctx, db, `WHERE app_id = ?`, appID)
}

// AllCertificates returns every app's certificates, for the renewal loop.
func (db *DB) AllCertificates(ctx context.Context) ([]*conductor.Certificate, error) {
	return scanCertificates(ctx, db, ``)
}

// SetCertificateError records why renewing a domain's certificate failed.
func (db *DB) SetCertificateError(ctx context.Context, appID int64, domain, msg string) error {
	res, err := db.db.ExecContext(ctx, `UPDATE certificates SET last_error = ?,
		updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE app_id = ? AND domain = ?`, msg, appID, domain)
	if err != nil {
		return fmt.Errorf("record certificate error of %s: %w", domain, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conductor.Errorf(conductor.ENOTFOUND, "%s has no certificate", domain)
	}
	return nil
}

// formatTime renders t in the layout parseTime reads, in UTC.
func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func isForeignKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
}
