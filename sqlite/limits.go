package sqlite

import (
	"context"
	"fmt"

	"github.com/hasadna/conductor"
)

// ProcessLimits returns the limits set with SetProcessLimits, by process type.
func (db *DB) ProcessLimits(ctx context.Context, appID int64) (map[string]conductor.ProcessLimits, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT type, memory_bytes, cpu_millis, pids FROM process_limits WHERE app_id = ?`, appID)
	if err != nil {
		return nil, fmt.Errorf("process limits: %w", err)
	}
	defer rows.Close()
	out := map[string]conductor.ProcessLimits{}
	for rows.Next() {
		var typ string
		var l conductor.ProcessLimits
		if err := rows.Scan(&typ, &l.MemoryBytes, &l.CPUMillis, &l.Pids); err != nil {
			return nil, err
		}
		out[typ] = l
	}
	return out, rows.Err()
}

// SetProcessLimits records one process type's limits; no limits at all
// removes its row.
func (db *DB) SetProcessLimits(ctx context.Context, appID int64, typ string, l conductor.ProcessLimits) error {
	if l.IsZero() {
		if _, err := db.db.ExecContext(ctx, `DELETE FROM process_limits WHERE app_id = ? AND type = ?`, appID, typ); err != nil {
			return fmt.Errorf("clear limits of %s: %w", typ, err)
		}
		return nil
	}
	if _, err := db.db.ExecContext(ctx, `INSERT INTO process_limits (app_id, type, memory_bytes, cpu_millis, pids) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (app_id, type) DO UPDATE SET memory_bytes = excluded.memory_bytes, cpu_millis = excluded.cpu_millis, pids = excluded.pids`,
		appID, typ, l.MemoryBytes, l.CPUMillis, l.Pids); err != nil {
		return fmt.Errorf("limit %s: %w", typ, err)
	}
	return nil
}
