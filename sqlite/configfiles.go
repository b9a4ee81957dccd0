package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/hasadna/conductor"
)

// ConfigFiles lists an app's config files by path, without their content.
func (db *DB) ConfigFiles(ctx context.Context, appID int64) ([]*conductor.ConfigFile, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT path, size, sha256, updated_at, updated_by FROM config_files WHERE app_id = ? ORDER BY path`, appID)
	if err != nil {
		return nil, fmt.Errorf("config files: %w", err)
	}
	defer rows.Close()
	out := []*conductor.ConfigFile{}
	for rows.Next() {
		var f conductor.ConfigFile
		var updated string
		if err := rows.Scan(&f.Path, &f.Size, &f.SHA256, &updated, &f.UpdatedBy); err != nil {
			return nil, fmt.Errorf("config files: %w", err)
		}
		f.UpdatedAt = parseTime(updated)
		out = append(out, &f)
	}
	return out, rows.Err()
}

// ConfigFileContent returns the content of the app's config file at path.
func (db *DB) ConfigFileContent(ctx context.Context, appID int64, path string) ([]byte, error) {
	var content []byte
	err := db.db.QueryRowContext(ctx, `SELECT content FROM config_files WHERE app_id = ? AND path = ?`, appID, path).Scan(&content)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, conductor.Errorf(conductor.ENOTFOUND, "no config file %s", path)
	} else if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if content == nil {
		content = []byte{}
	}
	return content, nil
}

// PutConfigFile stores content at path, replacing the file there; a new
// path is refused once the app has conductor.MaxConfigFiles.
func (db *DB) PutConfigFile(ctx context.Context, appID int64, path string, content []byte, by string) (*conductor.ConfigFile, error) {
	sum := sha256.Sum256(content)
	if content == nil {
		content = []byte{} // NOT NULL
	}
	f := &conductor.ConfigFile{Path: path, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:]), UpdatedBy: by}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var n, exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(path = ?), 0) FROM config_files WHERE app_id = ?`, path, appID).Scan(&n, &exists); err != nil {
			return fmt.Errorf("count config files: %w", err)
		}
		if exists == 0 && n >= conductor.MaxConfigFiles {
			return conductor.Errorf(conductor.EINVALID, "the app already has %d config files, the most allowed: remove one first", n)
		}
		var updated string
		if err := tx.QueryRowContext(ctx, `INSERT INTO config_files (app_id, path, content, size, sha256, updated_by) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (app_id, path) DO UPDATE SET content = excluded.content, size = excluded.size, sha256 = excluded.sha256,
				updated_at = excluded.updated_at, updated_by = excluded.updated_by
			RETURNING updated_at`, appID, path, content, f.Size, f.SHA256, by).Scan(&updated); err != nil {
			return fmt.Errorf("store config file %s: %w", path, err)
		}
		f.UpdatedAt = parseTime(updated)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// RemoveConfigFile forgets the app's config file at path.
func (db *DB) RemoveConfigFile(ctx context.Context, appID int64, path string) error {
	res, err := db.db.ExecContext(ctx, `DELETE FROM config_files WHERE app_id = ? AND path = ?`, appID, path)
	if err != nil {
		return fmt.Errorf("remove config file %s: %w", path, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return conductor.Errorf(conductor.ENOTFOUND, "no config file %s", path)
	}
	return nil
}

// PlacedConfigFiles returns the paths recorded for the release dir dir.
func (db *DB) PlacedConfigFiles(ctx context.Context, appID int64, dir string) ([]string, error) {
	rows, err := db.db.QueryContext(ctx, `SELECT path FROM config_file_placements WHERE app_id = ? AND dir = ? ORDER BY path`, appID, dir)
	if err != nil {
		return nil, fmt.Errorf("placed config files: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("placed config files: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// SetPlacedConfigFiles replaces the record of the paths placed in dir.
func (db *DB) SetPlacedConfigFiles(ctx context.Context, appID int64, dir string, paths []string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM config_file_placements WHERE app_id = ? AND dir = ?`, appID, dir); err != nil {
			return fmt.Errorf("record placed config files: %w", err)
		}
		for _, p := range paths {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO config_file_placements (app_id, dir, path) VALUES (?, ?, ?)`, appID, dir, p); err != nil {
				return fmt.Errorf("record placed config files: %w", err)
			}
		}
		return nil
	})
}
