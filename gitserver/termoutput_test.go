package gitserver

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasadna/conductor/queue"
)

// TestCommandsStripTerminalEscapes: config values and app log lines reach
// the admin's terminal without escape sequences or control characters,
// and as stored with --raw.
func TestCommandsStripTerminalEscapes(t *testing.T) {
	ctx := context.Background()
	ts := newTestServer(t, filepath.Join(t.TempDir(), "c.db"))
	run := func(line string) string {
		t.Helper()
		code, out, errOut := ts.run(ts.admin, line, "")
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", line, code, out, errOut)
		}
		return out
	}
	run("apps:create esc")
	app, err := ts.db.FindApp(ctx, "esc")
	if err != nil {
		t.Fatal(err)
	}
	const evil = "ok\x1b]0;pwned\x07\x1b[2J\x1b[H\rX\u009b31m\tend"
	const clean = "okX31m\tend"
	if err := ts.db.SetConfig(ctx, app.ID, map[string]string{"EVIL": evil}); err != nil {
		t.Fatal(err)
	}
	// The app's host answers log requests with the same text.
	logsCtx, stop := context.WithCancel(ctx)
	defer stop()
	if err := ts.queue.ServeAppLogs(logsCtx, app.Host, func(_ context.Context, _ queue.AppLogsRequest, send func([]string) error) error {
		return send([]string{evil, "plain line"})
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ cmd, want string }{
		{"config esc", "EVIL=" + clean + "\n"},
		{"config esc --raw", "EVIL=" + evil + "\n"},
		{"config:get esc EVIL", clean + "\n"},
		{"config:get esc EVIL --raw", evil + "\n"},
		{"logs esc", clean + "\nplain line\n"},
		{"logs esc --raw", evil + "\nplain line\n"},
		{"config esc --json", "{\n  \"EVIL\": \"ok\\u001b]0;pwned\\u0007\\u001b[2J\\u001b[H\\rX\\u009b31m\\tend\"\n}\n"}, // JSON escapes them, C1 included
	}
	for _, tt := range tests {
		if got := run(tt.cmd); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.cmd, got, tt.want)
		}
		if !strings.Contains(tt.cmd, "--") && strings.ContainsAny(run(tt.cmd), "\x1b\r\u009b") {
			t.Errorf("%s: escapes in the output", tt.cmd)
		}
	}
}
