-- Per-app settings of Conductor itself (apps:set), e.g. timeout.release=30m;
-- a key at its default has no row. Keys and values are validated by the
-- root package (settings.go) before they are stored.
CREATE TABLE app_settings (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (app_id, key)
);
