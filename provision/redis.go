package provision

import (
	"bytes"
	"context"
	"fmt"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/lazyre"
	"github.com/hasadna/conductor/internal/safefs"
)

// RedisDir is where an app's Redis keeps its configuration, RDB snapshot
// and append-only file, relative to the projects dir: inside the app's
// data dir, so backups take it with the app's other data.
func RedisDir(app string) string { return app + "/data/redis" }

// NewRedis records a Redis for app: a port no app holds from the range, a
// generated password, and the memory limit and policy, already validated.
func NewRedis(ctx context.Context, store conductor.RedisAdmin, used []int, app *conductor.App, maxMemory, policy string, ports PortRange) (*conductor.Redis, error) {
	port, err := allocatePort(used, ports)
	if err != nil {
		return nil, err
	}
	r := &conductor.Redis{AppID: app.ID, Port: port, Password: RandomString(32), MaxMemory: maxMemory, Policy: policy}
	if err := store.CreateAppRedis(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// allocatePort picks the lowest port in the range that no app holds and
// nothing listens on now.
func allocatePort(used []int, r PortRange) (int, error) {
	taken := map[int]bool{}
	for _, p := range used {
		taken[p] = true
	}
	for p := r.From; p <= r.To; p++ {
		if !taken[p] && portFree(p) {
			return p, nil
		}
	}
	return 0, conductor.Errorf(conductor.ECONFLICT, "no free ports left in %d-%d", r.From, r.To)
}

// redisConfSafe is what a value rendered into redis.conf may hold: no
// space, quote or newline that would start another argument or directive.
var redisConfSafe = lazyre.New(`^[A-Za-z0-9_./-]+$`)

// RedisConf renders the app's redis.conf.
func RedisConf(app, dir string, r *conductor.Redis) ([]byte, error) {
	if _, err := conductor.ParseRedisMaxMemory(r.MaxMemory); err != nil {
		return nil, err
	}
	if err := conductor.ValidateRedisPolicy(r.Policy); err != nil {
		return nil, err
	}
	for _, v := range []string{app, dir, r.Password} {
		if !redisConfSafe.MatchString(v) {
			return nil, fmt.Errorf("redis.conf: %q is unsafe in a Redis configuration", v)
		}
	}
	if r.Port < 1 || r.Port > 65535 {
		return nil, fmt.Errorf("redis.conf: bad port %d", r.Port)
	}
	var buf bytes.Buffer
	err := templates.ExecuteTemplate(&buf, "redis.conf.tmpl", map[string]any{
		"App": app, "Dir": dir, "Port": r.Port, "Password": r.Password, "MaxMemory": r.MaxMemory, "Policy": r.Policy,
	})
	return buf.Bytes(), err
}

// WriteRedisConf makes the app's Redis dir (0700, the app's: redis-server
// runs as the app and writes its data there) and writes redis.conf in it,
// 0600 and the app's, as it holds the password. The dir is in the app's
// data dir, which the app controls: both are reached with safefs, so a
// link the app planted is refused or replaced, never followed. It returns
// the dir and the conf file's path.
func WriteRedisConf(l Layout, app string, u *AppUser, r *conductor.Redis) (dir, conf string, err error) {
	dir = l.ProjectsDir() + "/" + RedisDir(app)
	data, err := RedisConf(app, dir, r)
	if err != nil {
		return "", "", err
	}
	if err := safefs.EnsureDir(l.ProjectsDir(), RedisDir(app), 0o700, u.UID, u.GID); err != nil {
		return "", "", fmt.Errorf("redis dir of %s: %w", app, err)
	}
	if err := safefs.WriteFile(l.ProjectsDir(), RedisDir(app)+"/redis.conf", data, 0o600, u.UID, u.GID); err != nil {
		return "", "", fmt.Errorf("redis.conf of %s: %w", app, err)
	}
	return dir, dir + "/redis.conf", nil
}
