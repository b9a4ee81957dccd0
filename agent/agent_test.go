package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWatcherType(t *testing.T) {
	for _, tt := range []struct{ app, watcher, typ string }{
		{"hello", "hello_web_20001", "web"},
		{"hello", "hello_worker", "worker"},
		{"hello", "hello_clock_2", "clock_2"},
		{"hello", "hello2_web_1", ""},
		{"hello", "hello_", ""},
		{"hello", "hello-x_web_1", ""},
	} {
		typ, ok := WatcherType(tt.app, tt.watcher)
		if typ != tt.typ || ok != (tt.typ != "") {
			t.Errorf("WatcherType(%s, %s) = %q %v, want %q", tt.app, tt.watcher, typ, ok, tt.typ)
		}
	}
}

func TestRemoveInside(t *testing.T) {
	root := t.TempDir()
	inside := filepath.Join(root, "projects", "x")
	if err := os.MkdirAll(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{root, filepath.Dir(root), filepath.Join(root, "..", "y"), "/"} {
		if err := RemoveInside(bad, root); err == nil {
			t.Errorf("RemoveInside(%s) was allowed", bad)
		}
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("root removed: %v", err)
	}
	if err := RemoveInside(inside, root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(inside); !os.IsNotExist(err) {
		t.Errorf("not removed: %v", err)
	}
}
