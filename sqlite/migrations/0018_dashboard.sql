-- The web dashboard's logins (package dashboard): one-time login tokens
-- made by `ssh conductor dashboard`, and the browser sessions they start.
-- Only SHA-256 hashes of the tokens and session cookies are kept; times
-- are Unix milliseconds, compared in SQL.
CREATE TABLE dashboard_tokens (
    hash       BLOB PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);

CREATE TABLE dashboard_sessions (
    id         INTEGER PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    agent      TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL
);
CREATE INDEX dashboard_sessions_user ON dashboard_sessions(user_id);
