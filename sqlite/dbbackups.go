package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/hasadna/conductor"
)

var _ conductor.DBBackupStore = (*DB)(nil)

const dbBackupCols = `id, app_id, alias, kind, host, file, size, sha256, started, duration, status, error, scheduled, remote, remote_status, remote_error`

// AddDBBackup records a backup as started.
func (db *DB) AddDBBackup(ctx context.Context, b *conductor.DBBackup) error {
	res, err := db.db.ExecContext(ctx, `INSERT INTO db_backups (app_id, alias, kind, host, started, status, scheduled)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, b.AppID, b.Alias, b.Kind, b.Host, formatTime(b.Started), b.Status, b.Scheduled)
	if err != nil {
		return fmt.Errorf("record backup of %s of app %d: %w", b.Alias, b.AppID, err)
	}
	b.ID, err = res.LastInsertId()
	return err
}

// FinishDBBackup records how a backup ended.
func (db *DB) FinishDBBackup(ctx context.Context, b *conductor.DBBackup) error {
	if _, err := db.db.ExecContext(ctx, `UPDATE db_backups SET file = ?, size = ?, sha256 = ?, duration = ?, status = ?, error = ?
		WHERE id = ?`, b.File, b.Size, b.SHA256, b.Duration.Milliseconds(), b.Status, b.Error, b.ID); err != nil {
		return fmt.Errorf("record the end of backup %d: %w", b.ID, err)
	}
	return nil
}

// SetDBBackupRemote records the state of a backup's off-host copy.
func (db *DB) SetDBBackupRemote(ctx context.Context, b *conductor.DBBackup) error {
	if _, err := db.db.ExecContext(ctx, `UPDATE db_backups SET remote = ?, remote_status = ?, remote_error = ? WHERE id = ?`,
		b.Remote, b.RemoteStatus, b.RemoteError, b.ID); err != nil {
		return fmt.Errorf("record the off-host copy of backup %d: %w", b.ID, err)
	}
	return nil
}

func scanDBBackup(r interface{ Scan(...any) error }) (*conductor.DBBackup, error) {
	var b conductor.DBBackup
	var started string
	var ms int64
	if err := r.Scan(&b.ID, &b.AppID, &b.Alias, &b.Kind, &b.Host, &b.File, &b.Size, &b.SHA256, &started, &ms, &b.Status, &b.Error, &b.Scheduled, &b.Remote, &b.RemoteStatus, &b.RemoteError); err != nil {
		return nil, err
	}
	b.Started = parseTime(started)
	b.Duration = time.Duration(ms) * time.Millisecond
	return &b, nil
}

// DBBackups lists an app's backups, newest first.
func (db *DB) DBBackups(ctx context.Context, appID int64) ([]*conductor.DBBackup, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+dbBackupCols+` FROM db_backups WHERE app_id = ? ORDER BY id DESC`, appID)
	if err != nil {
		return nil, fmt.Errorf("list backups of app %d: %w", appID, err)
	}
	defer rows.Close()
	out := []*conductor.DBBackup{}
	for rows.Next() {
		b, err := scanDBBackup(rows)
		if err != nil {
			return nil, fmt.Errorf("list backups of app %d: %w", appID, err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// FindDBBackup returns one of an app's backups.
func (db *DB) FindDBBackup(ctx context.Context, appID, id int64) (*conductor.DBBackup, error) {
	b, err := scanDBBackup(db.db.QueryRowContext(ctx, `SELECT `+dbBackupCols+` FROM db_backups WHERE app_id = ? AND id = ?`, appID, id))
	if err != nil {
		return nil, notFound(err, "no backup %d of this app", id)
	}
	return b, nil
}

// DeleteDBBackup forgets a backup.
func (db *DB) DeleteDBBackup(ctx context.Context, appID, id int64) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM db_backups WHERE app_id = ? AND id = ?`, appID, id); err != nil {
		return fmt.Errorf("forget backup %d: %w", id, err)
	}
	return nil
}

// SetDBBackupSchedule adds or replaces an alias's schedule.
func (db *DB) SetDBBackupSchedule(ctx context.Context, s *conductor.DBBackupSchedule) error {
	if _, err := db.db.ExecContext(ctx, `INSERT INTO db_backup_schedules (app_id, alias, schedule, keep, created) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (app_id, alias) DO UPDATE SET schedule = excluded.schedule, keep = excluded.keep, created = excluded.created`,
		s.AppID, s.Alias, s.Schedule, s.Keep, formatTime(s.Created)); err != nil {
		return fmt.Errorf("record backup schedule of %s: %w", s.Alias, err)
	}
	return nil
}

// DeleteDBBackupSchedule removes an alias's schedule.
func (db *DB) DeleteDBBackupSchedule(ctx context.Context, appID int64, alias string) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM db_backup_schedules WHERE app_id = ? AND alias = ?`, appID, alias); err != nil {
		return fmt.Errorf("remove backup schedule of %s: %w", alias, err)
	}
	return nil
}

// DBBackupSchedules lists the schedules of an app, or of all (appID 0).
func (db *DB) DBBackupSchedules(ctx context.Context, appID int64) ([]*conductor.DBBackupSchedule, error) {
	var rows *sql.Rows
	var err error
	const q = `SELECT app_id, alias, schedule, keep, created FROM db_backup_schedules`
	if appID > 0 {
		rows, err = db.db.QueryContext(ctx, q+` WHERE app_id = ? ORDER BY alias`, appID)
	} else {
		rows, err = db.db.QueryContext(ctx, q+` ORDER BY app_id, alias`)
	}
	if err != nil {
		return nil, fmt.Errorf("list backup schedules: %w", err)
	}
	defer rows.Close()
	out := []*conductor.DBBackupSchedule{}
	for rows.Next() {
		var s conductor.DBBackupSchedule
		var created string
		if err := rows.Scan(&s.AppID, &s.Alias, &s.Schedule, &s.Keep, &created); err != nil {
			return nil, fmt.Errorf("list backup schedules: %w", err)
		}
		s.Created = parseTime(created)
		out = append(out, &s)
	}
	return out, rows.Err()
}

// AppDBBackups is one app's backups and schedules, for conductor doctor.
type AppDBBackups struct {
	App       string
	Backups   []*conductor.DBBackup
	Schedules []*conductor.DBBackupSchedule
}

// ReadDBBackups reads every app's backups and schedules from the state at
// path, read-only (conductor doctor, beside a running serve). A state
// without the tables yet (migration 0014 pending) has none.
func ReadDBBackups(ctx context.Context, path string) ([]AppDBBackups, error) {
	raw, err := openReadOnly(path)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	db := &DB{db: raw}
	rows, err := raw.QueryContext(ctx, `SELECT id, name FROM apps WHERE id IN (SELECT app_id FROM db_backups UNION SELECT app_id FROM db_backup_schedules) ORDER BY name`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil
		}
		return nil, fmt.Errorf("read backups of %s: %w", path, err)
	}
	type app struct {
		id   int64
		name string
	}
	var apps []app
	for rows.Next() {
		var a app
		if err := rows.Scan(&a.id, &a.name); err != nil {
			rows.Close()
			return nil, err
		}
		apps = append(apps, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := []AppDBBackups{}
	for _, a := range apps {
		b, err := db.DBBackups(ctx, a.id)
		if err != nil {
			return nil, err
		}
		s, err := db.DBBackupSchedules(ctx, a.id)
		if err != nil {
			return nil, err
		}
		out = append(out, AppDBBackups{App: a.name, Backups: b, Schedules: s})
	}
	return out, nil
}
