package builder

import (
	"os"
	"path/filepath"
	"strings"
)

// Test hook of the kill-at-every-step e2e test (e2e/atomic_test.go): with
// CONDUCTOR_TEST_PAUSE_DIR set in conductor's environment, a deploy that
// reaches the point named in <dir>/pause-at ("step:switch",
// "switch:committed"…) writes it into <dir>/paused and stops there for
// good, so the test kills conductor exactly at that point. Nothing sets
// the variable in production, where pauseAt returns at once.
var pauseDir = os.Getenv("CONDUCTOR_TEST_PAUSE_DIR")

func pauseAt(point string) {
	if pauseDir == "" {
		return
	}
	if at, err := os.ReadFile(filepath.Join(pauseDir, "pause-at")); err != nil || strings.TrimSpace(string(at)) != point {
		return
	}
	_ = os.WriteFile(filepath.Join(pauseDir, "paused"), []byte(point), 0o600)
	select {} // until the test kills the process
}
