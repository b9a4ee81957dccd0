package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hasadna/conductor"
)

// MoveAppPort moves the app's port from (one of its pair) to the first of
// candidates that no app's pair or Redis holds, in one transaction so that
// two allocations never pick the same port, and returns it. ECONFLICT when
// every candidate is taken; ENOTFOUND when the app has no port from.
func (db *DB) MoveAppPort(ctx context.Context, appID int64, from int, candidates []int) (int, error) {
	moved := 0
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var a, b int
		if err := tx.QueryRowContext(ctx, `SELECT port_a, port_b FROM apps WHERE id = ?`, appID).Scan(&a, &b); err == sql.ErrNoRows {
			return conductor.Errorf(conductor.ENOTFOUND, "app %d not found", appID)
		} else if err != nil {
			return fmt.Errorf("move port of app %d: %w", appID, err)
		}
		col := "port_a"
		switch from {
		case a:
		case b:
			col = "port_b"
		default:
			return conductor.Errorf(conductor.ENOTFOUND, "app %d has no port %d", appID, from)
		}
		for _, p := range candidates {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM apps WHERE port_a = ?1 OR port_b = ?1) +
				(SELECT count(*) FROM app_redis WHERE port = ?1)`, p).Scan(&n); err != nil {
				return fmt.Errorf("move port of app %d: %w", appID, err)
			}
			if n > 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE apps SET `+col+` = ? WHERE id = ?`, p, appID); err != nil {
				return fmt.Errorf("move port of app %d to %d: %w", appID, p, err)
			}
			moved = p
			return nil
		}
		return conductor.Errorf(conductor.ECONFLICT, "no free port among %d candidates", len(candidates))
	})
	return moved, err
}
