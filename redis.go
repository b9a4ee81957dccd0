package conductor

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hasadna/conductor/internal/lazyre"
)

// Redis is an app's private Redis server (redis:create): a redis-server run
// by circus as the app's user on the app's host, bound to 127.0.0.1 on a
// port from Conductor's range, with a generated password, a memory limit
// and its data in the app's data dir.
//
// The password is a secret: it reaches the app through REDIS_URL only.
// String leaves it out.
type Redis struct {
	AppID     int64
	Port      int
	Password  string // from [A-Za-z0-9]
	MaxMemory string // redis.conf's maxmemory: "64mb"
	Policy    string // maxmemory-policy
	CreatedAt time.Time
}

// DefaultRedisMaxMemory and DefaultRedisPolicy are redis:create's defaults.
// noeviction, as Heroku's Redis: a Celery broker must not lose queued tasks
// to eviction; a cache picks allkeys-lru.
const (
	DefaultRedisMaxMemory = "64mb"
	DefaultRedisPolicy    = "noeviction"
)

// RedisPolicies are the maxmemory-policy values Redis 7 knows.
var RedisPolicies = []string{"noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random",
	"volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"}

// URL is what the app gets in REDIS_URL.
func (r *Redis) URL() string {
	return fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", r.Password, r.Port)
}

func (r *Redis) String() string {
	return fmt.Sprintf("redis on 127.0.0.1:%d (maxmemory %s, %s)", r.Port, r.MaxMemory, r.Policy)
}

var redisMemoryRE = lazyre.New(`^([1-9][0-9]{0,6})(kb|mb|gb)$`)

// ParseRedisMaxMemory checks and normalizes a --maxmemory value: a number
// with kb, mb or gb (any case, "M" and "G" too), between 1mb and 64gb.
// Returns the value as redis.conf takes it.
func ParseRedisMaxMemory(s string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if strings.HasSuffix(v, "k") || strings.HasSuffix(v, "m") || strings.HasSuffix(v, "g") {
		v += "b"
	}
	m := redisMemoryRE.FindStringSubmatch(v)
	bad := Errorf(EINVALID, "invalid --maxmemory %q: use a size like 64mb or 1gb, from 1mb to 64gb", truncate(s))
	if m == nil {
		return "", bad
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	bytes := n << map[string]int{"kb": 10, "mb": 20, "gb": 30}[m[2]]
	if bytes < 1<<20 || bytes > 64<<30 {
		return "", bad
	}
	return m[1] + m[2], nil
}

// ValidateRedisPolicy checks a --policy value.
func ValidateRedisPolicy(p string) error {
	for _, ok := range RedisPolicies {
		if p == ok {
			return nil
		}
	}
	return Errorf(EINVALID, "invalid --policy %q: use one of %s", truncate(p), strings.Join(RedisPolicies, ", "))
}

// RedisStore is the part of the state a builder reads about an app's Redis.
type RedisStore interface {
	// AppRedis is the app's Redis; ENOTFOUND when it has none.
	AppRedis(ctx context.Context, appID int64) (*Redis, error)
}

// RedisAdmin is what redis:create and redis:destroy record.
type RedisAdmin interface {
	RedisStore
	// CreateAppRedis records r; ECONFLICT when the app has one already or
	// its port is taken.
	CreateAppRedis(ctx context.Context, r *Redis) error
	DeleteAppRedis(ctx context.Context, appID int64) error
}
