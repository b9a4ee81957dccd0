package doctor

import (
	"context"
	"os/exec"
	"testing"
)

func TestRedisServer(t *testing.T) {
	ctx := context.Background()
	if _, err := exec.LookPath("redis-server"); err == nil {
		want(t, RedisServer(ctx, "redis-server"), OK, "Redis server v=")
	}
	want(t, RedisServer(ctx, "/nonexistent/redis-server"), Warn, "apt-get install redis-server", "redis:create")
}
