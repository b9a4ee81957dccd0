package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hasadna/conductor/deploy"
	"github.com/hasadna/conductor/deploy/systemd"
)

// The system-mode test runs in a private mount namespace (a re-run of this
// test binary under `unshare --mount`) where /etc, /var and /usr/local are
// overlays whose writes go to a tmpfs, and /srv and /run are fresh tmpfs:
// `conductor install` writes exactly where it would on a server, and
// nothing it writes reaches the real host. The network is the host's, so
// everything listens on the loopback, on free high ports.
const (
	envConductorBin = "CONDUCTOR_E2E_BIN"       // the binary TestMain built, for the re-run
	envSystemNS     = "CONDUCTOR_E2E_SYSTEM_NS" // set inside the namespace
)

// TestSystem installs Conductor in system mode, deploys the example app by
// git push through the host's nginx and a circusd run as its unit runs it,
// upgrades the running install with a new binary while a client keeps
// requesting the app (no request may fail), then uninstalls it, first
// keeping the data, then entirely, leaving the admin's own files alone.
func TestSystem(t *testing.T) {
	if os.Getenv(envSystemNS) == "" {
		rerunInMountNamespace(t)
		return
	}
	isolateHost(t)
	h := &systemHost{t: t}
	h.in = &Instance{t: t, SSHAddr: freeAddr(t), HTTPAddr: freeAddr(t)}
	dir, err := os.MkdirTemp("", "conductor-e2e-system-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h.in.Dir = dir
	h.in.AdminKey = h.in.NewKey("admin")
	const app = "syshello"

	// The admin's own site, which Conductor must never touch.
	adminAddr := freeAddr(t)
	adminSite := "/etc/nginx/sites-enabled/admin.conf"
	adminConf := fmt.Sprintf("server {\n    listen %s;\n    return 200 \"the admin's own site\\n\";\n}\n", adminAddr)
	// Debian's default site listens on :80 of the real network.
	if err := os.Remove("/etc/nginx/sites-enabled/default"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	writeNewFile(t, adminSite, adminConf)
	h.startNginx()
	checkAdminSite := func(when string) {
		t.Helper()
		if code, body := getHost(adminAddr, "anything", "/"); code != 200 || body != "the admin's own site\n" {
			t.Fatalf("%s: the admin's site answered %d %q", when, code, body)
		}
		if raw, err := os.ReadFile(adminSite); err != nil || string(raw) != adminConf {
			t.Fatalf("%s: the admin's site file changed (%v):\n%s", when, err, raw)
		}
	}
	checkAdminSite("before install")

	// The admin's config: addresses for the test, every path a default.
	// App ports below the kernel's ephemeral range (32768-), where a
	// client connection could be holding one.
	p := 31000 + (os.Getpid()%35)*50
	writeNewFile(t, "/etc/conductor/conductor.toml", fmt.Sprintf(
		"domain = \"localhost\"\nhttp-addr = %q\nlog-level = \"debug\"\nport-range = \"%d-%d\"\n\n[ssh]\naddr = %q\n",
		h.in.HTTPAddr, p, p+49, h.in.SSHAddr))

	// First install.
	out := h.conductor(conductorBin, "install", "--admin-key", h.in.AdminKey+".pub")
	for _, want := range []string{
		"systemd is not running",
		"/opt/conductor/circus/bin/circusd --log-level info /etc/conductor/circus.ini >>/var/log/conductor/circusd.log 2>&1 &",
		"/usr/local/bin/conductor serve --system >>/var/log/conductor/conductor.log 2>&1 &",
		"git remote add conductor ssh://git@" + h.in.SSHAddr + "/<app>",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("install output lacks %q:\n%s", want, out)
		}
	}
	for _, u := range systemd.Units() {
		if raw, err := os.ReadFile(filepath.Join("/etc/systemd/system", u.Name)); err != nil || string(raw) != u.Text {
			t.Errorf("unit %s not installed as shipped (%v)", u.Name, err)
		}
	}
	for _, path := range []string{"/usr/local/bin/conductor", "/var/lib/conductor/conductor.db", "/var/lib/conductor/ssh_host_ed25519_key", "/etc/conductor/circus.d"} {
		if _, err := os.Stat(path); err != nil {
			t.Errorf("install did not make %s: %v", path, err)
		}
	}
	if ini := readFile(t, "/etc/conductor/circus.ini"); !strings.Contains(ini, "include_dir = /etc/conductor/circus.d") {
		t.Errorf("circus.ini does not include Conductor's watchers dir:\n%s", ini)
	}
	// Conductor's own logs are rotated, by a configuration logrotate accepts.
	if rot := readFile(t, "/etc/logrotate.d/conductor"); rot != deploy.Logrotate {
		t.Errorf("/etc/logrotate.d/conductor is not the shipped logrotate.conf:\n%s", rot)
	}
	if out, err := exec.Command("logrotate", "--debug", "/etc/logrotate.d/conductor").CombinedOutput(); err != nil || strings.Contains(string(out), "error:") {
		t.Errorf("logrotate --debug /etc/logrotate.d/conductor: %v\n%s", err, out)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Start the services as their units would, then deploy by git push.
	circusd := h.startUnit(systemd.Circusd)
	h.startConductor()
	work := h.in.WorkTree("hello")
	if r := h.in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("first push failed: %s", r)
	}
	code, body, hdr := h.in.Get(app, "/")
	if code != 200 || !strings.Contains(body, "Hello from Conductor v1") {
		t.Fatalf("GET / through the system nginx = %d %q", code, body)
	}
	release := hdr.Get("X-Conductor-Release")
	if site := readFile(t, "/etc/nginx/sites-enabled/conductor-"+app+".conf"); !strings.Contains(site, "/var/lib/conductor/nginx/routes/"+app+".json") {
		t.Errorf("the app's site in the host's sites-enabled does not read its route:\n%s", site)
	}
	if route := readFile(t, "/var/lib/conductor/nginx/routes/"+app+".json"); !strings.Contains(route, `"release":"`+release+`"`) {
		t.Errorf("the app's route does not name the release nginx serves (%s): %s", release, route)
	}
	if w, _ := filepath.Glob("/etc/conductor/circus.d/" + app + "_web_*.ini"); len(w) != 1 {
		t.Errorf("web watcher files in the circus include dir: %v", w)
	}
	appUser, err := user.Lookup(app)
	if err != nil {
		t.Fatalf("the app's unix user: %v", err)
	}
	oneRelease := userProcs(appUser.Uid)
	if cur, err := os.Readlink("/srv/projects/" + app + "/current"); err != nil || !strings.Contains(cur, "/srv/projects/"+app+"/releases/") {
		t.Errorf("current release link = %q (%v), want one under /srv/projects", cur, err)
	}
	checkAdminSite("after the first deploy")

	// Upgrade in place with a new binary while a client keeps asking.
	newBin := filepath.Join(dir, "conductor-new")
	if b, err := exec.Command("go", "build", "-ldflags", "-X main.version=e2e-upgraded", "-o", newBin, "../cmd/conductor").CombinedOutput(); err != nil {
		t.Fatalf("build the new binary: %v\n%s", err, b)
	}
	load := startLoad(h.in, app, 2, 5*time.Minute, 1e6)
	defer load.finish()
	oldPid := h.serve.Process.Pid
	out = h.conductor(newBin, "install")
	for _, want := range []string{"Upgraded Conductor e2e-upgraded", fmt.Sprintf("kill -TERM %d", oldPid)} {
		if !strings.Contains(out, want) {
			t.Errorf("upgrade output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "circusd --log-level") {
		t.Errorf("the upgrade must not ask to restart circusd:\n%s", out)
	}
	if v := h.conductor("/usr/local/bin/conductor", "version"); strings.TrimSpace(v) != "conductor e2e-upgraded" {
		t.Errorf("installed binary says %q after the upgrade", v)
	}
	h.stopConductor() // what `systemctl restart conductor` does
	h.startConductor()
	if load.ok.Load() == 0 {
		t.Errorf("no request was answered before Conductor was back")
	}
	// The new Conductor deploys; the client is still asking.
	setVersion(t, work, "v2")
	h.in.Commit(work, "v2")
	if r := h.in.Push(work, app, "main"); r.Code != 0 {
		t.Fatalf("push after the upgrade failed: %s", r)
	}
	if _, body, _ := h.in.Get(app, "/"); !strings.Contains(body, "Hello from Conductor v2") {
		t.Errorf("after the upgrade's push GET / = %q", body)
	}
	load.finish()
	// circusd retires the old release's watcher after the push returns,
	// and ignores a SIGTERM that comes before it has finished (circus 0.19
	// runs one command at a time): wait for the old processes to exit.
	waitFor(t, "the old release's processes to exit", func() bool { return userProcs(appUser.Uid) == oneRelease })
	// The upgrade's push reloads nginx: a kept-alive connection it closes
	// under a request is counted apart (see load).
	t.Logf("%d requests answered during the upgrade, %d failed, %d unanswered on a kept-alive connection nginx closed", load.ok.Load(), len(load.fails), len(load.dropped))
	if len(load.fails) > 0 || load.ok.Load() == 0 {
		t.Errorf("%d requests answered, %d failed during the upgrade; first ones:\n%s", load.ok.Load(), len(load.fails),
			strings.Join(load.fails[:min(len(load.fails), 10)], "\n"))
	}
	if !running(circusd.Process.Pid) {
		t.Errorf("circusd did not survive the upgrade")
	}
	checkAdminSite("after the upgrade")

	// Uninstall refuses while the services run (no systemd to stop them).
	if r := runCmd(t, "", nil, nil, conductorBin, "uninstall"); r.Code == 0 || !strings.Contains(r.Stderr, "stop it first") {
		t.Errorf("uninstall with conductor running: %s", r)
	}
	h.stopConductor()
	if r := runCmd(t, "", nil, nil, conductorBin, "uninstall"); r.Code == 0 || !strings.Contains(r.Stderr, "circusd still runs") {
		t.Errorf("uninstall with circusd running: %s", r)
	}
	h.stopUnit(circusd)

	// --keep-data: the program goes, the state and the apps stay.
	h.conductor(conductorBin, "uninstall", "--keep-data")
	for _, gone := range []string{"/usr/local/bin/conductor", "/etc/systemd/system/conductor.service", "/etc/systemd/system/conductor-circusd.service", "/etc/conductor/circus.ini", "/etc/logrotate.d/conductor"} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("uninstall --keep-data left %s (%v)", gone, err)
		}
	}
	for _, kept := range []string{"/var/lib/conductor/conductor.db", "/etc/conductor/conductor.toml", "/etc/nginx/sites-enabled/conductor-" + app + ".conf", "/srv/projects/" + app + "/current"} {
		if _, err := os.Stat(kept); err != nil {
			t.Errorf("uninstall --keep-data removed %s: %v", kept, err)
		}
	}

	// Everything: state, logs, the app, its user; the admin's files stay.
	h.conductor(conductorBin, "uninstall")
	for _, gone := range []string{"/var/lib/conductor", "/var/log/conductor", "/etc/conductor/circus.d",
		"/etc/nginx/sites-enabled/conductor-" + app + ".conf", "/etc/nginx/sites-enabled/conductor-_routes.conf", "/srv/projects/" + app, "/srv/environments/" + app} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("uninstall left %s (%v)", gone, err)
		}
	}
	if _, err := user.Lookup(app); err == nil {
		t.Errorf("uninstall left the app's unix user %s", app)
	}
	// Written by the admin (this test), not by install.
	if _, err := os.Stat("/etc/conductor/conductor.toml"); err != nil {
		t.Errorf("uninstall removed the admin's config file: %v", err)
	}
	checkAdminSite("after uninstall")

	// A worker host: no state of its own, its builder's unit instead of
	// conductor.service.
	out = h.conductor(conductorBin, "install", "--worker", "web2")
	if want := "/usr/local/bin/conductor worker --system --host web2 >>/var/log/conductor/worker-web2.log 2>&1 &"; !strings.Contains(out, want) {
		t.Errorf("worker install output lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, "serve --system") {
		t.Errorf("worker install would start conductor serve:\n%s", out)
	}
	if _, err := os.Stat("/var/lib/conductor/conductor.db"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("worker install made a state of its own (%v)", err)
	}
	h.conductor(conductorBin, "uninstall")
	for _, gone := range []string{"/var/lib/conductor", "/usr/local/bin/conductor", "/etc/systemd/system/conductor-worker@.service"} {
		if _, err := os.Lstat(gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("uninstall of the worker left %s (%v)", gone, err)
		}
	}
}

