package process

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hasadna/conductor/cgroup"
)

// The helper process: run-process itself, as circus runs it, from the main
// goroutine on the main thread as cmd/conductor does (its init locks them).
func init() { runtime.LockOSThread() }

func TestMain(m *testing.M) {
	if spec := os.Getenv("CONDUCTOR_TEST_RUN_PROCESS"); spec != "" {
		err := Exec(spec, "1")
		fmt.Println("run-process:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

// runProcess runs the helper on a spec file and returns its output.
func runProcess(t *testing.T, spec string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CONDUCTOR_TEST_RUN_PROCESS="+spec)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeTestSpec(t *testing.T, dir string, s *Spec, uid, gid int, mode os.FileMode) string {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("spec-%d.json", time.Now().UnixNano()))
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

const nobody = 65534

// As root, run-process joins its slot's cgroup with the type's limits
// (killing what an earlier process of the slot left there), then becomes
// the spec's user for good before it runs the command.
func TestRunProcessAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	m := cgroup.Open(0)
	watcher := fmt.Sprintf("conductor-test-%d/app_worker-x", os.Getpid())
	show := `id -u; id -g; id -G; grep -E '^(NoNewPrivs|CapEff)' /proc/self/status; cat /proc/self/cgroup`
	s := &Spec{Type: "worker", Argv: []string{"/bin/sh", "-c", show}, Env: map[string]string{"PATH": "/usr/bin:/bin"}, Dir: "/",
		UID: nobody, GID: nobody, Cgroup: watcher, Limits: cgroup.Limits{Pids: 50, MemoryBytes: 128 << 20}}

	var leftover *exec.Cmd
	var slot *cgroup.Group
	if m.Enabled() {
		var err error
		slot, err = m.Group(watcher + "/1")
		if err != nil {
			t.Fatal(err)
		}
		if err := slot.Create(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = slot.Destroy()
			for _, p := range []string{watcher, filepath.Dir(watcher)} {
				if g, err := m.Group(p); err == nil {
					_ = g.Remove()
				}
			}
		})
		// What a crashed process of slot 1 left behind.
		leftover = exec.Command("sleep", "600")
		if err := slot.Start(leftover); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = leftover.Process.Kill(); _ = leftover.Wait() }()
	} else {
		t.Logf("no cgroups here (%s): only the privilege drop is checked", m.Mode())
	}

	out, err := runProcess(t, writeTestSpec(t, dir, s, 0, 0, 0o640))
	if err != nil {
		t.Fatalf("run-process: %v\n%s", err, out)
	}
	lines := strings.Split(out, "\n")
	if !strings.HasPrefix(lines[0], StartLinePrefix+"worker.1 (pid ") {
		t.Errorf("first line %q is not the start line", lines[0])
	}
	if len(lines) < 4 || lines[1] != "65534" || lines[2] != "65534" || lines[3] != "65534" {
		t.Errorf("uid, gid, groups = %q, want 65534 each and no other group\n%s", lines[1:min(4, len(lines))], out)
	}
	if !strings.Contains(out, "CapEff:\t0000000000000000") {
		t.Errorf("the process kept capabilities:\n%s", out)
	}
	if m.Enabled() {
		if !strings.Contains(out, watcher+"/1\n") {
			t.Errorf("the process is not in %s/1:\n%s", watcher, out)
		}
		if err := leftover.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("the slot's leftover process: %v, want killed", err)
		}
		if pids, _ := slot.Pids(); len(pids) != 0 {
			t.Errorf("left in the slot: %v", pids)
		}
		if m.Version() == cgroup.V1 {
			data, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", strings.TrimPrefix(pidsCgroup(t), "/"), watcher, "1", "pids.max"))
			if strings.TrimSpace(string(data)) != "50" {
				t.Errorf("pids.max = %q, want 50", data)
			}
		}
	}
}

// pidsCgroup is this process's cgroup in the v1 pids hierarchy.
func pidsCgroup(t *testing.T) string {
	data, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(data), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[1] == "pids" {
			return parts[2]
		}
	}
	return ""
}

// Specs that only root may trust are refused or run as their owner.
func TestRunProcessUntrustedSpecs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	id := &Spec{Type: "web", Argv: []string{"/bin/sh", "-c", "id -u"}, Env: map[string]string{}, Dir: "/",
		Cgroup: fmt.Sprintf("conductor-test-%d/other_web-x", os.Getpid())}
	asRoot := *id
	asRoot.UID, asRoot.GID = 0, 0
	trustedRoot := writeTestSpec(t, dir, &asRoot, 0, 0, 0o640)
	link := filepath.Join(dir, "link.json")
	if err := os.Symlink(trustedRoot, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		// An app user's own spec (as specs were before they became
		// root's) runs as that user whatever it says, in no cgroup.
		{"owned by the app user", writeTestSpec(t, dir, &asRoot, nobody, nobody, 0o600), "65534\n"},
		{"names root", trustedRoot, "app processes never run as root"},
		{"writable by others", writeTestSpec(t, dir, &Spec{Type: "web", Argv: []string{"id"}, Dir: "/", UID: nobody, GID: nobody}, 0, 0, 0o666), "writable by others"},
		{"a symlink", link, "too many levels of symbolic links"},
		{"names another uid", writeTestSpec(t, dir, &Spec{Type: "web", Argv: []string{"id"}, Dir: "/", UID: 1, GID: 1}, nobody, nobody, 0o600), "names uid 1 but belongs to uid 65534"},
	} {
		out, _ := runProcess(t, tc.path)
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: output %q, want %q", tc.name, out, tc.want)
		}
	}
	out, _ := runProcess(t, writeTestSpec(t, dir, &asRoot, nobody, nobody, 0o600))
	if !strings.Contains(out, "runs in no cgroup") {
		t.Errorf("an untrusted spec's cgroup is not refused loudly: %q", out)
	}
	if g, err := cgroup.Open(0).Group(id.Cgroup); err == nil && g.Exists() {
		t.Errorf("an untrusted spec made its cgroup %s", id.Cgroup)
	}
}

// Not as root, run-process runs the command as it is, as before.
func TestRunProcessNotRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("not as root")
	}
	dir := t.TempDir()
	s := &Spec{Type: "web", Argv: []string{"/bin/sh", "-c", "id -u"}, Env: map[string]string{}, Dir: "/", Cgroup: "x/y"}
	out, err := runProcess(t, writeTestSpec(t, dir, s, os.Getuid(), os.Getgid(), 0o600))
	if err != nil || !strings.Contains(out, strconv.Itoa(os.Getuid())) {
		t.Errorf("run-process: %v\n%s", err, out)
	}
}
