-- The SSH command surface: custom domains, process scale, the audit trail.
CREATE TABLE domains (
    app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    host       TEXT NOT NULL UNIQUE, -- one app per host name, server-wide
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (app_id, host)
);

CREATE TABLE process_scale (
    app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    type   TEXT NOT NULL,
    count  INTEGER NOT NULL CHECK (count >= 0),
    PRIMARY KEY (app_id, type)
);

-- No foreign keys: the trail outlives the users and apps it names.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    took_ms     INTEGER NOT NULL DEFAULT 0,
    user_name   TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    app         TEXT NOT NULL DEFAULT '',
    op          TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL,
    error       TEXT NOT NULL DEFAULT '',
    deploy_id   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_app ON audit(app, id);
CREATE INDEX audit_deploy ON audit(deploy_id) WHERE deploy_id != '';
