-- Per-app database backups (db:backup, db:backups, db:restore): one row per
-- attempt, the file on the app's host (a name in Conductor's root-only
-- backups directory there, never a path the app controls), its size and
-- SHA-256 (checked before a restore), when it started, how long it took,
-- and how it ended (running, succeeded or failed with the error).
CREATE TABLE db_backups (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id   INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    alias    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    host     TEXT NOT NULL DEFAULT '',
    file     TEXT NOT NULL DEFAULT '',
    size     INTEGER NOT NULL DEFAULT 0,
    sha256   TEXT NOT NULL DEFAULT '',
    started  TIMESTAMP NOT NULL,
    duration INTEGER NOT NULL DEFAULT 0, -- milliseconds
    status   TEXT NOT NULL,
    error    TEXT NOT NULL DEFAULT '',
    scheduled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX db_backups_app ON db_backups (app_id, alias, id);

-- db:backups:schedule: one schedule per app and alias, a cron expression
-- (robfig/cron's parser) and how many succeeded backups to keep.
CREATE TABLE db_backup_schedules (
    app_id   INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    alias    TEXT NOT NULL,
    schedule TEXT NOT NULL,
    keep     INTEGER NOT NULL,
    created  TIMESTAMP NOT NULL,
    PRIMARY KEY (app_id, alias)
);
