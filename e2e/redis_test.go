package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRedis: redis:create runs a private Redis for an app (the app's
// user, loopback, a password, its data in the app's data dir) and gives
// its processes REDIS_URL; a Celery worker and beat from the Procfile
// use it as their broker: a task a web request enqueues is run by the
// worker, and beat's periodic task runs. The Redis survives deploys and
// conductor restarts with its data; redis:destroy and apps:destroy stop
// it and remove its data.
func TestRedis(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	const app = "celery"
	if r := in.SSH(in.AdminKey, "apps:create "+app); r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}

	// Bad input changes nothing.
	for cmd, want := range map[string]string{
		"redis:create " + app + " --maxmemory lots":      "invalid --maxmemory",
		"redis:create " + app + " --maxmemory 100gb":     "invalid --maxmemory",
		"redis:create " + app + " --policy evict-all":    "invalid --policy",
		"redis:create nosuch":                            "not found",
		"redis " + app:                                   "has no Redis",
		"redis:destroy " + app + " --confirm":            "has no Redis",
		"redis:create " + app + " --maxmemory '64mb\nx'": "invalid --maxmemory",
	} {
		if r := in.SSH(in.AdminKey, cmd); r.Code == 0 || !strings.Contains(r.Stderr, want) {
			t.Errorf("%s: %s, want an error with %q", cmd, r, want)
		}
	}
	// A developer granted the app sees its Redis but may not create one.
	dev := in.NewKey("dev")
	if r := in.SSHIn(in.AdminKey, "keys:add dev", readFile(t, dev+".pub")); r.Code != 0 {
		t.Fatalf("keys:add: %s", r)
	}
	if r := in.SSH(in.AdminKey, "access:grant "+app+" dev"); r.Code != 0 {
		t.Fatalf("access:grant: %s", r)
	}
	if r := in.SSH(dev, "redis:create "+app); r.Code == 0 {
		t.Errorf("a developer created a Redis: %s", r)
	}

	start := time.Now()
	r := in.SSH(in.AdminKey, "redis:create "+app+" --maxmemory 32mb")
	if r.Code != 0 || !strings.Contains(r.Stdout, "Created Redis for "+app) {
		t.Fatalf("redis:create: %s", r)
	}
	t.Logf("redis:create took %s", time.Since(start).Round(time.Millisecond))
	var info struct {
		Port      int    `json:"port"`
		MaxMemory string `json:"maxmemory"`
		Policy    string `json:"policy"`
		State     string `json:"state"`
		Running   int    `json:"running"`
	}
	r = in.SSH(dev, "redis "+app+" --json")
	if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil || info.State != "active" || info.Running != 1 || info.MaxMemory != "32mb" || info.Policy != "noeviction" {
		t.Fatalf("redis --json: %s (%+v, %v)", r, info, err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(info.Port)
	if got := redisSay(t, addr, "PING"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("PING without the password: %q, want NOAUTH", got)
	}

	// Its files are the app's; the server runs as the app's user.
	dir := filepath.Join(in.Data, "srv", "projects", app, "data", "redis")
	conf, err := os.Stat(filepath.Join(dir, "redis.conf"))
	if err != nil || conf.Mode().Perm() != 0o600 || fileOwner(conf) != app {
		t.Fatalf("redis.conf: %v %v", conf, err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 || fileOwner(st) != app {
		t.Fatalf("redis dir: %v %v", st, err)
	}
	if owner := redisProcessOwner(t, dir); owner != app {
		t.Errorf("redis-server runs as %q, want %q", owner, app)
	}

	// The Celery example: web enqueues, the worker runs, beat ticks.
	work := in.WorkTree("celery-redis")
	r = in.pushOK(work, app)
	if !strings.Contains(r.Stderr, "worker: celery -A proj worker") || !strings.Contains(r.Stderr, "beat: celery -A proj beat") {
		t.Errorf("the push does not start worker and beat: %s", r.Stderr)
	}
	password := redisPassword(t, in, app, info.Port)
	if got := redisSay(t, addr, "AUTH", password, "CONFIG", "GET", "maxmemory"); !strings.Contains(got, strconv.Itoa(32<<20)) {
		t.Errorf("maxmemory: %q", got)
	}
	if got := redisSay(t, addr, "AUTH", password, "CONFIG", "GET", "bind"); !strings.Contains(got, "127.0.0.1") || strings.Contains(got, "0.0.0.0") {
		t.Errorf("bind: %q", got)
	}
	if code, body, _ := in.Get(app, "/enqueue/first/"); code != 200 || !strings.Contains(body, `"task"`) {
		t.Fatalf("GET /enqueue/first/ = %d %s", code, body)
	}
	enqueued := time.Now()
	waitEvents(t, in, app, "the worker to run the task the web request enqueued", func(ev []string, _ int) bool { return slices.Contains(ev, "web:first") })
	t.Logf("task run %s after its request", time.Since(enqueued).Round(time.Millisecond))
	waitEvents(t, in, app, "beat's periodic task to run twice", func(_ []string, beats int) bool { return beats >= 2 })

	// A code-only redeploy: worker and beat boot beside collectstatic with
	// the web (builder/staged.go; the app has no static files, so there is
	// nothing to copy), the previous release's stop in retire, after the
	// push, and the new worker runs the next task.
	previous, err := os.Readlink(filepath.Join(in.Data, "srv", "projects", app, "current"))
	if err != nil {
		t.Fatal(err)
	}
	if len(processesIn(t, previous)) == 0 {
		t.Fatalf("no process runs in the serving release's directory %s", previous)
	}
	tasks := filepath.Join(work, "jobs", "tasks.py")
	writeFile(t, tasks, strings.Replace(readFile(t, tasks), "Event.objects.create(kind=kind)", `Event.objects.create(kind=kind + "@2")`, 1))
	in.Commit(work, "tasks record their version")
	r = in.pushOK(work, app)
	inOrder(t, r.Stderr, "-----> Collecting static files", "processes boot beside collectstatic", "worker: celery -A proj worker",
		"No migrations to apply", "-----> Checking the new release", "-----> Switching traffic")
	if strings.Contains(r.Stderr, "Static files differ") {
		t.Errorf("collectstatic's output changed with no static change:\n%s", r.Stderr)
	}
	in.waitRetired(t, app)
	waitFor(t, "the previous release's worker and beat to stop", func() bool { return len(processesIn(t, previous)) == 0 })
	if code, _, _ := in.Get(app, "/enqueue/third/"); code != 200 {
		t.Fatalf("GET /enqueue/third/ after the redeploy = %d", code)
	}
	waitEvents(t, in, app, "the new worker to run a task", func(ev []string, _ int) bool { return slices.Contains(ev, "web:third@2") })

	// The password is in no listing and no output.
	for _, cmd := range []string{"config " + app, "config " + app + " --json", "apps:info " + app, "redis " + app, "redis " + app + " --json", "ps " + app} {
		if r := in.SSH(in.AdminKey, cmd); strings.Contains(r.Stdout+r.Stderr, password) {
			t.Errorf("%s shows the Redis password: %s", cmd, r)
		}
	}
	if r := in.SSH(dev, "apps:info "+app); !strings.Contains(r.Stdout, "Redis:       "+addr+" (maxmemory 32mb, noeviction)") || !strings.Contains(r.Stdout, "redis-server=1 (active)") {
		t.Errorf("apps:info does not show the Redis: %s", r)
	}
	if strings.Contains(in.logs.String(), password) {
		t.Error("conductor's log shows the Redis password")
	}

	// A restart (a new release) keeps the Redis running with its data.
	if got := redisSay(t, addr, "AUTH", password, "SET", "kept", "yes"); !strings.HasSuffix(got, "+OK") {
		t.Fatalf("SET: %q", got)
	}
	pid := redisPid(t, dir)
	if r := in.SSH(in.AdminKey, "ps:restart "+app); r.Code != 0 {
		t.Fatalf("ps:restart: %s", r)
	}
	if got := redisPid(t, dir); got != pid {
		t.Errorf("the deploy restarted redis-server (pid %d, was %d)", got, pid)
	}
	// Conductor, circusd and the apps stopped and started again: the
	// Redis comes back with its data (append-only file).
	in.Stop()
	in.StopAll()
	if err := redisDial(addr); err == nil {
		t.Fatal("redis still answers after stop-all")
	}
	in.Start()
	waitFor(t, "the Redis to answer after a restart", func() bool { return redisDial(addr) == nil })
	waitFor(t, "the Redis to load its data", func() bool {
		return strings.HasSuffix(redisSay(t, addr, "AUTH", password, "GET", "kept"), "yes")
	})
	waitFor(t, "the web process to answer after the restart", func() bool { code, _, _ := in.Get(app, "/"); return code == 200 })
	if code, _, _ := in.Get(app, "/enqueue/second/"); code != 200 {
		t.Fatalf("GET /enqueue/second/ after the restart = %d", code)
	}
	waitEvents(t, in, app, "the worker to run a task after the restart", func(ev []string, _ int) bool { return slices.Contains(ev, "web:second@2") })

	// redis:destroy stops it, removes its data, and the app restarts
	// without REDIS_URL.
	if r := in.SSH(in.AdminKey, "redis:destroy "+app); r.Code == 0 || !strings.Contains(r.Stderr, "--confirm") {
		t.Errorf("redis:destroy without --confirm: %s", r)
	}
	if redisDial(addr) != nil {
		t.Fatal("redis:destroy without --confirm stopped the Redis")
	}
	if r := in.SSH(in.AdminKey, "redis:destroy "+app+" --confirm"); r.Code != 0 {
		t.Fatalf("redis:destroy: %s", r)
	}
	if redisDial(addr) == nil {
		t.Error("the Redis answers after redis:destroy")
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("the Redis data is still there: %v", err)
	}
	if r := in.SSH(in.AdminKey, "run "+app+" -- printenv REDIS_URL"); r.Code == 0 {
		t.Errorf("the app still has REDIS_URL: %s", r)
	}
	if r := in.SSH(in.AdminKey, "redis "+app); r.Code == 0 {
		t.Errorf("redis after redis:destroy: %s", r)
	}

	// Created on a deployed app, it restarts the app with REDIS_URL;
	// apps:destroy takes it with the app.
	if r := in.SSH(in.AdminKey, "redis:create "+app); r.Code != 0 || !strings.Contains(r.Stdout, "Restarting "+app) {
		t.Fatalf("redis:create again: %s", r)
	}
	r = in.SSH(in.AdminKey, "redis "+app+" --json")
	if err := json.Unmarshal([]byte(r.Stdout), &info); err != nil {
		t.Fatalf("redis --json: %s", r)
	}
	addr = "127.0.0.1:" + strconv.Itoa(info.Port)
	password = redisPassword(t, in, app, info.Port)
	if got := redisSay(t, addr, "AUTH", password, "GET", "kept"); !strings.HasSuffix(got, "$-1") {
		t.Errorf("the new Redis has the destroyed one's data: %q", got)
	}
	if r := in.SSH(in.AdminKey, "apps:destroy "+app+" --confirm "+app); r.Code != 0 {
		t.Fatalf("apps:destroy: %s", r)
	}
	if redisDial(addr) == nil {
		t.Error("the Redis answers after apps:destroy")
	}
}

// waitEvents polls the example's /events/ until cond holds.
func waitEvents(t *testing.T, in *Instance, app, what string, cond func(events []string, beats int) bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		code, body, _ := in.Get(app, "/events/")
		var ev struct {
			Events []string `json:"events"`
			Beat   int      `json:"beat"`
		}
		return code == 200 && json.Unmarshal([]byte(body), &ev) == nil && cond(ev.Events, ev.Beat)
	})
}

// redisPassword reads the password from the app's REDIS_URL, as its
// processes get it.
func redisPassword(t *testing.T, in *Instance, app string, port int) string {
	t.Helper()
	r := in.SSH(in.AdminKey, "run "+app+" -- printenv REDIS_URL")
	u, err := url.Parse(strings.TrimSpace(r.Stdout))
	if r.Code != 0 || err != nil || u.Scheme != "redis" || u.Host != "127.0.0.1:"+strconv.Itoa(port) || u.Path != "/0" {
		t.Fatalf("REDIS_URL: %s (%v)", r, err)
	}
	p, ok := u.User.Password()
	if !ok || len(p) != 32 {
		t.Fatalf("REDIS_URL has no 32-character password: %s", r.Stdout)
	}
	return p
}

func redisDial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// redisSay sends one command line in Redis's protocol (AUTH then a
// command when it starts with AUTH) and returns the replies' lines.
func redisSay(t *testing.T, addr string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	cmds := [][]string{args}
	if args[0] == "AUTH" {
		cmds = [][]string{args[:2], args[2:]}
	}
	for _, cmd := range cmds {
		fmt.Fprintf(c, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(c, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	_ = c.(*net.TCPConn).CloseWrite()
	var lines []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines, "\n")
}

// redisPid finds the redis-server started with the conf in dir.
func redisPid(t *testing.T, dir string) int {
	t.Helper()
	want := filepath.Join(dir, "redis.conf")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if filepath.Base(exe) == "redis-check-rdb" || filepath.Base(exe) == "redis-server" {
			// redis-server rewrites its title: "redis-server 127.0.0.1:port"
			if cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); cwd == dir || strings.Contains(string(cmdline), want) {
				return pid
			}
		}
	}
	t.Fatalf("no redis-server runs in %s", dir)
	return 0
}

// redisProcessOwner is the user name of the app's redis-server.
func redisProcessOwner(t *testing.T, dir string) string {
	t.Helper()
	fi, err := os.Stat(filepath.Join("/proc", strconv.Itoa(redisPid(t, dir))))
	if err != nil {
		t.Fatal(err)
	}
	return fileOwner(fi)
}

// TestRedisBackupRestore: a backup holds the app's Redis data; restored
// into a new data dir, Conductor starts the Redis again at start-up (no
// deploy needed) with its keys.
func TestRedisBackupRestore(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	const app = "redis-bk"
	if r := in.SSH(in.AdminKey, "apps:create "+app); r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}
	if r := in.SSH(in.AdminKey, "redis:create "+app+" --no-restart"); r.Code != 0 || !strings.Contains(r.Stdout, "Not restarted") {
		t.Fatalf("redis:create: %s", r)
	}
	if r := in.SSH(in.AdminKey, "redis:destroy "+app); r.Code == 0 {
		t.Fatalf("redis:destroy without --confirm: %s", r)
	}
	// Both are in the audit trail, with their outcome.
	var trail []auditRow
	if err := json.Unmarshal([]byte(in.SSH(in.AdminKey, "audit --app "+app+" --json").Stdout), &trail); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, e := range trail {
		ops = append(ops, e.Op+" "+e.Outcome)
	}
	if !slices.Contains(ops, "redis:create ok") || !slices.Contains(ops, "redis:destroy failed") {
		t.Errorf("audit trail of %s: %v", app, ops)
	}
	conf := filepath.Join(in.Data, "srv", "projects", app, "data", "redis", "redis.conf")
	port, password := redisConfValues(t, conf)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if got := redisSay(t, addr, "AUTH", password, "SET", "backed-up", "42"); !strings.HasSuffix(got, "+OK") {
		t.Fatalf("SET: %q", got)
	}
	archive := filepath.Join(in.Dir, "backup.tar.gz")
	if r := runCmd(t, "", nil, nil, conductorBin, "backup", "--data", in.Data, "--out", archive); r.Code != 0 {
		t.Fatalf("backup: %s", r)
	}
	if r := runCmd(t, "", nil, nil, "tar", "tzf", archive); !strings.Contains(r.Stdout, "projects/"+app+"/data/redis/appendonlydir/") {
		t.Fatalf("the backup lacks the Redis data: %s", r)
	}

	in.StopAll()
	if err := os.RemoveAll(in.Data); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "userdel "+app, func() bool { return runCmd(t, "", nil, nil, "userdel", app).Code == 0 })
	dir, err := os.MkdirTemp("", "conductor-e2e-restored-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	restored := &Instance{t: t, Dir: dir, Data: filepath.Join(dir, "data"), SSHAddr: freeAddr(t), HTTPAddr: freeAddr(t),
		Ports: in.Ports, AdminKey: in.AdminKey}
	t.Cleanup(func() {
		restored.Stop()
		if t.Failed() && restored.logs != nil {
			t.Logf("restored conductor serve output:\n%s", restored.logs.String())
		}
		tearDown(t, dir)
	})
	if r := runCmd(t, "", nil, nil, conductorBin, "restore", "--data", restored.Data, "--from", archive); r.Code != 0 {
		t.Fatalf("restore: %s", r)
	}
	restored.Start()
	waitFor(t, "the restored Redis to answer", func() bool {
		return strings.HasSuffix(redisSay(t, addr, "AUTH", password, "GET", "backed-up"), "42")
	})
	if r := restored.SSH(in.AdminKey, "redis "+app+" --json"); r.Code != 0 || !strings.Contains(r.Stdout, `"state": "active"`) {
		t.Errorf("redis after restore: %s", r)
	}
}

// redisConfValues reads the port and password of an app's redis.conf.
func redisConfValues(t *testing.T, conf string) (int, string) {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	var port int
	var password string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "port "); ok {
			port, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(line, "requirepass "); ok {
			password = v
		}
	}
	if port == 0 || password == "" {
		t.Fatalf("redis.conf without port or password:\n%s", b)
	}
	return port, password
}

// processesIn lists the processes whose working directory is dir.
func processesIn(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd")); err == nil && cwd == dir {
			pids = append(pids, pid)
		}
	}
	return pids
}
