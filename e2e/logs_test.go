package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const workerPy = `import os, sys, time
n = 0
flood = os.environ.get("FLOOD") == "1"
while True:
    n += 1
    print("worker-line %d" % n, flush=True)
    if flood:
        sys.stdout.write(("x" * 999 + "\n") * 100)
        sys.stdout.flush()
        time.sleep(0.005)
    else:
        time.sleep(0.2)
`

var logLineRE = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}) ([a-z]+\.\d+): (.*)$`)

// TestLogs: runtime logs of web and worker interleaved by time and named
// web.1/worker.1, --process, follow mode ending with the client, build logs
// of failed and of abandoned pushes, rotation under a flood, and no secret
// in any log.
func TestLogs(t *testing.T) {
	t.Parallel()
	in := StartInstance(t, "--log-max-bytes", "200000")
	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "worker.py"), workerPy)
	writeFile(t, filepath.Join(work, "Procfile"), "web: gunicorn hello.wsgi --log-file - --access-logfile -\nworker: python worker.py\n")
	in.Commit(work, "web and worker")
	const canary = "s3cr3t-canary-7f3a9"
	if r := in.SSH(in.AdminKey, "apps:create loggy"); r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}
	if r := in.SSH(in.AdminKey, "config:set loggy CANARY="+canary); r.Code != 0 {
		t.Fatalf("config:set: %s", r)
	}
	if r := in.Push(work, "loggy", "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	in.Get("loggy", "/health?probe=first-probe")
	time.Sleep(1 * time.Second) // the worker prints every 0.2 s

	r := in.SSH(in.AdminKey, "logs loggy -n 300")
	if r.Code != 0 {
		t.Fatalf("logs: %s", r)
	}
	var last string
	sawWeb, sawWorker := false, false
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		m := logLineRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("log line not '<time> <type>.<n>: text': %q", line)
			continue
		}
		if m[1] < last {
			t.Errorf("lines out of time order: %q after %s", line, last)
		}
		last = m[1]
		sawWeb = sawWeb || (m[2] == "web.1" && strings.Contains(m[3], "first-probe"))
		sawWorker = sawWorker || (m[2] == "worker.1" && strings.HasPrefix(m[3], "worker-line"))
	}
	if !sawWeb || !sawWorker {
		t.Errorf("logs lack web.1's request line (%v) or worker.1's lines (%v):\n%s", sawWeb, sawWorker, r.Stdout)
	}
	r = in.SSH(in.AdminKey, "logs loggy -n 50 --process worker")
	if r.Code != 0 || strings.Contains(r.Stdout, "web.1") || !strings.Contains(r.Stdout, "worker.1: worker-line") {
		t.Errorf("logs --process worker: %s", r)
	}

	// -f shows a line printed after it started, and ends with the client.
	_, port, _ := strings.Cut(in.SSHAddr, ":")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	follow := exec.CommandContext(ctx, "ssh", "-p", port, "-i", in.AdminKey, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "git@127.0.0.1", "logs loggy -n 0 -f --process web")
	stdout, _ := follow.StdoutPipe()
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	in.Get("loggy", "/health?probe=followed-probe")
	found := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "followed-probe") {
				found <- true
				return
			}
		}
		found <- false
	}()
	select {
	case ok := <-found:
		if !ok {
			t.Errorf("logs -f ended before showing the new line")
		}
	case <-time.After(20 * time.Second):
		t.Errorf("logs -f did not show a line printed after it started")
	}
	_ = follow.Process.Kill()
	_ = follow.Wait()
	waitFor(t, "the server to end the logs -f session", func() bool {
		return strings.Contains(in.logs.String(), `msg="ssh session done" user=admin command="logs loggy -n 0 -f --process web"`)
	})

	// The build log of a failed deploy is kept and readable.
	mig, _ := os.ReadFile(filepath.Join("..", "examples", "hello-bad-migration", "0002_fail.py"))
	writeFile(t, filepath.Join(work, "greetings", "migrations", "0002_fail.py"), string(mig))
	in.Commit(work, "bad migration")
	if r := in.Push(work, "loggy", "main"); r.Code == 0 {
		t.Fatalf("bad push succeeded: %s", r)
	}
	r = in.SSH(in.AdminKey, "logs loggy --build")
	if r.Code != 0 || !strings.Contains(r.Stdout, "intentional migration failure") || !strings.Contains(r.Stdout, "Deploy failed") {
		t.Errorf("logs --build of the failed deploy: %s", r)
	}
	os.Remove(filepath.Join(work, "greetings", "migrations", "0002_fail.py"))

	// A pusher who disconnects mid-deploy does not stop it; its log is
	// readable afterwards.
	writeFile(t, filepath.Join(work, "slow_release.py"), "import time\nprint('slow release running', flush=True)\ntime.sleep(3)\n")
	writeFile(t, filepath.Join(work, "Procfile"), "web: gunicorn hello.wsgi --log-file - --access-logfile -\nworker: python worker.py\nrelease: python slow_release.py loggy\n")
	setVersion(t, work, "v-abandoned")
	in.Commit(work, "abandoned push")
	pushCtx, stopPush := context.WithCancel(context.Background())
	push := exec.CommandContext(pushCtx, "git", "push", in.RepoURL("loggy"), "main")
	push.Dir = work
	push.Env = append(os.Environ(), "GIT_SSH_COMMAND="+in.sshCommand(in.AdminKey))
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the slow release phase", func() bool {
		return exec.Command("pgrep", "-f", "python slow_release.py loggy").Run() == nil
	})
	stopPush()
	_ = push.Wait()
	r = in.SSH(in.AdminKey, "logs loggy --build") // follows the running deploy to its end
	if r.Code != 0 || !strings.Contains(r.Stdout, "slow release running") || !strings.Contains(r.Stdout, "Deployed loggy") {
		t.Errorf("logs --build of the abandoned push: %s", r)
	}
	if _, body, _ := in.Get("loggy", "/"); !strings.Contains(body, "v-abandoned") {
		t.Errorf("the abandoned push's deploy did not finish: GET / = %q", body)
	}

	// Rotation caps the files under a flood (200 kB each, 3 rotated kept).
	if r := in.SSH(in.AdminKey, "config:set loggy FLOOD=1"); r.Code != 0 {
		t.Fatalf("config:set FLOOD: %s", r)
	}
	time.Sleep(4 * time.Second)
	files, _ := filepath.Glob(filepath.Join(in.Data, "srv", "projects", "loggy", "logs", "worker.log*"))
	var total int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			continue
		}
		total += fi.Size()
		if fi.Size() > 200000+200000 {
			t.Errorf("%s is %d bytes, over the cap", f, fi.Size())
		}
	}
	if len(files) > 4 || len(files) < 2 {
		t.Errorf("worker logs: %v, want the file and up to 3 rotated ones (and rotation to have happened)", files)
	}
	t.Logf("worker logs after the flood: %d files, %d bytes", len(files), total)
	// The flood's 1000-byte lines come out whole, though circus reads 1024
	// bytes at a time (circus.LineFileStream).
	// Asked just as the file rotates, logs may find few lines yet: asked
	// again until the flood shows, every line read must be whole.
	floodLines := 0
	waitFor(t, "logs -n 300 to show the flood", func() bool {
		r = in.SSH(in.AdminKey, "logs loggy -n 300 --process worker")
		floodLines = 0
		for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
			if line == "" {
				continue
			}
			m := logLineRE.FindStringSubmatch(line)
			switch {
			case m == nil:
				t.Errorf("log line not '<time> <type>.<n>: text': %.100q", line)
			case m[3] == strings.Repeat("x", 999):
				floodLines++
			case !strings.HasPrefix(m[3], "worker-line") && !strings.HasPrefix(m[3], "conductor: starting"):
				t.Errorf("a broken flood line: %.100q (%d bytes)", m[3], len(m[3]))
			}
		}
		return floodLines >= 200 || t.Failed()
	})

	// No secret in any log: the app's SECRET_KEY and a config value.
	out, err := exec.Command("sqlite3", filepath.Join(in.Data, "conductor.db"), "SELECT secret_key FROM apps WHERE name = 'loggy'").Output()
	secret := strings.TrimSpace(string(out))
	if err != nil || len(secret) < 40 {
		t.Fatalf("read SECRET_KEY: %v %q", err, out)
	}
	var builds strings.Builder
	ids, _ := exec.Command("sqlite3", filepath.Join(in.Data, "conductor.db"), "SELECT id FROM deploys").Output()
	for _, id := range strings.Fields(string(ids)) {
		builds.WriteString(in.SSH(in.AdminKey, "logs loggy --build "+id).Stdout)
	}
	for name, text := range map[string]string{"build logs": builds.String(), "conductor's log": in.logs.String()} {
		for _, s := range []string{secret, canary} {
			if strings.Contains(text, s) {
				t.Errorf("%s contain a secret (%.6s…)", name, s)
			}
		}
	}
	if !strings.Contains(builds.String(), "Deployed loggy") {
		t.Errorf("build logs look empty: %.500s", builds.String())
	}
}
