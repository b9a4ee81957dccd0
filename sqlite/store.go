package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hasadna/conductor"
)

var _ conductor.Store = (*DB)(nil)

// CreateUser adds a user; the name must be unused.
func (db *DB) CreateUser(ctx context.Context, name string, admin bool) (*conductor.User, error) {
	defer db.keys.invalidate()
	if err := conductor.ValidateUserName(name); err != nil {
		return nil, err
	}
	res, err := db.db.ExecContext(ctx, `INSERT INTO users (name, admin) VALUES (?, ?)`, name, admin)
	if isUnique(err) {
		return nil, conductor.Errorf(conductor.ECONFLICT, "user %q already exists", name)
	} else if err != nil {
		return nil, fmt.Errorf("create user %s: %w", name, err)
	}
	id, _ := res.LastInsertId()
	return &conductor.User{ID: id, Name: name, Admin: admin}, nil
}

const userCols = `u.id, u.name, u.admin, u.created_at`

func scanUser(row interface{ Scan(...any) error }) (*conductor.User, error) {
	var u conductor.User
	var created string
	if err := row.Scan(&u.ID, &u.Name, &u.Admin, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = parseTime(created)
	return &u, nil
}

// FindUser returns the user with the given name.
func (db *DB) FindUser(ctx context.Context, name string) (*conductor.User, error) {
	u, err := scanUser(db.db.QueryRowContext(ctx, `SELECT `+userCols+` FROM users u WHERE u.name = ?`, name))
	if err != nil {
		return nil, notFound(err, "user %q not found", name)
	}
	return u, nil
}

// ListUsers returns all users by name.
func (db *DB) ListUsers(ctx context.Context) ([]*conductor.User, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+userCols+` FROM users u ORDER BY u.name`)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	defer rows.Close()
	var users []*conductor.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list users: %w", err)
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

// AddKey attaches a public key to a user. A key belongs to one user only.
func (db *DB) AddKey(ctx context.Context, userID int64, fingerprint, publicKey string) (*conductor.Key, error) {
	defer db.keys.invalidate()
	res, err := db.db.ExecContext(ctx, `INSERT INTO keys (user_id, fingerprint, public_key) VALUES (?, ?, ?)`, userID, fingerprint, publicKey)
	if isUnique(err) {
		return nil, conductor.Errorf(conductor.ECONFLICT, "key %s is already registered", fingerprint)
	} else if err != nil {
		return nil, fmt.Errorf("add key: %w", err)
	}
	id, _ := res.LastInsertId()
	return &conductor.Key{ID: id, UserID: userID, Fingerprint: fingerprint, PublicKey: publicKey}, nil
}

// FindUserByFingerprint returns the owner of the key with that fingerprint.
func (db *DB) FindUserByFingerprint(ctx context.Context, fingerprint string) (*conductor.User, error) {
	cached, gen := db.keys.get(fingerprint)
	if cached != nil {
		return cached, nil
	}
	u, err := scanUser(db.db.QueryRowContext(ctx,
		`SELECT `+userCols+` FROM users u JOIN keys k ON k.user_id = u.id WHERE k.fingerprint = ?`, fingerprint))
	if err != nil {
		return nil, notFound(err, "no user has key %s", fingerprint)
	}
	db.keys.put(fingerprint, u, gen)
	return u, nil
}

// ListKeys returns all keys.
func (db *DB) ListKeys(ctx context.Context) ([]*conductor.Key, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, user_id, fingerprint, public_key, created_at FROM keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var keys []*conductor.Key
	for rows.Next() {
		var k conductor.Key
		var created string
		if err := rows.Scan(&k.ID, &k.UserID, &k.Fingerprint, &k.PublicKey, &created); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		k.CreatedAt = parseTime(created)
		keys = append(keys, &k)
	}
	return keys, rows.Err()
}

// CreateApp records a new app and sets app.ID.
func (db *DB) CreateApp(ctx context.Context, app *conductor.App) error {
	res, err := db.db.ExecContext(ctx, `INSERT INTO apps (name, db_kind, port_a, port_b, secret_key, host) VALUES (?, ?, ?, ?, ?, ?)`,
		app.Name, app.DBKind, app.Ports[0], app.Ports[1], app.SecretKey, app.Host)
	if isUnique(err) {
		return conductor.Errorf(conductor.ECONFLICT, "app %q already exists (or its ports are taken)", app.Name)
	} else if err != nil {
		return fmt.Errorf("create app %s: %w", app.Name, err)
	}
	app.ID, _ = res.LastInsertId()
	return nil
}

const appCols = `id, name, db_kind, port_a, port_b, secret_key, host, created_at`

func scanApp(row interface{ Scan(...any) error }) (*conductor.App, error) {
	var a conductor.App
	var created string
	if err := row.Scan(&a.ID, &a.Name, &a.DBKind, &a.Ports[0], &a.Ports[1], &a.SecretKey, &a.Host, &created); err != nil {
		return nil, err
	}
	a.CreatedAt = parseTime(created)
	return &a, nil
}

// FindApp returns the app with that name.
func (db *DB) FindApp(ctx context.Context, name string) (*conductor.App, error) {
	a, err := scanApp(db.db.QueryRowContext(ctx, `SELECT `+appCols+` FROM apps WHERE name = ?`, name))
	if err != nil {
		return nil, notFound(err, "app %q not found", name)
	}
	return a, nil
}

// ListApps returns all apps by name.
func (db *DB) ListApps(ctx context.Context) ([]*conductor.App, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+appCols+` FROM apps ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	defer rows.Close()
	var apps []*conductor.App
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("list apps: %w", err)
		}
		apps = append(apps, a)
	}
	return apps, rows.Err()
}

// UsedPorts returns every port allocated to an app: its pair and its
// Redis's.
func (db *DB) UsedPorts(ctx context.Context) ([]int, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT port_a FROM apps UNION SELECT port_b FROM apps UNION SELECT port FROM app_redis`)
	if err != nil {
		return nil, fmt.Errorf("used ports: %w", err)
	}
	defer rows.Close()
	var ports []int
	for rows.Next() {
		var p int
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	return ports, rows.Err()
}

// Config returns an app's config vars.
func (db *DB) Config(ctx context.Context, appID int64) (map[string]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT key, value FROM config_vars WHERE app_id = ?`, appID)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer rows.Close()
	vars := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		vars[k] = v
	}
	return vars, rows.Err()
}

// SetConfig sets config vars in one transaction.
func (db *DB) SetConfig(ctx context.Context, appID int64, vars map[string]string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		for k, v := range vars {
			if _, err := tx.ExecContext(ctx, `INSERT INTO config_vars (app_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT (app_id, key) DO UPDATE SET value = excluded.value`, appID, k, v); err != nil {
				return fmt.Errorf("set config %s: %w", k, err)
			}
		}
		return nil
	})
}

// UnsetConfig removes config vars in one transaction.
func (db *DB) UnsetConfig(ctx context.Context, appID int64, keys []string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		for _, k := range keys {
			if _, err := tx.ExecContext(ctx, `DELETE FROM config_vars WHERE app_id = ? AND key = ?`, appID, k); err != nil {
				return fmt.Errorf("unset config %s: %w", k, err)
			}
		}
		return nil
	})
}

// GrantAccess lets a user read and write an app.
func (db *DB) GrantAccess(ctx context.Context, appID, userID int64) error {
	_, err := db.db.ExecContext(ctx, `INSERT OR IGNORE INTO access (app_id, user_id) VALUES (?, ?)`, appID, userID)
	if err != nil {
		return fmt.Errorf("grant access: %w", err)
	}
	return nil
}

// HasAccess reports whether a user was granted an app.
func (db *DB) HasAccess(ctx context.Context, appID, userID int64) (bool, error) {
	var n int
	err := db.db.QueryRowContext(ctx, `SELECT count(*) FROM access WHERE app_id = ? AND user_id = ?`, appID, userID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("check access: %w", err)
	}
	return n > 0, nil
}

// CreateDeploy records a queued deploy.
func (db *DB) CreateDeploy(ctx context.Context, d *conductor.Deploy) error {
	if d.Status == "" {
		d.Status = conductor.DeployQueued
	}
	_, err := db.db.ExecContext(ctx, `INSERT INTO deploys (id, app_id, rev, ref, pusher, status) VALUES (?, ?, ?, ?, ?, ?)`,
		d.ID, d.AppID, d.Rev, d.Ref, d.Pusher, d.Status)
	if err != nil {
		return fmt.Errorf("create deploy %s: %w", d.ID, err)
	}
	return nil
}

// FinishDeploy sets a deploy's status (running, succeeded, failed).
func (db *DB) FinishDeploy(ctx context.Context, id, status, errMsg string) error {
	finished := ""
	if status == conductor.DeploySucceeded || status == conductor.DeployFailed {
		finished = "now"
	}
	_, err := db.db.ExecContext(ctx, `UPDATE deploys SET status = ?, error = ?,
		finished_at = CASE WHEN ? = 'now' THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE finished_at END
		WHERE id = ?`, status, errMsg, finished, id)
	if err != nil {
		return fmt.Errorf("update deploy %s: %w", id, err)
	}
	return nil
}

// FailUnfinishedDeploys marks the queued and running deploys of the apps
// on host failed and returns their ids.
func (db *DB) FailUnfinishedDeploys(ctx context.Context, host, msg string) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `UPDATE deploys SET status = ?, error = ?,
		finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
		WHERE status IN (?, ?) AND app_id IN (SELECT id FROM apps WHERE host = ?) RETURNING id`,
		conductor.DeployFailed, msg, conductor.DeployQueued, conductor.DeployRunning, host)
	if err != nil {
		return nil, fmt.Errorf("fail unfinished deploys: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("fail unfinished deploys: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// ListDeploys returns an app's deploys, newest first.
func (db *DB) ListDeploys(ctx context.Context, appID int64) ([]*conductor.Deploy, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT id, app_id, rev, ref, pusher, status, error, created_at, finished_at
		FROM deploys WHERE app_id = ? ORDER BY created_at DESC, rowid DESC`, appID)
	if err != nil {
		return nil, fmt.Errorf("list deploys: %w", err)
	}
	defer rows.Close()
	var out []*conductor.Deploy
	for rows.Next() {
		var d conductor.Deploy
		var created, finished string
		if err := rows.Scan(&d.ID, &d.AppID, &d.Rev, &d.Ref, &d.Pusher, &d.Status, &d.Error, &created, &finished); err != nil {
			return nil, fmt.Errorf("list deploys: %w", err)
		}
		d.CreatedAt, d.FinishedAt = parseTime(created), parseTime(finished)
		out = append(out, &d)
	}
	return out, rows.Err()
}

// AddRelease records a release, numbers it and makes it the app's current
// one, and marks its deploy succeeded, in one transaction: the deploy's
// commit point. With r.RestoreConfig the app's config vars become
// r.Config in it too (a rollback).
func (db *DB) AddRelease(ctx context.Context, r *conductor.Release) error {
	config, err := json.Marshal(r.Config)
	if err != nil {
		return err
	}
	if r.Config == nil {
		config = []byte("{}")
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(number), 0) + 1 FROM releases WHERE app_id = ?`, r.AppID).Scan(&r.Number); err != nil {
			return fmt.Errorf("add release: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE releases SET current = 0 WHERE app_id = ?`, r.AppID); err != nil {
			return fmt.Errorf("add release: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO releases
			(id, app_id, number, rev, port, dir, venv, migrations, config, pusher, description, duration_ms, current)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
			r.ID, r.AppID, r.Number, r.Rev, r.Port, r.Dir, r.Venv, r.Migrations, string(config), r.Pusher, r.Description, r.Duration.Milliseconds()); err != nil {
			return fmt.Errorf("add release: %w", err)
		}
		if err := addCronEntries(ctx, tx, r); err != nil { // cron.go
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deploys SET status = ?, error = '',
			finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ? AND app_id = ?`,
			conductor.DeploySucceeded, r.ID, r.AppID); err != nil {
			return fmt.Errorf("add release: mark its deploy succeeded: %w", err)
		}
		if r.RestoreConfig {
			if err := replaceConfig(ctx, tx, r.AppID, r.Config); err != nil {
				return err
			}
		}
		r.Current = true
		return nil
	})
}

const releaseCols = `id, app_id, number, rev, port, dir, venv, migrations, config, pusher, description, duration_ms, current, created_at`

func scanRelease(row interface{ Scan(...any) error }) (*conductor.Release, error) {
	var r conductor.Release
	var created, config string
	var ms int64
	if err := row.Scan(&r.ID, &r.AppID, &r.Number, &r.Rev, &r.Port, &r.Dir, &r.Venv, &r.Migrations, &config, &r.Pusher, &r.Description, &ms, &r.Current, &created); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(config), &r.Config); err != nil {
		return nil, fmt.Errorf("release %s config: %w", r.ID, err)
	}
	r.Duration = time.Duration(ms) * time.Millisecond
	r.CreatedAt = parseTime(created)
	return &r, nil
}

// CurrentRelease returns the release an app serves.
func (db *DB) CurrentRelease(ctx context.Context, appID int64) (*conductor.Release, error) {
	r, err := scanRelease(db.db.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE app_id = ? AND current = 1`, appID))
	if err != nil {
		return nil, notFound(err, "app has no release yet")
	}
	return r, nil
}

