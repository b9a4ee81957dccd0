package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hasadna/conductor"
)

var _ conductor.DatabaseStore = (*DB)(nil)

// EnsureAppDatabase records d for its app unless the app has a database
// already, and returns the recorded one: the first credentials win.
func (db *DB) EnsureAppDatabase(ctx context.Context, d *conductor.AppDatabase) (*conductor.AppDatabase, error) {
	var got *conductor.AppDatabase
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO app_databases (app_id, kind, name, user, password)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (app_id) DO NOTHING`, d.AppID, d.Kind, d.Name, d.User, d.Password); err != nil {
			return err
		}
		var err error
		got, err = scanAppDatabase(tx.QueryRowContext(ctx, `SELECT `+appDatabaseCols+` FROM app_databases WHERE app_id = ?`, d.AppID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record database of app %d: %w", d.AppID, err)
	}
	return got, nil
}

// FindAppDatabase returns an app's database credentials.
func (db *DB) FindAppDatabase(ctx context.Context, appID int64) (*conductor.AppDatabase, error) {
	d, err := scanAppDatabase(db.db.QueryRowContext(ctx, `SELECT `+appDatabaseCols+` FROM app_databases WHERE app_id = ?`, appID))
	if err != nil {
		return nil, notFound(err, "app %d has no database yet", appID)
	}
	return d, nil
}

// DeleteAppDatabase forgets an app's database credentials.
func (db *DB) DeleteAppDatabase(ctx context.Context, appID int64) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM app_databases WHERE app_id = ?`, appID); err != nil {
		return fmt.Errorf("delete database of app %d: %w", appID, err)
	}
	return nil
}

const appDatabaseCols = `app_id, kind, name, user, password, created_at`

func scanAppDatabase(row interface{ Scan(...any) error }) (*conductor.AppDatabase, error) {
	var d conductor.AppDatabase
	var created string
	if err := row.Scan(&d.AppID, &d.Kind, &d.Name, &d.User, &d.Password, &created); err != nil {
		return nil, err
	}
	d.CreatedAt = parseTime(created)
	return &d, nil
}
