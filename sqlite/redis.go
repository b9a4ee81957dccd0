package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hasadna/conductor"
)

// AppRedis returns the app's Redis (redis:create), ENOTFOUND without one.
func (db *DB) AppRedis(ctx context.Context, appID int64) (*conductor.Redis, error) {
	r := &conductor.Redis{AppID: appID}
	var created string
	err := db.db.QueryRowContext(ctx, `SELECT port, password, maxmemory, policy, created_at FROM app_redis WHERE app_id = ?`, appID).
		Scan(&r.Port, &r.Password, &r.MaxMemory, &r.Policy, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, conductor.Errorf(conductor.ENOTFOUND, "the app has no Redis: create it with redis:create")
	} else if err != nil {
		return nil, fmt.Errorf("find the app's redis: %w", err)
	}
	r.CreatedAt = parseTime(created)
	return r, nil
}

// CreateAppRedis records an app's Redis.
func (db *DB) CreateAppRedis(ctx context.Context, r *conductor.Redis) error {
	_, err := db.db.ExecContext(ctx, `INSERT INTO app_redis (app_id, port, password, maxmemory, policy) VALUES (?, ?, ?, ?, ?)`,
		r.AppID, r.Port, r.Password, r.MaxMemory, r.Policy)
	if isUnique(err) {
		return conductor.Errorf(conductor.ECONFLICT, "the app has a Redis already (or port %d is taken)", r.Port)
	} else if err != nil {
		return fmt.Errorf("record the app's redis: %w", err)
	}
	return nil
}

// DeleteAppRedis forgets an app's Redis; none is not an error.
func (db *DB) DeleteAppRedis(ctx context.Context, appID int64) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM app_redis WHERE app_id = ?`, appID); err != nil {
		return fmt.Errorf("forget the app's redis: %w", err)
	}
	return nil
}
