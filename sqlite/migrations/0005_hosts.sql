-- Apps are placed on a host (the builder worker that runs them) and stay
-- there. Apps made before workers existed run on the conductor's own host,
-- whose default name is "local".
ALTER TABLE apps ADD COLUMN host TEXT NOT NULL DEFAULT 'local';
CREATE INDEX apps_host ON apps(host);