// rerunInMountNamespace runs this test again in a new mount namespace and
// reports its outcome.
func rerunInMountNamespace(t *testing.T) {
	name := t.Name()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "--",
		os.Args[0], "-test.run", "^"+name+"$", "-test.count=1", "-test.v", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), envSystemNS+"=1", envConductorBin+"="+conductorBin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("%s in a mount namespace:\n%s", name, out.String())
	if err != nil {
		t.Fatalf("%s in a mount namespace: %v", name, err)
	}
	if !strings.Contains(out.String(), "--- PASS: "+name) {
		t.Fatalf("%s did not run in the mount namespace", name)
	}
}

// isolateHost puts overlays over /etc, /var and /usr/local and tmpfs over
// /srv and /run, in this process's own mount namespace.
func isolateHost(t *testing.T) {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make mounts private: %v", err)
	}
	scratch, err := os.MkdirTemp("", "conductor-e2e-root-")
	if err != nil {
		t.Fatal(err)
	}
	var mounted []string
	mount := func(source, target, fstype, data string) {
		t.Helper()
		if err := syscall.Mount(source, target, fstype, 0, data); err != nil {
			t.Fatalf("mount %s on %s (%s): %v", fstype, target, data, err)
		}
		mounted = append(mounted, target)
	}
	t.Cleanup(func() {
		for i := len(mounted) - 1; i >= 0; i-- {
			if err := syscall.Unmount(mounted[i], syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", mounted[i], err)
			}
		}
		os.RemoveAll(scratch)
	})
	mount("tmpfs", scratch, "tmpfs", "mode=0700")
	for _, dir := range []string{"/etc", "/var", "/usr/local"} {
		name := strings.ReplaceAll(strings.Trim(dir, "/"), "/", "-")
		upper, work := filepath.Join(scratch, name, "upper"), filepath.Join(scratch, name, "work")
		for _, d := range []string{upper, work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		mount("overlay", dir, "overlay", "lowerdir="+dir+",upperdir="+upper+",workdir="+work)
	}
	mount("tmpfs", "/srv", "tmpfs", "mode=0755")
	mount("tmpfs", "/run", "tmpfs", "mode=0755")
	// What a fresh server would not have.
	for _, d := range []string{"/etc/conductor", "/var/lib/conductor", "/var/log/conductor", "/usr/local/bin/conductor"} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
}

