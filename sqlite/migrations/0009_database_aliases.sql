-- An app's server databases, one per Django alias (db:create adds them):
-- the table is rebuilt with the alias in its key; an app's existing
-- database is its "default". A SQLite default has no row (apps.db_kind says
-- which kind the default is).
CREATE TABLE app_databases_new (
    app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    alias      TEXT NOT NULL,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    user       TEXT NOT NULL,
    password   TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (app_id, alias)
);
INSERT INTO app_databases_new (app_id, alias, kind, name, user, password, created_at)
    SELECT app_id, 'default', kind, name, user, password, created_at FROM app_databases;
DROP TABLE app_databases;
ALTER TABLE app_databases_new RENAME TO app_databases;
