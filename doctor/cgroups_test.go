package doctor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCgroups(t *testing.T) {
	dir := t.TempDir()
	r := Cgroups(dir, false) // no circusd: this process's cgroups
	if os.Geteuid() != 0 {
		if r.Status != Warn || !strings.Contains(r.Detail, "not running as root") {
			t.Errorf("not root: %+v", r)
		}
		return
	}
	if r.Status == OK && !strings.HasPrefix(r.Detail, "cgroup v") || r.Status == Warn && !strings.HasPrefix(r.Detail, "none: ") {
		t.Errorf("result %+v does not name the mode", r)
	}
	t.Logf("%s: %s", r.Status, r.Detail)
	// A running circusd's cgroup is the one that counts.
	if err := os.WriteFile(filepath.Join(dir, "circusd.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := Cgroups(dir, true); !strings.Contains(r.Detail, "circusd's cgroup") {
		t.Errorf("with circusd: %+v", r)
	}
}
