package builder

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hasadna/conductor/internal/procnet"
)

func TestUptimes(t *testing.T) {
	for _, c := range []struct {
		name, appJSON string
		config        map[string]string
		want          map[string]time.Duration
		explicit      []string // types whose uptime was asked for (no early pass)
		err           string
	}{
		{name: "default", want: map[string]time.Duration{"worker": time.Second, "beat": time.Second}},
		{name: "app.json, Dokku's shape", appJSON: `{"healthchecks": {"worker": [{"type": "startup", "name": "up", "uptime": 5}, {"uptime": "2.5"}], "web": [{"path": "/"}]}}`,
			want: map[string]time.Duration{"worker": 5 * time.Second, "beat": time.Second}, explicit: []string{"worker"}},
		{name: "other kinds of checks are not uptimes", appJSON: `{"healthchecks": {"worker": [{"type": "liveness", "uptime": 30}]}}`,
			want: map[string]time.Duration{"worker": time.Second, "beat": time.Second}},
		{name: "config var wins", appJSON: `{"healthchecks": {"worker": [{"uptime": 5}]}}`, config: map[string]string{"CONDUCTOR_CHECK_UPTIME": "0"},
			want: map[string]time.Duration{"worker": 0, "beat": 0}, explicit: []string{"worker", "beat"}},
		{name: "bad config var", config: map[string]string{"CONDUCTOR_CHECK_UPTIME": "soon"}, err: `CONDUCTOR_CHECK_UPTIME="soon": want a number of seconds from 0 to 600`},
		{name: "too long", appJSON: `{"healthchecks": {"beat": [{"uptime": 3600}]}}`, err: "healthchecks.beat[0].uptime: want a number of seconds"},
		{name: "negative", appJSON: `{"healthchecks": {"beat": [{"uptime": -1}]}}`, err: "healthchecks.beat[0].uptime"},
		{name: "not JSON", appJSON: `{`, err: "app.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.appJSON != "" {
				if err := os.WriteFile(filepath.Join(dir, "app.json"), []byte(c.appJSON), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d := &deployment{dir: dir, config: c.config}
			got, explicit, err := d.uptimes([]string{"worker", "beat"})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for typ, want := range c.want {
				if got[typ] != want {
					t.Errorf("%s: %s, want %s", typ, got[typ], want)
				}
				if explicit[typ] != slices.Contains(c.explicit, typ) {
					t.Errorf("%s: explicit = %v", typ, explicit[typ])
				}
			}
		})
	}
}

// TestSettled: a process that has booted and waits (asleep, no CPU) is
// settled after settleWindow; one that keeps running never is; a change
// of pids starts the window again.
func TestSettled(t *testing.T) {
	idle := exec.Command("sleep", "30")
	busy := exec.Command("sh", "-c", "while :; do :; done")
	for _, c := range []*exec.Cmd{idle, busy} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
	}
	quiet := map[string]*settling{}
	launcher := ""
	until := func(pids []int) (bool, time.Duration) {
		start := time.Now()
		for time.Since(start) < 2*time.Second {
			if settled(quiet, "w", pids, time.Now(), launcher) {
				return true, time.Since(start)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false, time.Since(start)
	}
	if ok, took := until([]int{idle.Process.Pid}); !ok || took < settleWindow {
		t.Errorf("an idle process: settled %v after %s, want true after at least %s", ok, took, settleWindow)
	}
	if ok, _ := until([]int{busy.Process.Pid}); ok {
		t.Error("a busy process counted as settled")
	}
	if settled(quiet, "w", []int{idle.Process.Pid}, time.Now(), launcher) {
		t.Error("settled at once after the pids changed")
	}
	// An idle process that still runs the launcher's program has not
	// started the app: never settled.
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	launcher = sleepBin
	quiet = map[string]*settling{}
	if ok, _ := until([]int{idle.Process.Pid}); ok {
		t.Error("a process still in the launcher counted as settled")
	}
	// Nor one that is a fork of its parent that has not exec'd (circusd's
	// child before it runs the launcher): a shell's subshell that waits.
	launcher = ""
	// (A background job's stdin is /dev/null: it reads the pipe as fd 3.)
	fork := exec.Command("bash", "-c", "exec 3<&0; ( read -r _ <&3 ) & wait")
	stdin, err := fork.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := fork.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = fork.Process.Kill(); _ = fork.Wait() }()
	var sub int
	for deadline := time.Now().Add(10 * time.Second); sub == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for pid, pp := range procnet.Parents() {
			if pp == fork.Process.Pid {
				sub = pid
			}
		}
	}
	if sub == 0 {
		t.Fatal("the subshell never showed")
	}
	quiet = map[string]*settling{}
	if ok, _ := until([]int{sub}); ok {
		t.Error("a fork that has not exec'd counted as settled")
	}
}
