-- A dashboard login belongs to the key that asked for it (`ssh … dashboard`):
-- removing that key (keys:remove) ends the sessions it started.
ALTER TABLE dashboard_tokens ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE dashboard_sessions ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
