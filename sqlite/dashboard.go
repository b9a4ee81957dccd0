package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hasadna/conductor"
)

var _ conductor.DashboardStore = (*DB)(nil)

func ms(t time.Time) int64 { return t.UnixMilli() }

// AddDashboardToken records a login token's hash; expired tokens are
// dropped on the way, so the table stays small.
func (db *DB) AddDashboardToken(ctx context.Context, userID int64, fingerprint string, hash []byte, expires time.Time) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM dashboard_tokens WHERE expires_at < ?`, ms(time.Now())); err != nil {
		return fmt.Errorf("drop expired dashboard tokens: %w", err)
	}
	if _, err := db.db.ExecContext(ctx, `INSERT INTO dashboard_tokens (hash, user_id, fingerprint, expires_at) VALUES (?, ?, ?, ?)`,
		hash, userID, fingerprint, ms(expires)); err != nil {
		return fmt.Errorf("record a dashboard token: %w", err)
	}
	return nil
}

// UseDashboardToken deletes the token (so it never works twice, expired or
// not) and, if it was live, starts a session for its user.
func (db *DB) UseDashboardToken(ctx context.Context, hash, sessionHash []byte, agent string, now, expires time.Time) (*conductor.DashboardSession, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("use a dashboard token: %w", err)
	}
	defer tx.Rollback()
	var userID, exp int64
	var fingerprint string
	err = tx.QueryRowContext(ctx, `DELETE FROM dashboard_tokens WHERE hash = ? RETURNING user_id, fingerprint, expires_at`, hash).Scan(&userID, &fingerprint, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, conductor.Errorf(conductor.ENOTFOUND, "this login link was already used or never existed")
	} else if err != nil {
		return nil, fmt.Errorf("use a dashboard token: %w", err)
	}
	if exp < ms(now) {
		if err := tx.Commit(); err != nil {
			return nil, fmt.Errorf("use a dashboard token: %w", err)
		}
		return nil, conductor.Errorf(conductor.ENOTFOUND, "this login link has expired")
	}
	s := &conductor.DashboardSession{UserID: userID, Agent: agent, CreatedAt: now, ExpiresAt: expires, SeenAt: now, Fingerprint: fingerprint}
	if err := tx.QueryRowContext(ctx, `SELECT name FROM users WHERE id = ?`, userID).Scan(&s.User); err != nil {
		return nil, fmt.Errorf("use a dashboard token: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO dashboard_sessions (hash, user_id, fingerprint, agent, created_at, expires_at, seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		sessionHash, userID, fingerprint, agent, ms(now), ms(expires), ms(now))
	if err != nil {
		return nil, fmt.Errorf("start a dashboard session: %w", err)
	}
	s.ID, _ = res.LastInsertId()
	if _, err := tx.ExecContext(ctx, `DELETE FROM dashboard_sessions WHERE expires_at < ?`, ms(now)); err != nil {
		return nil, fmt.Errorf("drop expired dashboard sessions: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("start a dashboard session: %w", err)
	}
	return s, nil
}

// seenEvery bounds the writes DashboardSession makes: seen_at is for
// dashboard:sessions, so a minute's precision is plenty.
const seenEvery = time.Minute

// DashboardSession finds a live session by its cookie's hash.
func (db *DB) DashboardSession(ctx context.Context, hash []byte, now time.Time) (*conductor.DashboardSession, error) {
	var s conductor.DashboardSession
	var created, expires, seen int64
	err := db.db.QueryRowContext(ctx, `SELECT s.id, s.user_id, u.name, s.fingerprint, s.agent, s.created_at, s.expires_at, s.seen_at
		FROM dashboard_sessions s JOIN users u ON u.id = s.user_id
		JOIN keys k ON k.fingerprint = s.fingerprint AND k.user_id = s.user_id
		WHERE s.hash = ? AND s.expires_at >= ?`, hash, ms(now)).
		Scan(&s.ID, &s.UserID, &s.User, &s.Fingerprint, &s.Agent, &created, &expires, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, conductor.Errorf(conductor.ENOTFOUND, "no such dashboard session")
	} else if err != nil {
		return nil, fmt.Errorf("find a dashboard session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt, s.SeenAt = time.UnixMilli(created), time.UnixMilli(expires), time.UnixMilli(seen)
	if now.Sub(s.SeenAt) >= seenEvery {
		if _, err := db.db.ExecContext(ctx, `UPDATE dashboard_sessions SET seen_at = ? WHERE id = ?`, ms(now), s.ID); err != nil {
			return nil, fmt.Errorf("note a dashboard session seen: %w", err)
		}
		s.SeenAt = now
	}
	return &s, nil
}

// ListDashboardSessions lists live sessions, newest first.
func (db *DB) ListDashboardSessions(ctx context.Context, userID int64, now time.Time) ([]*conductor.DashboardSession, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT s.id, s.user_id, u.name, s.fingerprint, s.agent, s.created_at, s.expires_at, s.seen_at
		FROM dashboard_sessions s JOIN users u ON u.id = s.user_id
		JOIN keys k ON k.fingerprint = s.fingerprint AND k.user_id = s.user_id
		WHERE (? = 0 OR s.user_id = ?) AND s.expires_at >= ? ORDER BY s.id DESC`, userID, userID, ms(now))
	if err != nil {
		return nil, fmt.Errorf("list dashboard sessions: %w", err)
	}
	defer rows.Close()
	var out []*conductor.DashboardSession
	for rows.Next() {
		var s conductor.DashboardSession
		var created, expires, seen int64
		if err := rows.Scan(&s.ID, &s.UserID, &s.User, &s.Fingerprint, &s.Agent, &created, &expires, &seen); err != nil {
			return nil, fmt.Errorf("list dashboard sessions: %w", err)
		}
		s.CreatedAt, s.ExpiresAt, s.SeenAt = time.UnixMilli(created), time.UnixMilli(expires), time.UnixMilli(seen)
		out = append(out, &s)
	}
	return out, rows.Err()
}

// EndDashboardSessions deletes sessions: their cookies stop working at once.
func (db *DB) EndDashboardSessions(ctx context.Context, userID, id int64) (int, error) {
	res, err := db.db.ExecContext(ctx, `DELETE FROM dashboard_sessions WHERE (? = 0 OR user_id = ?) AND (? = 0 OR id = ?)`, userID, userID, id, id)
	if err != nil {
		return 0, fmt.Errorf("end dashboard sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
