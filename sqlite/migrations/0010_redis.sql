-- An app's private Redis server (redis:create): its port, from the same
-- range as the apps' port pairs, and the password Conductor generated once.
-- An app without Redis has no row.
CREATE TABLE app_redis (
    app_id     INTEGER PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    port       INTEGER NOT NULL UNIQUE,
    password   TEXT NOT NULL,
    maxmemory  TEXT NOT NULL,
    policy     TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
