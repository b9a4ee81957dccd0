package doctor

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/deploy"
	"github.com/hasadna/conductor/internal/dbtest"
	"github.com/hasadna/conductor/sqlite"
)

// The checks run against real things: the nginx, circus virtualenv,
// python3 and git that `make setup` installs, real listening sockets, real
// SQLite files, a real circusd and real database servers.
const (
	nginxBin  = "/usr/sbin/nginx"
	circusBin = "/opt/conductor/circus/bin"
	python    = "/usr/bin/python3"
)

func want(t *testing.T, r Result, status Status, detail ...string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: status %s, want %s: %s (fix: %s)", r.Check, r.Status, status, r.Detail, r.Fix)
	}
	line := r.Detail + " fix: " + r.Fix
	for _, d := range detail {
		if !strings.Contains(line, d) {
			t.Errorf("%s: %q lacks %q", r.Check, line, d)
		}
	}
	if status != OK && r.Fix == "" {
		t.Errorf("%s: a %s result must say how to fix it: %q", r.Check, status, r.Detail)
	}
}

func TestNginxBinary(t *testing.T) {
	ctx := context.Background()
	want(t, NginxBinary(ctx, nginxBin), OK, "nginx 1.", nginxBin)
	missing := filepath.Join(t.TempDir(), "nginx")
	want(t, NginxBinary(ctx, missing), Fail, missing, "no such file", "apt-get install nginx-light", "--nginx-bin")
	want(t, NginxBinary(ctx, t.TempDir()), Fail, "not an executable file")
}

func TestNginxJSModule(t *testing.T) {
	want(t, NginxJSModule("/usr/lib/nginx/modules/ngx_http_js_module.so"), OK, "ngx_http_js_module.so")
	missing := filepath.Join(t.TempDir(), "ngx_http_js_module.so")
	want(t, NginxJSModule(missing), Fail, missing, "apt-get install libnginx-mod-http-js")
}

