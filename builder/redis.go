package builder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/provision"
)

// redisWatcher names an app's Redis server (redis:create). It starts with
// "<app>_", so apps:destroy, ps and the cgroup reconcile find it with the
// app's other watchers; "-" cannot appear in a process type, so no
// Procfile line names it, and retire and the start-up reconcile keep it
// (keep maps).
func redisWatcher(app string) string { return app + "_redis-server" }

// redisType is the name its processes and log file (logs/redis-server.log)
// go by: no process type can have it.
const redisType = "redis-server"

// redisServer finds Debian's redis-server (make setup installs it).
func redisServer() (string, error) {
	for _, p := range []string{"redis-server", "/usr/bin/redis-server", "/usr/sbin/redis-server"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", conductor.Errorf(conductor.EUNAVAILABLE, "redis-server is not installed on this host: install Debian's redis-server package (make setup does)")
}

// StartRedis (re)starts an app's Redis server from r: its redis.conf in
// the app's data dir, and a circus watcher running redis-server as the
// app's user in a cgroup of its own, like the app's processes. It returns
// once the server answers an authenticated PING.
func (b *Builder) StartRedis(ctx context.Context, app *conductor.App, r *conductor.Redis) error {
	bin, err := redisServer()
	if err != nil {
		return err
	}
	u, err := provision.EnsureUser(ctx, app.Name, b.Layout.ProjectDir(app.Name))
	if err != nil {
		return err
	}
	if err := provision.Dirs(ctx, b.Layout, app.Name, u); err != nil {
		return err
	}
	dir, conf, err := provision.WriteRedisConf(b.Layout, app.Name, u, r)
	if err != nil {
		return err
	}
	name := redisWatcher(app.Name)
	spec := filepath.Join(b.Layout.RunDir(app.Name), name+".json")
	if err := b.stopWatcher(ctx, name, spec, false); err != nil {
		return err
	}
	// run-process drops to the app user before it reads the conf or
	// enters the dir, both the app's.
	if err := process.WriteSpec(spec, &process.Spec{
		Type: redisType, Argv: []string{bin, conf}, Dir: dir,
		Env: map[string]string{"HOME": b.Layout.HomeDir(app.Name), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
		UID: u.UID, GID: u.GID, Cgroup: b.newWatcherCgroup(app.Name, name),
	}, u.UID, u.GID); err != nil {
		return err
	}
	if err := b.Circus.Add(ctx, circus.Watcher{
		App: app.Name, Name: name, Cmd: b.Conductor, Spec: spec,
		WorkingDir:   b.Layout.ProjectDir(app.Name), // root's: circusd enters it as root
		LogFile:      filepath.Join(b.Layout.LogDir(app.Name), redisType+".log"),
		LogMaxBytes:  b.LogMaxBytes,
		NumProcesses: 1,
	}); err != nil {
		return err
	}
	if err := waitRedis(ctx, r, 30*time.Second); err != nil {
		tail := safefs.Tail(b.Layout.ProjectsDir(), app.Name+"/logs/"+redisType+".log", 15)
		return conductor.Errorf(conductor.EINVALID, "the Redis of %s did not start: %v\n%s", app.Name, err, tail)
	}
	slog.Info("redis started", "app", app.Name, "port", r.Port)
	return nil
}

// StopRedis stops an app's Redis server (redis-server saves its snapshot
// on SIGTERM) and, with purge, deletes its data.
func (b *Builder) StopRedis(ctx context.Context, app *conductor.App, purge bool) error {
	name := redisWatcher(app.Name)
	spec := filepath.Join(b.Layout.RunDir(app.Name), name+".json")
	if err := b.stopWatcher(ctx, name, spec, false); err != nil {
		return err
	}
	if err := os.Remove(spec); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if purge {
		// The data dir is the app's: its Redis dir is removed without
		// following a link the app may have put there.
		if err := safefs.RemoveAll(b.Layout.ProjectsDir(), provision.RedisDir(app.Name)); err != nil {
			return fmt.Errorf("remove the Redis data of %s: %w", app.Name, err)
		}
	}
	slog.Info("redis stopped", "app", app.Name, "purged", purge)
	return nil
}

// reconcileRedis starts the Redis of an app that has one recorded but no
// watcher installed (a restored backup, a watcher file lost); an installed
// one came back with circusd.
func (b *Builder) reconcileRedis(ctx context.Context, app *conductor.App, installed []string) error {
	r, err := b.appRedis(ctx, app)
	if r == nil || err != nil {
		return err
	}
	if slices.Contains(installed, redisWatcher(app.Name)) {
		return nil
	}
	slog.Info("starting an app's Redis that has no watcher", "app", app.Name)
	return b.StartRedis(ctx, app, r)
}

// waitRedis waits until the server on r's port answers AUTH and PING.
func waitRedis(ctx context.Context, r *conductor.Redis, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := pingRedis(ctx, "127.0.0.1:"+strconv.Itoa(r.Port), r.Password)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer on port %d within %s: %w", r.Port, timeout, err)
		case <-tick.C:
		}
	}
}

// pingRedis sends AUTH and PING in Redis's protocol and checks both answers.
func pingRedis(ctx context.Context, addr, password string) error {
	var dialer net.Dialer
	c, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n", len(password), password); err != nil {
		return err
	}
	rd := bufio.NewReader(c)
	for _, want := range []string{"+OK", "+PONG"} {
		line, err := rd.ReadString('\n')
		if err != nil {
			return err
		}
		if got := strings.TrimRight(line, "\r\n"); got != want {
			return fmt.Errorf("redis answered %q", got) // -LOADING while it reads its data
		}
	}
	return nil
}

// appRedis is the app's Redis, nil when it has none.
func (b *Builder) appRedis(ctx context.Context, app *conductor.App) (*conductor.Redis, error) {
	r, err := b.Store.AppRedis(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		return nil, nil
	}
	return r, err
}