// systemHost drives the services of a system-mode install.
type systemHost struct {
	t     *testing.T
	in    *Instance // SSH, git and HTTP helpers
	serve *exec.Cmd // conductor.service's process
}

// conductor runs a conductor command and returns its output.
func (h *systemHost) conductor(bin string, args ...string) string {
	h.t.Helper()
	r := runCmd(h.t, "", nil, nil, bin, args...)
	if r.Code != 0 {
		h.t.Fatalf("conductor %s: %s", strings.Join(args, " "), r)
	}
	return r.Stdout + r.Stderr
}

// startUnit starts a shipped unit's ExecStart, its output appended to the
// unit's log file, as systemd would.
func (h *systemHost) startUnit(name string) *exec.Cmd {
	h.t.Helper()
	u, err := systemd.Find(name)
	if err != nil {
		h.t.Fatal(err)
	}
	argv, err := systemd.ExecStart(u.Text)
	if err != nil {
		h.t.Fatal(err)
	}
	logPath := systemd.AppendOutput(u.Text)
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		h.t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, like a service; stopped if the test dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("start %s: %v", name, err)
	}
	h.t.Cleanup(func() {
		h.stopUnit(cmd)
		if h.t.Failed() {
			raw, _ := os.ReadFile(logPath)
			h.t.Logf("%s:\n%s", logPath, raw)
		}
	})
	return cmd
}

