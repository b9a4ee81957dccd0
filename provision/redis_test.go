package provision

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/sqlite"
)

// An app's Redis gets a port from the apps' range that no app pair holds,
// and later apps and Redises do not get it.
func TestNewRedisPorts(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b := freeBlock(t, 8)
	ports := PortRange{From: b, To: b + 7}
	app, err := NewApp(ctx, store, "one", conductor.DBSQLite, "local", ports)
	if err != nil {
		t.Fatal(err)
	}
	used, err := store.UsedPorts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRedis(ctx, store, used, app, "64mb", "noeviction", ports)
	if err != nil {
		t.Fatal(err)
	}
	if r.Port != b+2 || len(r.Password) != 32 {
		t.Errorf("redis = port %d, password of %d chars; want port %d and 32 chars", r.Port, len(r.Password), b+2)
	}
	got, err := store.AppRedis(ctx, app.ID)
	if err != nil || got.Port != r.Port || got.Password != r.Password || got.MaxMemory != "64mb" || got.Policy != "noeviction" {
		t.Fatalf("AppRedis = %+v, %v", got, err)
	}
	two, err := NewApp(ctx, store, "two", conductor.DBSQLite, "local", ports)
	if err != nil {
		t.Fatal(err)
	}
	if two.Ports != [2]int{b + 3, b + 4} {
		t.Errorf("the next app got %v, want %v: the Redis port is taken", two.Ports, [2]int{b + 3, b + 4})
	}
	if err := store.CreateAppRedis(ctx, &conductor.Redis{AppID: app.ID, Port: b + 6, Password: "x", MaxMemory: "1mb", Policy: "noeviction"}); conductor.ErrorCode(err) != conductor.ECONFLICT {
		t.Errorf("a second Redis for one app: %v, want a conflict", err)
	}
	if err := store.DeleteAppRedis(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := store.AppRedis(ctx, app.ID); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Errorf("AppRedis after delete: %v, want not found", err)
	}
}

func TestRedisConf(t *testing.T) {
	r := &conductor.Redis{Port: 9100, Password: "Abc123", MaxMemory: "64mb", Policy: "allkeys-lru"}
	conf, err := RedisConf("hello", "/srv/projects/hello/data/redis", r)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"bind 127.0.0.1", "port 9100", "requirepass Abc123", "maxmemory 64mb",
		"maxmemory-policy allkeys-lru", "dir /srv/projects/hello/data/redis", "appendonly yes", "protected-mode yes", "daemonize no"} {
		if !strings.Contains(string(conf), "\n"+line+"\n") {
			t.Errorf("redis.conf lacks %q:\n%s", line, conf)
		}
	}
	// Nothing can add a directive: each value is checked before rendering.
	bad := []struct {
		dir string
		r   conductor.Redis
	}{
		{"/srv/a b", *r},
		{"/srv/a\nport 6379", *r},
		{"/srv/x", conductor.Redis{Port: 9100, Password: "a b", MaxMemory: "64mb", Policy: "noeviction"}},
		{"/srv/x", conductor.Redis{Port: 9100, Password: "a\nsave", MaxMemory: "64mb", Policy: "noeviction"}},
		{"/srv/x", conductor.Redis{Port: 9100, Password: "a", MaxMemory: "64mb\nbind 0.0.0.0", Policy: "noeviction"}},
		{"/srv/x", conductor.Redis{Port: 9100, Password: "a", MaxMemory: "64mb", Policy: "noeviction\nbind 0.0.0.0"}},
		{"/srv/x", conductor.Redis{Port: 0, Password: "a", MaxMemory: "64mb", Policy: "noeviction"}},
	}
	for _, tt := range bad {
		if conf, err := RedisConf("hello", tt.dir, &tt.r); err == nil {
			t.Errorf("RedisConf(%q, %+v) rendered:\n%s", tt.dir, tt.r, conf)
		}
	}
}

// The Redis dir is in the app's data dir: a link the app put there is
// refused, and nothing is written where it points.
func TestWriteRedisConfRefusesLinks(t *testing.T) {
	l := Layout{Srv: t.TempDir()}
	u := currentUser(t)
	if err := Dirs(context.Background(), l, "hello", u); err != nil {
		t.Fatal(err)
	}
	r := &conductor.Redis{Port: 9100, Password: "Abc123", MaxMemory: "64mb", Policy: "noeviction"}
	dir, conf, err := WriteRedisConf(l, "hello", u, r)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o600 || filepath.Dir(conf) != dir {
		t.Fatalf("redis.conf: %v, %v", fi, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("redis dir: %v, %v", fi, err)
	}
	outside := t.TempDir()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, dir); err != nil {
		t.Fatal(err)
	}
	if _, _, err := WriteRedisConf(l, "hello", u, r); err == nil {
		t.Error("WriteRedisConf wrote through a planted link")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("files appeared where the link points: %v", entries)
	}
}
