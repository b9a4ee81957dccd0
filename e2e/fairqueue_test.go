package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFairQueue (issue 17, item 2): an app whose release phase runs long,
// with three config:set jobs queued behind it, once held all four --jobs
// slots, and every other app's deploys waited for it. Jobs waiting for
// their app's turn hold no slot now: other apps' pushes complete while the
// slow release still runs. Then apps:set's timeout.release ends a slow
// release phase, with everything it started, and the old release serves.
func TestFairQueue(t *testing.T) {
	in := StartInstance(t) // --jobs 4
	apps := []string{"slowpoke", "quick-a", "quick-b"}
	works := map[string]string{}
	for _, app := range apps {
		works[app] = in.WorkTree("hello")
		if r := in.Push(works[app], app, "main"); r.Code != 0 {
			t.Fatalf("first push of %s: %s", app, r)
		}
	}

	// Settings: validated, nothing changed by a bad one, listed with defaults.
	if r := in.SSH(in.AdminKey, "apps:set slowpoke timeout.release=1s"); r.Code == 0 || !strings.Contains(r.Stderr, "out of range") {
		t.Errorf("apps:set of 1s: %s", r)
	}
	if r := in.SSH(in.AdminKey, "apps:set slowpoke timeout.check=90s timeout.nope=1m"); r.Code == 0 || !strings.Contains(r.Stderr, `unknown setting "timeout.nope"`) {
		t.Errorf("apps:set of an unknown key: %s", r)
	}
	if r := in.SSH(in.AdminKey, "apps:get slowpoke"); r.Code != 0 || !strings.Contains(r.Stdout, "timeout.release") ||
		!strings.Contains(r.Stdout, "10m") || !strings.Contains(r.Stdout, "timeout.check        60s      (default)") {
		t.Errorf("apps:get: %s", r)
	}

	// slowpoke's release phase sleeps; three config changes queue behind it.
	pushed := in.pushSlowRelease(t, works["slowpoke"], "slowpoke", "v2", 400)
	configs := make(chan Result, 3)
	for i := range 3 {
		go func() { configs <- in.SSH(in.AdminKey, fmt.Sprintf("config:set slowpoke N%d=%d", i, i)) }()
	}
	waitFor(t, "three config:set jobs queued behind slowpoke's push", func() bool {
		return in.stateQuery(`SELECT count(*) FROM deploys d JOIN apps a ON a.id = d.app_id
			WHERE a.name = 'slowpoke' AND d.status = 'queued'`) == "3"
	})

	// The other apps deploy meanwhile, each a push and a config change.
	done := make(chan string, 4)
	for _, app := range apps[1:] {
		setVersion(t, works[app], "v2")
		in.Commit(works[app], "v2")
		go func() {
			if r := in.Push(works[app], app, "main"); r.Code != 0 {
				done <- fmt.Sprintf("push of %s: %s", app, r)
				return
			}
			done <- ""
		}()
		go func() {
			if r := in.SSH(in.AdminKey, "config:set "+app+" GREETING=hi"); r.Code != 0 {
				done <- fmt.Sprintf("config:set %s: %s", app, r)
				return
			}
			done <- ""
		}()
	}
	for range 4 {
		select {
		case msg := <-done:
			if msg != "" {
				t.Error(msg)
			}
		case <-pushed:
			t.Fatal("slowpoke's push ended before the other apps' jobs")
		case <-time.After(4 * time.Minute): // slowpoke's release would end in 400 s
			t.Fatal("the other apps' jobs wait behind slowpoke's")
		}
	}
	if exec.Command("pgrep", "-f", "python slow_release.py slowpoke").Run() != nil {
		t.Fatal("slowpoke's release phase is no longer running: the test proves nothing")
	}
	for _, app := range apps[1:] {
		if _, body, _ := in.Get(app, "/"); !strings.Contains(body, "Hello from Conductor v2<") {
			t.Errorf("%s: GET / = %q, want v2", app, body)
		}
	}
	if r := in.SSH(in.AdminKey, "deploys:cancel slowpoke"); r.Code != 0 {
		t.Fatalf("deploys:cancel: %s", r)
	}
	if r := <-pushed; r.Code == 0 {
		t.Errorf("canceled push succeeded: %s", r)
	}
	for range 3 {
		<-configs
	}

	// A release phase past timeout.release is ended with what it started
	// (a child in the same group), and the push says why.
	if r := in.SSH(in.AdminKey, "apps:set slowpoke timeout.release=5s"); r.Code != 0 || !strings.Contains(r.Stdout, "timeout.release=5s") {
		t.Fatalf("apps:set: %s", r)
	}
	if r := in.SSH(in.AdminKey, "apps:get slowpoke timeout.release"); strings.TrimSpace(r.Stdout) != "5s" {
		t.Errorf("apps:get slowpoke timeout.release: %s", r)
	}
	work := works["slowpoke"]
	writeFile(t, filepath.Join(work, "slow_release.py"),
		"import subprocess, time\nsubprocess.Popen(['sleep', '401'])\ntime.sleep(400)\n")
	setVersion(t, work, "v3")
	in.Commit(work, "v3 times out")
	r := in.Push(work, "slowpoke", "main")
	if r.Code == 0 || !strings.Contains(r.Stderr, "release phase timed out after 5s") {
		t.Errorf("push past the release timeout: %s", r)
	}
	if _, body, _ := in.Get("slowpoke", "/"); !strings.Contains(body, "Hello from Conductor v1<") {
		t.Errorf("after the timeout GET / = %q, want v1", body)
	}
	waitFor(t, "the release phase and its child to be gone", func() bool {
		return exec.Command("pgrep", "-f", "python slow_release.py slowpoke").Run() != nil &&
			exec.Command("pgrep", "-fx", "sleep 401").Run() != nil
	})
	if got := in.stateQuery(`SELECT d.status || ' ' || d.error FROM deploys d JOIN apps a ON a.id = d.app_id
		WHERE a.name = 'slowpoke' ORDER BY d.created_at DESC LIMIT 1`); !strings.Contains(got, "failed") || !strings.Contains(got, "timed out after 5s") {
		t.Errorf("last deploy of slowpoke: %q", got)
	}
}