// stopUnit stops a unit's process with SIGTERM, as systemd would (once).
func (h *systemHost) stopUnit(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			h.t.Errorf("%s exited with %v after SIGTERM", cmd.Path, err)
		}
	case <-time.After(90 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		h.t.Errorf("%s did not stop within 90s of SIGTERM", cmd.Path)
	}
}

func (h *systemHost) startConductor() {
	h.t.Helper()
	h.serve = h.startUnit(systemd.Conductor)
	waitListening(h.t, h.in.SSHAddr)
}

func (h *systemHost) stopConductor() {
	h.t.Helper()
	h.stopUnit(h.serve)
}

// startNginx starts the host's nginx as Debian's nginx.service does.
func (h *systemHost) startNginx() {
	h.t.Helper()
	raw, err := os.ReadFile("/lib/systemd/system/nginx.service")
	if err != nil {
		h.t.Fatalf("Debian's nginx unit: %v", err)
	}
	argv, err := systemd.ExecStart(string(raw))
	if err != nil {
		h.t.Fatal(err)
	}
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		h.t.Fatalf("start nginx: %v\n%s", err, out)
	}
	h.t.Cleanup(func() {
		pid := 0
		if raw, err := os.ReadFile("/run/nginx.pid"); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(raw)))
		}
		if pid <= 1 {
			h.t.Errorf("nginx's pid file is gone: cannot stop it")
			return
		}
		_ = syscall.Kill(pid, syscall.SIGQUIT)
		for i := 0; i < 300 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// userProcs counts the processes running as uid in this mount namespace
// (the host may have a user with the same uid running its own processes).
func userProcs(uid string) int {
	n := 0
	ns, _ := os.Readlink("/proc/self/ns/mnt")
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if theirs, _ := os.Readlink(filepath.Join("/proc", e.Name(), "ns", "mnt")); theirs != ns {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] == uid {
				n++
			}
		}
	}
	return n
}

// running tells whether pid is a live process (not a zombie).
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] != 'Z'
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	waitFor(t, "a listener on "+addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

func getHost(addr, host, path string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// writeNewFile writes a file, making its directory.
func writeNewFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