func TestNginxConfig(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	conf := filepath.Join(dir, "nginx.conf")
	want(t, NginxConfig(ctx, nginxBin, dir, conf), OK, "not written yet")

	good := fmt.Sprintf("pid %s/nginx.pid;\nerror_log %s/error.log;\nevents {}\nhttp { access_log off; server { listen 127.0.0.1:1; } }\n", dir, dir)
	if err := os.WriteFile(conf, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	want(t, NginxConfig(ctx, nginxBin, dir, conf), OK, "nginx -t accepts "+conf)

	bad := strings.Replace(good, "events {}", "events {}\nno_such_directive on;", 1)
	if err := os.WriteFile(conf, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	r := NginxConfig(ctx, nginxBin, dir, conf)
	want(t, r, Fail, `unknown directive "no_such_directive"`, conf)
	if strings.Contains(r.Detail, "\n") {
		t.Errorf("detail spans lines: %q", r.Detail)
	}
	want(t, NginxConfig(ctx, filepath.Join(dir, "nope"), dir, conf), Fail, "without nginx")
}

func TestCircusd(t *testing.T) {
	ctx := context.Background()
	pins := deploy.CircusPins()
	if pins["circus"] == "" || pins["tornado"] == "" {
		t.Fatalf("pins from circus-requirements.txt: %v", pins)
	}
	want(t, Circusd(ctx, circusBin, pins), OK, "circusd "+pins["circus"], fmt.Sprintf("%d pinned packages", len(pins)))

	other := map[string]string{"circus": pins["circus"], "tornado": "6.4", "not-installed": "1.0"}
	want(t, Circusd(ctx, circusBin, other), Fail, "tornado "+pins["tornado"]+" (pinned 6.4)", "not-installed missing (pinned 1.0)", "circus-requirements.txt")

	missing := filepath.Join(t.TempDir(), "circus", "bin")
	want(t, Circusd(ctx, missing, pins), Fail, filepath.Join(missing, "circusd"), "recreate the virtualenv")
}

func TestCircusSocket(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	want(t, CircusSocket(ctx, dir, Config{}.circusHints), OK, "not running")

	// A live process in the pid file that is no circusd: nothing answers.
	if err := os.WriteFile(filepath.Join(dir, "circusd.pid"), []byte(fmt.Sprint(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	want(t, CircusSocket(ctx, dir, Config{}.circusHints), Fail, fmt.Sprintf("(pid %d) does not answer", os.Getpid()), "restart conductor serve")

	// A real circusd answers.
	live := t.TempDir()
	cctx, stop := context.WithCancel(ctx)
	c := &circus.Circus{Bin: circusBin, Dir: live, Owner: currentUser(t)}
	if err := c.Start(cctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(); c.Wait(); c.Shutdown() }) // circusd outlives supervision
	want(t, CircusSocket(ctx, live, Config{}.circusHints), OK, "answers, 0 watchers")
}

func currentUser(t *testing.T) string {
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

func TestPython(t *testing.T) {
	ctx := context.Background()
	want(t, Python(ctx, python), OK, "Python 3.", "venv and ensurepip")
	want(t, Python(ctx, "/nonexistent/python3"), Fail, "apt-get install python3 python3-venv")
}

func TestGit(t *testing.T) {
	want(t, Git(context.Background()), OK, "git version 2.")
}

func TestClientTool(t *testing.T) {
	ctx := context.Background()
	want(t, ClientTool(ctx, "pg_dump", "postgresql-client"), OK, "pg_dump (PostgreSQL)")
	want(t, ClientTool(ctx, "no-such-dump-tool", "some-client"), Warn, "not on PATH", "apt-get install some-client")
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	self := fmt.Sprintf("(pid %d)", os.Getpid())
	want(t, Port("ssh port", addr, "--ssh-addr", nil), Fail, addr+" is in use by", self, "give --ssh-addr another port")
	// The same socket held by a process known to be Conductor's.
	want(t, Port("http port", addr, "--http-addr", map[int]string{os.Getpid(): "Conductor's nginx"}), OK, "held by Conductor's nginx "+self)

	l.Close()
	want(t, Port("ssh port", addr, "--ssh-addr", nil), OK, addr+" is free")
	want(t, Port("ssh port", "no-port", "--ssh-addr", nil), Fail, "give --ssh-addr as HOST:PORT")
}

func TestDisk(t *testing.T) {
	want(t, Disk("disk data", t.TempDir()), OK, "free of")
	// A data dir not made yet is on its parent's filesystem.
	want(t, Disk("disk data", filepath.Join(t.TempDir(), "not", "yet")), OK, "free of")

	// A small filesystem: 16 MiB is below 1 GiB.
	if os.Geteuid() != 0 {
		t.Fatal("mounting a small tmpfs needs root (run the tests as root, as make test does)")
	}
	small := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(small, 0) })
	want(t, Disk("disk srv", small), Warn, "only 16 MiB free", "free space")
	if SameFilesystem(small, t.TempDir()) || !SameFilesystem(small, filepath.Join(small, "x")) {
		t.Error("SameFilesystem does not tell the tmpfs apart")
	}
}

func TestStateDB(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	want(t, StateDB(ctx, dir, "conductor init"), Fail, "does not exist", "conductor init")

	db, err := sqlite.Open(ctx, filepath.Join(dir, "conductor.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	want(t, StateDB(ctx, dir, "conductor init"), OK, "all ", "migrations applied")

	// A migration this binary does not know (a newer conductor's), and
	// one it knows but the database lacks.
	raw, err := sql.Open("sqlite3", filepath.Join(dir, "conductor.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	want(t, StateDB(ctx, dir, "conductor init"), Fail, "[9999]", "this one is older")
	if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version IN (9999, 1)`); err != nil {
		t.Fatal(err)
	}
	want(t, StateDB(ctx, dir, "conductor init"), Warn, "lacks migrations 0001_", "restart conductor serve")

	garbage := t.TempDir()
	if err := os.WriteFile(filepath.Join(garbage, "conductor.db"), bytes.Repeat([]byte("not a database "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	want(t, StateDB(ctx, garbage, "conductor init"), Fail, "not a database", "conductor restore")
}

func TestDataDir(t *testing.T) {
	parent := t.TempDir()
	data := filepath.Join(parent, "data")
	if err := os.Mkdir(data, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(parent, 0o700); err != nil {
		t.Fatal(err)
	}
	want(t, DataDir(data, "conductor init"), Fail, parent+" is not searchable by others", "chmod o+x "+parent)

	// t.TempDir's own parent is private too.
	for d := parent; d != "/tmp"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	want(t, DataDir(data, "conductor init"), OK, "traversable by app users")

	db := filepath.Join(data, "conductor.db")
	if err := os.WriteFile(db, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want(t, DataDir(data, "conductor init"), Fail, "can read "+db, "chmod 600 "+db)
	// Opening it the way conductor does makes it private.
	store, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	want(t, DataDir(data, "conductor init"), OK, "its secrets are private")

	if err := os.Chmod(data, 0o755); err != nil {
		t.Fatal(err)
	}
	want(t, DataDir(data, "conductor init"), Warn, "can be listed by every user", "chmod 711 "+data)
	want(t, DataDir(filepath.Join(parent, "missing"), "conductor init"), Fail, "no such file", "conductor init")
}

func TestPostgres(t *testing.T) {
	ctx := context.Background()
	pg := dbtest.Postgres(t)
	want(t, Postgres(ctx, pg.AdminDSN), OK, fmt.Sprintf("logs in at 127.0.0.1:%d", pg.Port))
	wrong := strings.Replace(pg.AdminDSN, "@", "x@", 1) // another password
	r := Postgres(ctx, wrong)
	want(t, r, Fail, "does not answer", "password")
	if strings.Contains(r.Detail+r.Fix, strings.TrimPrefix(strings.Split(wrong, "@")[0], "postgres://")) {
		t.Errorf("the result shows the password: %q", r.Detail)
	}
}

func TestMariaDBUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	want(t, MariaDB(context.Background(), "admin:secret@tcp("+addr+")/"), Fail, "does not answer", "start MariaDB")
}

// TestRun checks the whole report on a fresh data dir: every line is one
// line with a status, and --json carries the same results.
func TestRun(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(data, "conductor.db"))
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	c := Config{
		Data: data, Srv: filepath.Join(data, "srv"), NginxBin: nginxBin,
		NginxPrefix: filepath.Join(data, "nginx"), NginxConf: filepath.Join(data, "nginx", "nginx.conf"),
		NginxPidFile: filepath.Join(data, "nginx", "nginx.pid"), NginxOwner: "Conductor's nginx",
		CircusBin: circusBin, CircusDir: filepath.Join(data, "circus"), CircusPins: deploy.CircusPins(),
		Python: python, SSHAddr: held.Addr().String(), HTTPAddr: "127.0.0.1:0",
	}
	rs := Run(ctx, c)
	if !Failed(rs) {
		t.Error("a held SSH port must fail the run")
	}
	var text bytes.Buffer
	if err := WriteText(&text, rs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(text.String(), "\n"), "\n")
	if len(lines) != len(rs) {
		t.Fatalf("%d lines for %d results:\n%s", len(lines), len(rs), text.String())
	}
	checks := map[string]Status{}
	for i, line := range lines {
		if !strings.HasPrefix(line, string(rs[i].Status)+" ") || !strings.Contains(line, rs[i].Check) {
			t.Errorf("line %q for %+v", line, rs[i])
		}
		checks[rs[i].Check] = rs[i].Status
	}
	for name, status := range map[string]Status{"nginx": OK, "circusd": OK, "python": OK, "git": OK, "state db": OK, "ssh port": Fail, "http port": OK} {
		if checks[name] != status {
			t.Errorf("check %q: %s, want %s\n%s", name, checks[name], status, text.String())
		}
	}
	var back []Result
	var js bytes.Buffer
	if err := WriteJSON(&js, rs); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back) != len(rs) || back[0] != rs[0] {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
}
