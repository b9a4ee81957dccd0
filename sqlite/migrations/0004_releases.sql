-- Releases become numbered snapshots that a rollback can restore: the
-- virtualenv and config vars they ran with, who made them and how long the
-- deploy took.
ALTER TABLE releases ADD COLUMN number INTEGER NOT NULL DEFAULT 0;
ALTER TABLE releases ADD COLUMN venv TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN config TEXT NOT NULL DEFAULT '{}';
ALTER TABLE releases ADD COLUMN pusher TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN duration_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE releases ADD COLUMN description TEXT NOT NULL DEFAULT '';
