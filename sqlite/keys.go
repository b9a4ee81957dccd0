package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hasadna/conductor"
)

// AddUserKey adds a key to a user, creating the user if it does not exist
// and making it an admin when admin is set, all in one transaction, so a
// refused key leaves no user behind.
func (db *DB) AddUserKey(ctx context.Context, name string, admin bool, fingerprint, publicKey string) (*conductor.User, *conductor.Key, error) {
	defer db.keys.invalidate()
	if err := conductor.ValidateUserName(name); err != nil {
		return nil, nil, err
	}
	var u *conductor.User
	var k *conductor.Key
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users u WHERE u.name = ?`, name))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			res, err := tx.ExecContext(ctx, `INSERT INTO users (name, admin) VALUES (?, ?)`, name, admin)
			if err != nil {
				return fmt.Errorf("create user %s: %w", name, err)
			}
			id, _ := res.LastInsertId()
			u = &conductor.User{ID: id, Name: name, Admin: admin}
		case err != nil:
			return fmt.Errorf("find user %s: %w", name, err)
		case admin && !u.Admin:
			if _, err := tx.ExecContext(ctx, `UPDATE users SET admin = 1 WHERE id = ?`, u.ID); err != nil {
				return fmt.Errorf("promote %s: %w", name, err)
			}
			u.Admin = true
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO keys (user_id, fingerprint, public_key) VALUES (?, ?, ?)`, u.ID, fingerprint, publicKey)
		if isUnique(err) {
			return conductor.Errorf(conductor.ECONFLICT, "key %s is already registered", fingerprint)
		} else if err != nil {
			return fmt.Errorf("add key: %w", err)
		}
		id, _ := res.LastInsertId()
		k = &conductor.Key{ID: id, UserID: u.ID, Fingerprint: fingerprint, PublicKey: publicKey}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return u, k, nil
}

// RemoveKey deletes one key and returns it.
func (db *DB) RemoveKey(ctx context.Context, fingerprint string) (*conductor.Key, error) {
	defer db.keys.invalidate()
	var k conductor.Key
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var created string
		err := tx.QueryRowContext(ctx, `SELECT id, user_id, fingerprint, public_key, created_at FROM keys WHERE fingerprint = ?`, fingerprint).
			Scan(&k.ID, &k.UserID, &k.Fingerprint, &k.PublicKey, &created)
		if err != nil {
			return notFound(err, "no key %s", fingerprint)
		}
		k.CreatedAt = parseTime(created)
		if _, err := tx.ExecContext(ctx, `DELETE FROM keys WHERE id = ?`, k.ID); err != nil {
			return fmt.Errorf("remove key: %w", err)
		}
		return checkAdminLeft(ctx, tx)
	})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// RemoveUser deletes a user with their keys and grants.
func (db *DB) RemoveUser(ctx context.Context, name string) error {
	defer db.keys.invalidate()
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return fmt.Errorf("remove user %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return conductor.Errorf(conductor.ENOTFOUND, "user %q not found", name)
		}
		return checkAdminLeft(ctx, tx)
	})
}

// checkAdminLeft fails (rolling back the caller's transaction) when no
// admin would have a key left: nobody could then manage the server.
func checkAdminLeft(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users u
		WHERE u.admin = 1 AND EXISTS (SELECT 1 FROM keys k WHERE k.user_id = u.id)`).Scan(&n); err != nil {
		return fmt.Errorf("count admins: %w", err)
	}
	if n == 0 {
		return conductor.Errorf(conductor.ECONFLICT, "refused: no admin would be left with a key to log in with")
	}
	return nil
}

// RevokeAccess takes back a grant.
func (db *DB) RevokeAccess(ctx context.Context, appID, userID int64) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM access WHERE app_id = ? AND user_id = ?`, appID, userID)
	if err != nil {
		return fmt.Errorf("revoke access: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conductor.Errorf(conductor.ENOTFOUND, "the user has no grant on that app")
	}
	return nil
}

// ListAccess returns the users granted an app, by name.
func (db *DB) ListAccess(ctx context.Context, appID int64) ([]*conductor.User, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT `+userCols+` FROM users u JOIN access a ON a.user_id = u.id
		WHERE a.app_id = ? ORDER BY u.name`, appID)
	if err != nil {
		return nil, fmt.Errorf("list access: %w", err)
	}
	defer rows.Close()
	var users []*conductor.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("list access: %w", err)
		}
		users = append(users, u)
	}
	return users, rows.Err()
}
