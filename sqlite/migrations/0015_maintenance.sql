-- Apps in maintenance mode (maintenance:on): nginx answers 503 with the
-- maintenance page. An app that is not in maintenance has no row; deploys
-- and restarts render the site from this, so the mode survives them.
CREATE TABLE app_maintenance (
    app_id      INTEGER PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    message     TEXT NOT NULL DEFAULT '',
    retry_after INTEGER NOT NULL,
    by_user     TEXT NOT NULL DEFAULT '',
    since       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
