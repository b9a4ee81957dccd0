-- Kernel limits per process type (ps:limit), applied to each process of the
-- type when its watcher next starts. 0 is no limit; a type with no limit
-- has no row.
CREATE TABLE process_limits (
    app_id       INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    memory_bytes INTEGER NOT NULL DEFAULT 0 CHECK (memory_bytes >= 0),
    cpu_millis   INTEGER NOT NULL DEFAULT 0 CHECK (cpu_millis >= 0),
    pids         INTEGER NOT NULL DEFAULT 0 CHECK (pids >= 0),
    PRIMARY KEY (app_id, type)
);
