-- Scheduled jobs (app.json's cron): the entries each release declared,
-- recorded with the release (AddRelease), so the current release's are the
-- app's and a rollback brings its own back.
CREATE TABLE cron_entries (
    release_id TEXT NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    entry      TEXT NOT NULL,
    position   INTEGER NOT NULL,
    command    TEXT NOT NULL,
    schedule   TEXT NOT NULL,
    timeout_ms INTEGER NOT NULL,
    PRIMARY KEY (release_id, entry)
);

-- One row per run, skipped runs included: when it started and ended, how
-- it ended and where its output went (the app's logs/cron.log, lines named
-- cron.<id>).
CREATE TABLE cron_runs (
    id          INTEGER PRIMARY KEY,
    app_id      INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    entry       TEXT NOT NULL,
    release_id  TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    status      TEXT NOT NULL,
    exit_code   INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT '',
    duration_ms INTEGER NOT NULL DEFAULT 0,
    output      TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX cron_runs_app_entry ON cron_runs (app_id, entry, id);
