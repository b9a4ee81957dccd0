// Package e2e drives the real conductor binary end to end: real SSH, real
// git, the embedded NATS server, SQLite, circusd, nginx and real Django apps
// from examples/. It needs what `make setup` installs and must run as root.
package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/loopport"
)

// conductorBin is built once by TestMain.
var conductorBin string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: must run as root (app users are unix users); use make test")
		os.Exit(1)
	}
	for _, need := range []string{"/usr/sbin/nginx", "/opt/conductor/circus/bin/circusd", "/usr/bin/python3", "git", "ssh"} {
		if _, err := exec.LookPath(need); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s is missing: run make setup\n", need)
			os.Exit(1)
		}
	}
	// A test re-run inside a namespace (system_test.go) reuses the binary.
	if bin := os.Getenv(envConductorBin); bin != "" {
		conductorBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "conductor-e2e-bin-")
	if err != nil {
		panic(err)
	}
	conductorBin = filepath.Join(dir, "conductor")
	if out, err := exec.Command("go", "build", "-o", conductorBin, "../cmd/conductor").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: build conductor: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Instance is a running `conductor serve` in its own temp dir.
type Instance struct {
	t        *testing.T
	Dir      string // temp dir: data/, keys, work trees
	Data     string
	SSHAddr  string
	HTTPAddr string
	AdminKey string // private key file of the admin
	Ports    string // app port range
	Bin      string // the conductor binary Start runs ("": conductorBin), to test an upgrade

	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan error // gets cmd's Wait result
	logs      *lockedBuffer
	serveArgs []string

	dashboardAddr string // --dashboard-listen, the same at every start
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// App ports stay below the kernel's ephemeral range (32768-60999): a
// client connection's source port there would make an app's bind fail.
var (
	portMu   sync.Mutex
	portBase = 20000 + (os.Getpid()%50)*200
)

// nextPorts reserves the next 20 app ports for an instance.
func nextPorts() int {
	portMu.Lock()
	defer portMu.Unlock()
	portBase += 20
	return portBase
}

// appOwners holds which test uses each app name. Tests run in parallel
// (t.Parallel), and an app's name is a unix user of the whole machine:
// two tests using one name at once would take each other's user. So each
// name belongs to one test, whatever the timing, and a second test using
// it fails at once, saying so.
var appOwners sync.Map // app name → top-level test name

func claimApp(t *testing.T, app string) {
	t.Helper()
	app = strings.TrimSuffix(strings.TrimPrefix(app, "/"), ".git")
	if conductor.ValidateAppName(app) != nil {
		return // a name the tests expect refused: no user is made
	}
	test, _, _ := strings.Cut(t.Name(), "/")
	if owner, loaded := appOwners.LoadOrStore(app, test); loaded && owner != test {
		t.Fatalf("app name %q is used by %s too: tests run in parallel, and app names are unix users: give this test's app another name", app, owner)
	}
}

// StartInstance runs init and serve (with serveArgs added); the instance is
// stopped and its dir removed when the test ends.
func StartInstance(t *testing.T, serveArgs ...string) *Instance {
	t.Helper()
	dir, err := os.MkdirTemp("", "conductor-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	// App users must traverse to their releases under data/.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	ports := nextPorts()
	in := &Instance{
		t: t, Dir: dir, Data: filepath.Join(dir, "data"),
		SSHAddr: freeAddr(t), HTTPAddr: freeAddr(t),
		Ports:     fmt.Sprintf("%d-%d", ports, ports+19),
		serveArgs: serveArgs,
	}
	in.AdminKey = in.NewKey("admin")
	in.run("init", "--data", in.Data, "--admin-key", in.AdminKey+".pub")
	in.Start()
	t.Cleanup(func() {
		in.Stop()
		if t.Failed() {
			t.Logf("conductor serve output:\n%s", in.logs.String())
			// circusd's own view (a stop that never answered, a process it
			// killed): its last lines.
			if b, err := os.ReadFile(filepath.Join(in.Data, "circus", "circusd.log")); err == nil {
				lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
				t.Logf("circusd.log, last %d lines:\n%s", min(len(lines), 200), strings.Join(lines[max(len(lines)-200, 0):], "\n"))
			}
		}
		tearDown(t, dir)
	})
	return in
}

// tearDown ends an instance's dir: stop-all on its data dirs, its apps'
// unix users, the dir.
func tearDown(t *testing.T, dir string) {
	t.Helper()
	stopAll(t, dir)
	removeAppUsers(dir)
	os.RemoveAll(dir)
}

// removeAppUsers deletes the unix users Conductor made for this instance's
// apps (their home is under dir), once stop-all has stopped their
// processes: a developer's machine keeps no user per test app and run.
func removeAppUsers(dir string) {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 6 && strings.HasPrefix(f[5], dir+"/") {
			_ = exec.Command("userdel", f[0]).Run()
		}
	}
}

// stopAll runs `conductor stop-all` on every data dir under dir (serve's
// and workers'): circusd, nginx and the apps outlive serve and worker.
func stopAll(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		data := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(data, "circus")); err != nil {
			continue
		}
		if out, err := exec.Command(conductorBin, "stop-all", "--data", data).CombinedOutput(); err != nil {
			t.Errorf("conductor stop-all --data %s: %v\n%s", data, err, out)
		}
	}
}

