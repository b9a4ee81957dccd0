-- Webhook subscriptions (notify:add) and the log of their deliveries
-- (package notify). app_id NULL is a platform-wide subscription (admin's);
-- events is a comma-separated list of event names. secret signs every
-- body (HMAC-SHA256); it is shown once, at notify:add.
CREATE TABLE notify_subscriptions (
    id         INTEGER PRIMARY KEY,
    url        TEXT NOT NULL,
    app_id     INTEGER REFERENCES apps(id) ON DELETE CASCADE,
    events     TEXT NOT NULL,
    format     TEXT NOT NULL DEFAULT 'json',
    secret     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- One row per event sent to a subscription; status is pending while
-- attempts remain, then delivered or failed. body is kept so a delivery
-- still pending when conductor stopped is resumed at its next start.
CREATE TABLE notify_deliveries (
    id              INTEGER PRIMARY KEY,
    subscription_id INTEGER NOT NULL REFERENCES notify_subscriptions(id) ON DELETE CASCADE,
    event           TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    response_code   INTEGER NOT NULL DEFAULT 0,
    error           TEXT NOT NULL DEFAULT '',
    body            BLOB NOT NULL,
    created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX notify_deliveries_sub ON notify_deliveries (subscription_id, id);
CREATE INDEX notify_deliveries_pending ON notify_deliveries (status) WHERE status = 'pending';
