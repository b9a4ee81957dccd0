-- Per-app databases on PostgreSQL and MariaDB: the credentials Conductor
-- generated once and keeps for the app's whole life. SQLite apps have no row.
CREATE TABLE app_databases (
    app_id     INTEGER PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    user       TEXT NOT NULL,
    password   TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
