-- Config files (config:file): content placed at path, relative to the app
-- directory, in every release. The content lives here so backups (a VACUUM
-- INTO of this database) hold it; listings read only the other columns.
CREATE TABLE config_files (
    app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    path       TEXT NOT NULL,
    content    BLOB NOT NULL,
    size       INTEGER NOT NULL,
    sha256     TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (app_id, path)
);

-- The config files Conductor wrote into a release directory, so a restart
-- or rollback running that directory again removes the ones no longer
-- configured, and only those (never a repository's file).
CREATE TABLE config_file_placements (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    dir    TEXT NOT NULL,
    path   TEXT NOT NULL,
    PRIMARY KEY (app_id, dir, path)
);
