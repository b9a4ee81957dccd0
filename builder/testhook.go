package builder

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Test hook of the kill-at-every-step e2e test (e2e/atomic_test.go): with
// CONDUCTOR_TEST_PAUSE_DIR set in conductor's environment, a deploy that
// reaches the point named in <dir>/pause-at ("step:switch",
// "switch:committed"…) writes it into <dir>/paused and waits there until
// the test removes that file or kills conductor, exactly at that point.
// Nothing sets the variable in production, where pauseAt returns at once.
var pauseDir = os.Getenv("CONDUCTOR_TEST_PAUSE_DIR")

func pauseAt(point string) {
	if pauseDir == "" {
		return
	}
	if at, err := os.ReadFile(filepath.Join(pauseDir, "pause-at")); err != nil || strings.TrimSpace(string(at)) != point {
		return
	}
	paused := filepath.Join(pauseDir, "paused")
	_ = os.WriteFile(paused, []byte(point), 0o600)
	for {
		if _, err := os.Stat(paused); err != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
