package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCrashMidDeploy kills conductor with SIGKILL while a deploy runs its
// release phase: after a restart the old release serves, the interrupted
// deploy is marked failed, nothing of it runs, and the next push works.
func TestCrashMidDeploy(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	work := in.WorkTree("hello")
	if r := in.Push(work, "crashy", "main"); r.Code != 0 {
		t.Fatalf("first push: %s", r)
	}

	// v2 has a release phase that sleeps, so the kill lands mid-deploy.
	pushed := in.pushSlowRelease(t, work, "crashy", "v2", 120)
	in.Kill()
	select {
	case r := <-pushed:
		if r.Code == 0 {
			t.Errorf("push succeeded although conductor was killed: %s", r)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("push did not end after conductor was killed")
	}
	// The build step died with conductor; it does not run on unsupervised,
	// and neither git nor its hook waits for a conductor that is gone.
	waitFor(t, "the release phase to die with conductor", func() bool {
		return exec.Command("pgrep", "-f", "python slow_release.py crashy").Run() != nil
	})
	waitFor(t, "git and the hook to end", func() bool {
		return exec.Command("pgrep", "-f", in.Data+"/(bin/conductor hook|repos/)").Run() != nil
	})

	in.Start()
	waitFor(t, "v1 served after restart", func() bool {
		_, body, _ := in.Get("crashy", "/")
		return strings.Contains(body, "Hello from Conductor v1<")
	})
	out, err := exec.Command("sqlite3", filepath.Join(in.Data, "conductor.db"),
		"SELECT status || ' ' || error FROM deploys ORDER BY created_at").CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "succeeded") || !strings.HasPrefix(lines[1], "failed the builder stopped during this deploy") {
		t.Errorf("deploys after the crash:\n%s", out)
	}
	// Only the serving release's watcher is installed.
	watchers, _ := filepath.Glob(filepath.Join(in.Data, "circus", "watchers", "crashy_*.ini"))
	if len(watchers) != 1 {
		t.Errorf("watchers after restart: %v, want only the serving one", watchers)
	}

	// The next push works.
	writeFile(t, filepath.Join(work, "Procfile"), "web: gunicorn hello.wsgi --log-file -\n")
	setVersion(t, work, "v3")
	in.Commit(work, "v3")
	if r := in.Push(work, "crashy", "main"); r.Code != 0 {
		t.Fatalf("push after the crash: %s", r)
	}
	if _, body, _ := in.Get("crashy", "/"); !strings.Contains(body, "Hello from Conductor v3<") {
		t.Errorf("GET / = %q, want v3", body)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCrashOnBoot pushes a release whose web process dies at start: it is
// never switched to, the push says why, and the old release keeps serving.
func TestCrashOnBoot(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	work := in.WorkTree("hello")
	if r := in.Push(work, "boots", "main"); r.Code != 0 {
		t.Fatalf("first push: %s", r)
	}
	writeFile(t, filepath.Join(work, "Procfile"), "web: python -c \"raise SystemExit('boom on boot')\"\n")
	setVersion(t, work, "v2")
	in.Commit(work, "crash on boot")
	start := time.Now()
	r := in.Push(work, "boots", "main")
	t.Logf("failed push took %s", time.Since(start).Round(time.Millisecond))
	if r.Code == 0 {
		t.Fatalf("push of a release that crashes on boot succeeded: %s", r)
	}
	for _, want := range []string{"health check of the new release failed", "boom on boot"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("push output lacks %q:\n%s", want, r.Stderr)
		}
	}
	if _, body, _ := in.Get("boots", "/"); !strings.Contains(body, "Hello from Conductor v1<") {
		t.Errorf("GET / = %q, want v1 still serving", body)
	}
	watchers, _ := filepath.Glob(filepath.Join(in.Data, "circus", "watchers", "boots_*.ini"))
	if len(watchers) != 1 {
		t.Errorf("watchers after the failed deploy: %v, want only the serving one", watchers)
	}
}
