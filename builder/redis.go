package builder

// redisWatcher names an app's Redis server (redis:create). It starts with
// "<app>_", so apps:destroy, ps and the cgroup reconcile find it with the
// app's other watchers; "-" cannot appear in a process type, so no
// Procfile line names it, and retire and the start-up reconcile keep it
// (keep maps).
func redisWatcher(app string) string { return app + "_redis-server" }
