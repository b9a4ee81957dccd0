package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/hasadna/conductor"
)

// AddAudit appends to the audit trail and sets e.ID.
func (db *DB) AddAudit(ctx context.Context, e *conductor.AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	res, err := db.db.ExecContext(ctx, `INSERT INTO audit (at, took_ms, user_name, fingerprint, app, op, detail, outcome, error, deploy_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.At.UTC().Format(timeLayout), e.Took.Milliseconds(), e.User, e.Fingerprint, e.App, e.Op, e.Detail, e.Outcome, e.Error, e.DeployID)
	if err != nil {
		return fmt.Errorf("add audit entry: %w", err)
	}
	e.ID, _ = res.LastInsertId()
	return nil
}

// ListAudit returns up to limit entries, newest first, of one app or, with
// app "", of everything.
func (db *DB) ListAudit(ctx context.Context, app string, limit int) ([]*conductor.AuditEntry, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, at, took_ms, user_name, fingerprint, app, op, detail, outcome, error, deploy_id
		FROM audit WHERE ? = '' OR app = ? ORDER BY id DESC LIMIT ?`, app, app, limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	var out []*conductor.AuditEntry
	for rows.Next() {
		var e conductor.AuditEntry
		var at string
		var took int64
		if err := rows.Scan(&e.ID, &at, &took, &e.User, &e.Fingerprint, &e.App, &e.Op, &e.Detail, &e.Outcome, &e.Error, &e.DeployID); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.At, e.Took = parseTime(at), time.Duration(took)*time.Millisecond
		out = append(out, &e)
	}
	return out, rows.Err()
}