// Servers' addresses (SSH, HTTP, NATS, pebble…) come from 10000-19999:
// below the apps' ranges and the kernel's ephemeral range. A port the
// kernel handed out for ":0" is free only until someone binds it, and any
// outgoing connection of a test running in parallel may get it as its
// source port (CI once saw "bind: address already in use" for serve's SSH
// port that way, while another process answered on it).
var addrs = &loopport.Range{From: 10000, To: 19999}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := addrs.Addr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func (in *Instance) run(args ...string) string {
	in.t.Helper()
	out, err := exec.Command(conductorBin, args...).CombinedOutput()
	if err != nil {
		in.t.Fatalf("conductor %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Start starts `conductor serve` and waits until SSH and HTTP answer.
// serveCommandArgs is the command line of the instance's conductor serve
// (after the binary); in.mu is held.
func (in *Instance) serveCommandArgs() []string {
	args := []string{"serve", "--data", in.Data, "--ssh-addr", in.SSHAddr,
		"--http-addr", in.HTTPAddr, "--port-range", in.Ports, "--log-level", "debug"}
	if !slices.ContainsFunc(in.serveArgs, func(a string) bool { return strings.HasPrefix(a, "--dashboard-listen") }) {
		// A port of the test's own, outside the kernel's ephemeral range:
		// with port 0, a restart keeps the port it had only while no
		// client connection of a parallel test took it meanwhile, and the
		// dashboard's site would change under the test.
		if in.dashboardAddr == "" {
			in.dashboardAddr = freeAddr(in.t)
		}
		args = append(args, "--dashboard-listen", in.dashboardAddr)
	}
	return append(args, in.serveArgs...)
}

func (in *Instance) Start() {
	in.t.Helper()
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.logs == nil {
		in.logs = &lockedBuffer{}
	}
	args := in.serveCommandArgs()
	bin := conductorBin
	if in.Bin != "" {
		bin = in.Bin
	}
	in.cmd = exec.Command(bin, args...)
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	readyBefore := strings.Count(in.logs.String(), readyLine)
	if err := in.cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	in.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan<- error) { exited <- cmd.Wait() }(in.cmd, in.exited)
	// Ready is what serve says once it listens, not a port that answers:
	// another process could hold the port.
	deadline := time.After(60 * time.Second)
	for strings.Count(in.logs.String(), readyLine) == readyBefore {
		select {
		case err := <-in.exited:
			in.cmd = nil
			in.t.Fatalf("conductor serve exited before it was ready (%v):\n%s", err, in.logs.String())
		case <-deadline:
			in.t.Fatalf("conductor serve was not ready within 60 s:\n%s", in.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// nginx, a child of serve, may still be binding its port.
	for _, addr := range []string{in.SSHAddr, in.HTTPAddr} {
		waitFor(in.t, "conductor to answer on "+addr, func() bool {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
}

// readyLine is what conductor serve prints once SSH and HTTP listen.
const readyLine = "Conductor is ready."

// Stop sends SIGTERM and waits for a clean exit.
func (in *Instance) Stop() {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cmd == nil {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.exited:
		if err != nil {
			in.t.Errorf("conductor serve exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		_ = in.cmd.Process.Kill()
		in.t.Errorf("conductor serve did not stop within 60s of SIGTERM")
		<-in.exited
	}
	in.cmd = nil
}

// StopAll stops conductor serve, then the circusd, nginx and apps it
// leaves running (conductor stop-all).
func (in *Instance) StopAll() {
	in.t.Helper()
	in.Stop()
	stopAll(in.t, in.Dir)
}

// Kill kills conductor serve with SIGKILL, as a crash would.
func (in *Instance) Kill() {
	in.mu.Lock()
	defer in.mu.Unlock()
	_ = in.cmd.Process.Kill()
	<-in.exited
	in.cmd = nil
}

// NewKey writes a new ed25519 key pair (name, name.pub) and returns the
// private key's path.
func (in *Instance) NewKey(name string) string {
	in.t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		in.t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, name)
	if err != nil {
		in.t.Fatal(err)
	}
	path := filepath.Join(in.Dir, "key-"+name)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		in.t.Fatal(err)
	}
	sshPub, _ := gossh.NewPublicKey(pub)
	if err := os.WriteFile(path+".pub", gossh.MarshalAuthorizedKey(sshPub), 0o644); err != nil {
		in.t.Fatal(err)
	}
	return path
}

func (in *Instance) sshCommand(key string) string {
	_, port, _ := net.SplitHostPort(in.SSHAddr)
	return fmt.Sprintf("ssh -p %s -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR", port, key)
}

// Result is a finished command.
type Result struct {
	Stdout, Stderr string
	Code           int
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
}

func runCmd(t *testing.T, dir string, env []string, stdin io.Reader, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return Result{stdout.String(), stderr.String(), code}
}

// SSH runs an SSH command as the holder of key; remote is sent as one
// string, so callers quote words themselves, as with any ssh.
func (in *Instance) SSH(key, remote string) Result {
	in.t.Helper()
	if f := strings.Fields(remote); len(f) > 1 && f[0] == "apps:create" {
		claimApp(in.t, f[1])
	}
	args := append(strings.Fields(in.sshCommand(key))[1:], "git@127.0.0.1", remote)
	return runCmd(in.t, "", nil, strings.NewReader(""), "ssh", args...)
}

// Git runs git in dir with the key's SSH identity.
func (in *Instance) Git(key, dir string, args ...string) Result {
	in.t.Helper()
	env := []string{"GIT_SSH_COMMAND=" + in.sshCommand(key), "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.com", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.com"}
	return runCmd(in.t, dir, env, nil, "git", args...)
}

// RepoURL is the push URL of an app, in the given spelling ("app", "/app.git"…).
func (in *Instance) RepoURL(path string) string {
	claimApp(in.t, path)
	return "ssh://git@" + in.SSHAddr + "/" + strings.TrimPrefix(path, "/")
}

// Push pushes refs of the work tree at dir to app as the admin.
func (in *Instance) Push(dir, app string, refs ...string) Result {
	in.t.Helper()
	return in.Git(in.AdminKey, dir, append([]string{"push", in.RepoURL(app)}, refs...)...)
}

// Get fetches path from the front nginx with the app's Host header.
// waitRetired waits until the app's newest deploy has ended, its retire
// (the previous release's watchers stopped, old releases pruned) included:
// a push returns once its release is live, and `logs --build` follows the
// deploy's log to its end.
func (in *Instance) waitRetired(t *testing.T, app string) {
	t.Helper()
	if r := in.SSH(in.AdminKey, "logs "+app+" --build"); r.Code != 0 || !strings.Contains(r.Stdout, "-----> Deploy succeeded") {
		t.Fatalf("logs %s --build: %s", app, r)
	}
}

func (in *Instance) Get(app, path string) (int, string, http.Header) {
	in.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+in.HTTPAddr+path, nil)
	req.Host = app + ".localhost"
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error(), nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// WorkTree copies an example app into a new git work tree with one commit.
func (in *Instance) WorkTree(example string) string {
	in.t.Helper()
	dir := filepath.Join(in.Dir, "work-"+filepath.Base(example)+"-"+strconv.Itoa(int(time.Now().UnixNano()%1e6)))
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "examples", example))); err != nil {
		in.t.Fatal(err)
	}
	in.mustGit(dir, "init", "-q", "-b", "main")
	in.mustGit(dir, "add", "-A")
	in.mustGit(dir, "commit", "-q", "-m", "initial")
	return dir
}

func (in *Instance) mustGit(dir string, args ...string) string {
	in.t.Helper()
	r := in.Git(in.AdminKey, dir, args...)
	if r.Code != 0 {
		in.t.Fatalf("git %v: %s", args, r)
	}
	return r.Stdout
}

// Commit records all changes in dir.
func (in *Instance) Commit(dir, msg string) {
	in.t.Helper()
	in.mustGit(dir, "add", "-A")
	in.mustGit(dir, "commit", "-q", "-m", msg)
}

// setVersion rewrites the example app's version marker.
func setVersion(t *testing.T, dir, version string) {
	t.Helper()
	path := filepath.Join(dir, "greetings", "version.py")
	if err := os.WriteFile(path, []byte("VERSION = \""+version+"\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// pushSlowRelease commits version of the work tree with a release phase
// that sleeps for seconds, starts pushing it to app and returns once that
// release phase runs, with the push's result to come.
func (in *Instance) pushSlowRelease(t *testing.T, work, app, version string, seconds int) <-chan Result {
	t.Helper()
	return in.pushSlowReleaseWith(t, work, app, version, seconds, "")
}

// pushSlowReleaseWith is pushSlowRelease with more Procfile lines (a
// worker, say).
func (in *Instance) pushSlowReleaseWith(t *testing.T, work, app, version string, seconds int, procfile string) <-chan Result {
	t.Helper()
	writeFile(t, filepath.Join(work, "slow_release.py"), fmt.Sprintf("import time\ntime.sleep(%d)\n", seconds))
	writeFile(t, filepath.Join(work, "Procfile"), "web: gunicorn hello.wsgi --log-file -\nrelease: python slow_release.py "+app+"\n"+procfile)
	setVersion(t, work, version)
	in.Commit(work, "slow "+version)
	pushed := make(chan Result, 1)
	go func() { pushed <- in.Push(work, app, "main") }()
	waitFor(t, "the release phase of "+app+" to start", func() bool {
		return exec.Command("pgrep", "-f", "python slow_release.py "+app).Run() == nil
	})
	return pushed
}

// dialSSH opens a Go SSH client connection as the holder of key, for checks
// the ssh command line cannot express.
func (in *Instance) dialSSH(key string) *gossh.Client {
	in.t.Helper()
	raw, err := os.ReadFile(key)
	if err != nil {
		in.t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(raw)
	if err != nil {
		in.t.Fatal(err)
	}
	client, err := gossh.Dial("tcp", in.SSHAddr, &gossh.ClientConfig{
		User:            "git",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), // a test instance's fresh key
		Timeout:         10 * time.Second,
	})
	if err != nil {
		in.t.Fatal(err)
	}
	return client
}
