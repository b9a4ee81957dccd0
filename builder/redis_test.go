package builder

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/provision"
)

// The Redis watcher's name is the app's (its prefix) and no process
// type's: a Procfile cannot declare a type retire would mistake for it.
func TestRedisWatcherName(t *testing.T) {
	if got := redisWatcher("shop"); got != "shop_redis-server" {
		t.Errorf("redisWatcher = %q", got)
	}
	if conductor.ValidateProcessType(redisType) == nil {
		t.Errorf("%q is a valid process type: a Procfile could name the Redis watcher", redisType)
	}
}

// waitRedis returns once a real redis-server, started from the conf
// Conductor renders, answers AUTH and PING; a wrong password never passes.
func TestWaitRedis(t *testing.T) {
	bin, err := redisServer()
	if err != nil {
		t.Skip(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	r := &conductor.Redis{Port: port, Password: provision.RandomString(32), MaxMemory: "8mb", Policy: "allkeys-lru"}
	conf, err := provision.RedisConf("test", dir, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "redis.conf"), conf, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, filepath.Join(dir, "redis.conf"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := waitRedis(context.Background(), r, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := pingRedis(context.Background(), "127.0.0.1:"+strconv.Itoa(port), "wrong"); err == nil {
		t.Error("a wrong password passed")
	}
	stale := *r
	stale.Port = port + 1 // nothing there
	if err := waitRedis(context.Background(), &stale, 300*time.Millisecond); err == nil {
		t.Error("waitRedis passed with no server")
	}
}
