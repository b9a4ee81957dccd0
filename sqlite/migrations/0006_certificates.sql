-- TLS certificates of custom domains: issued by ACME (and renewed) or given
-- with domains:cert. The PEM file (chain and key) is under the data dir; a
-- certificate goes with its domain.
CREATE TABLE certificates (
    app_id     INTEGER NOT NULL,
    domain     TEXT NOT NULL,
    source     TEXT NOT NULL, -- 'acme' or 'manual'
    path       TEXT NOT NULL,
    not_before TEXT NOT NULL,
    not_after  TEXT NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (app_id, domain),
    FOREIGN KEY (app_id, domain) REFERENCES domains(app_id, host) ON DELETE CASCADE
);