// FindRelease finds a release by id, or by number written "v3" or "3".
func (db *DB) FindRelease(ctx context.Context, appID int64, ref string) (*conductor.Release, error) {
	number := -1
	if n, err := strconv.Atoi(strings.TrimPrefix(ref, "v")); err == nil {
		number = n
	}
	r, err := scanRelease(db.db.QueryRowContext(ctx, `SELECT `+releaseCols+` FROM releases
		WHERE app_id = ? AND (id = ? OR number = ?)`, appID, ref, number))
	if err != nil {
		return nil, notFound(err, "release %q not found", ref)
	}
	return r, nil
}

// ReplaceConfig sets an app's config vars to exactly vars.
func (db *DB) ReplaceConfig(ctx context.Context, appID int64, vars map[string]string) error {
	return db.tx(ctx, func(tx *sql.Tx) error { return replaceConfig(ctx, tx, appID, vars) })
}

func replaceConfig(ctx context.Context, tx *sql.Tx, appID int64, vars map[string]string) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM config_vars WHERE app_id = ?`, appID); err != nil {
		return fmt.Errorf("replace config: %w", err)
	}
	for k, v := range vars {
		if _, err := tx.ExecContext(ctx, `INSERT INTO config_vars (app_id, key, value) VALUES (?, ?, ?)`, appID, k, v); err != nil {
			return fmt.Errorf("replace config %s: %w", k, err)
		}
	}
	return nil
}

// ListReleases returns an app's releases, newest first.
func (db *DB) ListReleases(ctx context.Context, appID int64) ([]*conductor.Release, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+releaseCols+` FROM releases WHERE app_id = ? ORDER BY number DESC, rowid DESC`, appID)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var out []*conductor.Release
	for rows.Next() {
		r, err := scanRelease(rows)
		if err != nil {
			return nil, fmt.Errorf("list releases: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
