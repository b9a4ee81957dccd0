package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hasadna/conductor/provision"
)

// ps shows the limits a watcher's processes run under, from its spec.
func TestWatcherLimits(t *testing.T) {
	h := &Host{Layout: provision.Layout{Srv: t.TempDir()}}
	run := h.Layout.RunDir("shop")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, json string) {
		if err := os.WriteFile(filepath.Join(run, name+".json"), []byte(json), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write("shop_worker", `{"type":"worker","argv":["x"],"limits":{"memory_bytes":536870912,"cpu_millis":1500,"pids":256}}`)
	write("shop_web_20000", `{"type":"web","argv":["x"]}`)
	for watcher, want := range map[string]string{
		"shop_worker":    "memory=512M cpu=1.5 pids=256",
		"shop_web_20000": "none",
		"shop_gone":      "",
	} {
		if got := h.watcherLimits("shop", watcher); got != want {
			t.Errorf("watcherLimits(%s) = %q, want %q", watcher, got, want)
		}
	}
}
