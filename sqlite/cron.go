package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/hasadna/conductor"
)

// addCronEntries records a release's cron entries, in AddRelease's
// transaction.
func addCronEntries(ctx context.Context, tx *sql.Tx, r *conductor.Release) error {
	for i, e := range r.Cron {
		if _, err := tx.ExecContext(ctx, `INSERT INTO cron_entries
			(release_id, app_id, entry, position, command, schedule, timeout_ms) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.AppID, e.ID, i, e.Command, e.Schedule, e.Timeout.Milliseconds()); err != nil {
			return fmt.Errorf("add release: cron entry %s: %w", e.ID, err)
		}
	}
	return nil
}

// CronEntries are the entries of the app's current release, in app.json's order.
func (db *DB) CronEntries(ctx context.Context, appID int64) ([]*conductor.CronEntry, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT c.entry, c.command, c.schedule, c.timeout_ms
		FROM cron_entries c JOIN releases r ON r.id = c.release_id
		WHERE r.app_id = ? AND r.current = 1 ORDER BY c.position`, appID)
	if err != nil {
		return nil, fmt.Errorf("cron entries: %w", err)
	}
	defer rows.Close()
	out := []*conductor.CronEntry{}
	for rows.Next() {
		var e conductor.CronEntry
		var ms int64
		if err := rows.Scan(&e.ID, &e.Command, &e.Schedule, &ms); err != nil {
			return nil, err
		}
		e.Timeout = time.Duration(ms) * time.Millisecond
		out = append(out, &e)
	}
	return out, rows.Err()
}

// AddCronRun records a run and sets its ID.
func (db *DB) AddCronRun(ctx context.Context, r *conductor.CronRun) error {
	if r.StartedAt.IsZero() {
		r.StartedAt = time.Now()
	}
	var finished string
	if !r.FinishedAt.IsZero() {
		finished = r.FinishedAt.UTC().Format(timeLayout)
	}
	res, err := db.db.ExecContext(ctx, `INSERT INTO cron_runs
		(app_id, entry, release_id, trigger, status, exit_code, started_at, finished_at, duration_ms, output, error)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.AppID, r.Entry, r.Release, r.Trigger, r.Status, r.ExitCode, r.StartedAt.UTC().Format(timeLayout), finished,
		r.Duration.Milliseconds(), r.Output, r.Error)
	if err != nil {
		return fmt.Errorf("add cron run: %w", err)
	}
	r.ID, err = res.LastInsertId()
	return err
}

// FinishCronRun records how a run ended.
func (db *DB) FinishCronRun(ctx context.Context, r *conductor.CronRun) error {
	if r.FinishedAt.IsZero() {
		r.FinishedAt = time.Now()
	}
	res, err := db.db.ExecContext(ctx, `UPDATE cron_runs SET status = ?, exit_code = ?, finished_at = ?,
		duration_ms = ?, output = ?, error = ? WHERE id = ? AND app_id = ?`,
		r.Status, r.ExitCode, r.FinishedAt.UTC().Format(timeLayout), r.Duration.Milliseconds(), r.Output, r.Error, r.ID, r.AppID)
	if err != nil {
		return fmt.Errorf("finish cron run: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conductor.Errorf(conductor.ENOTFOUND, "no cron run %d", r.ID)
	}
	return nil
}

// FailUnfinishedCronRuns marks the running runs of host's apps failed.
func (db *DB) FailUnfinishedCronRuns(ctx context.Context, host, msg string) (int, error) {
	res, err := db.db.ExecContext(ctx, `UPDATE cron_runs SET status = ?, error = ?, exit_code = -1,
		finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
		WHERE status = ? AND app_id IN (SELECT id FROM apps WHERE host = ?)`,
		conductor.CronFailed, msg, conductor.CronRunning, host)
	if err != nil {
		return 0, fmt.Errorf("fail unfinished cron runs: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

const cronRunCols = `id, app_id, entry, release_id, trigger, status, exit_code, started_at, finished_at, duration_ms, output, error`

func scanCronRun(row interface{ Scan(...any) error }) (*conductor.CronRun, error) {
	var r conductor.CronRun
	var started, finished string
	var ms int64
	if err := row.Scan(&r.ID, &r.AppID, &r.Entry, &r.Release, &r.Trigger, &r.Status, &r.ExitCode, &started, &finished, &ms, &r.Output, &r.Error); err != nil {
		return nil, err
	}
	r.StartedAt, r.FinishedAt = parseTime(started), parseTime(finished)
	r.Duration = time.Duration(ms) * time.Millisecond
	return &r, nil
}

// LastCronRuns is each entry's latest run that was not skipped.
func (db *DB) LastCronRuns(ctx context.Context, appID int64) (map[string]*conductor.CronRun, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+cronRunCols+` FROM cron_runs WHERE id IN
		(SELECT max(id) FROM cron_runs WHERE app_id = ? AND status != ? GROUP BY entry)`, appID, conductor.CronSkipped)
	if err != nil {
		return nil, fmt.Errorf("last cron runs: %w", err)
	}
	defer rows.Close()
	out := map[string]*conductor.CronRun{}
	for rows.Next() {
		r, err := scanCronRun(rows)
		if err != nil {
			return nil, err
		}
		out[r.Entry] = r
	}
	return out, rows.Err()
}

// ListCronRuns lists the app's runs, newest first.
func (db *DB) ListCronRuns(ctx context.Context, appID int64, limit int) ([]*conductor.CronRun, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+cronRunCols+` FROM cron_runs WHERE app_id = ? ORDER BY id DESC LIMIT ?`, appID, limit)
	if err != nil {
		return nil, fmt.Errorf("list cron runs: %w", err)
	}
	defer rows.Close()
	out := []*conductor.CronRun{}
	for rows.Next() {
		r, err := scanCronRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
