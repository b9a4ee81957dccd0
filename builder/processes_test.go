package builder

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
		defer c.Process.Kill()
	}
	quiet := map[string]*settling{}
	until := func(pids []int) (bool, time.Duration) {
		start := time.Now()
		for time.Since(start) < 2*time.Second {
			if settled(quiet, "w", pids, time.Now()) {
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
	if settled(quiet, "w", []int{idle.Process.Pid}, time.Now()) {
		t.Error("settled at once after the pids changed")
	}
}
