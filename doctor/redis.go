package doctor

import (
	"context"
	"os/exec"
)

// RedisServer checks the redis-server that redis:create runs for apps.
// Only apps with a Redis need it, so its absence is a warning.
func RedisServer(ctx context.Context, bin string) Result {
	const name = "redis-server"
	path, err := exec.LookPath(bin)
	if err != nil {
		return warn(name, "apt-get install redis-server (make setup does)", "%s is not installed: redis:create cannot run an app's Redis", bin)
	}
	out, err := output(ctx, path, "--version")
	if err != nil {
		return warn(name, "apt-get install --reinstall redis-server", "%s --version: %s", path, firstLine(out, err))
	}
	return ok(name, "%s", firstLine(out, nil))
}
