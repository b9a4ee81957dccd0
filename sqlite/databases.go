package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hasadna/conductor"
)

var _ conductor.DatabaseStore = (*DB)(nil)

// EnsureAppDatabase records d for its app and alias unless that alias has a
// database already, and returns the recorded one: the first credentials win.
func (db *DB) EnsureAppDatabase(ctx context.Context, d *conductor.AppDatabase) (*conductor.AppDatabase, error) {
	alias := d.Alias
	if alias == "" {
		alias = conductor.DefaultAlias
	}
	var got *conductor.AppDatabase
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO app_databases (app_id, alias, kind, name, user, password)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app_id, alias) DO NOTHING`, d.AppID, alias, d.Kind, d.Name, d.User, d.Password); err != nil {
			return err
		}
		var err error
		got, err = scanAppDatabase(tx.QueryRowContext(ctx, `SELECT `+appDatabaseCols+` FROM app_databases WHERE app_id = ? AND alias = ?`, d.AppID, alias))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record database %s of app %d: %w", alias, d.AppID, err)
	}
	return got, nil
}

// FindAppDatabase returns the credentials of an app's database of that alias.
func (db *DB) FindAppDatabase(ctx context.Context, appID int64, alias string) (*conductor.AppDatabase, error) {
	d, err := scanAppDatabase(db.db.QueryRowContext(ctx, `SELECT `+appDatabaseCols+` FROM app_databases WHERE app_id = ? AND alias = ?`, appID, alias))
	if err != nil {
		return nil, notFound(err, "app %d has no database %s yet", appID, alias)
	}
	return d, nil
}

// AppDatabases lists an app's server databases, the default first.
func (db *DB) AppDatabases(ctx context.Context, appID int64) ([]*conductor.AppDatabase, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+appDatabaseCols+` FROM app_databases WHERE app_id = ?
		ORDER BY alias <> 'default', alias`, appID)
	if err != nil {
		return nil, fmt.Errorf("list databases of app %d: %w", appID, err)
	}
	defer rows.Close()
	out := []*conductor.AppDatabase{}
	for rows.Next() {
		d, err := scanAppDatabase(rows)
		if err != nil {
			return nil, fmt.Errorf("list databases of app %d: %w", appID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list databases of app %d: %w", appID, err)
	}
	return out, nil
}

// DeleteAppDatabase forgets the credentials of an app's database of that alias.
func (db *DB) DeleteAppDatabase(ctx context.Context, appID int64, alias string) error {
	if _, err := db.db.ExecContext(ctx, `DELETE FROM app_databases WHERE app_id = ? AND alias = ?`, appID, alias); err != nil {
		return fmt.Errorf("delete database %s of app %d: %w", alias, appID, err)
	}
	return nil
}

// SetAppDBKind records the kind of an app's default database.
func (db *DB) SetAppDBKind(ctx context.Context, appID int64, kind string) error {
	res, err := db.db.ExecContext(ctx, `UPDATE apps SET db_kind = ? WHERE id = ?`, kind, appID)
	if err != nil {
		return fmt.Errorf("set the database kind of app %d: %w", appID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conductor.Errorf(conductor.ENOTFOUND, "app %d not found", appID)
	}
	return nil
}

const appDatabaseCols = `app_id, alias, kind, name, user, password, created_at`

func scanAppDatabase(row interface{ Scan(...any) error }) (*conductor.AppDatabase, error) {
	var d conductor.AppDatabase
	var created string
	if err := row.Scan(&d.AppID, &d.Alias, &d.Kind, &d.Name, &d.User, &d.Password, &created); err != nil {
		return nil, err
	}
	d.CreatedAt = parseTime(created)
	return &d, nil
}
