package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	mounts := parseMountinfo([]byte(`31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /mnt/with\040space rw - cgroup2 cgroup2 rw
`))
	if len(mounts) != 5 {
		t.Fatalf("mounts = %+v", mounts)
	}
	if m := mounts[0]; m.point != "/sys/fs/cgroup/cpu,cpuacct" || !slices.Equal(m.controllers, []string{"cpu"}) {
		t.Errorf("cpu mount = %+v", m)
	}
	if m := mounts[4]; m.point != "/mnt/with space" || !m.v2 {
		t.Errorf("escaped mount = %+v", m)
	}
	pc := parseProcCgroup([]byte("9:name=systemd:/\n4:memory:/docker/abc/x\n1:cpu,cpuacct:/a\n0::/u\n"))
	if pc.v2 != "/u" || pc.byCtrl["cpu"] != "/a" || pc.byCtrl["memory"] != "/docker/abc/x" {
		t.Errorf("proc cgroup = %+v", pc)
	}
	for _, tc := range []struct {
		m    mount
		p    string
		want string
	}{
		{mounts[1], "/docker/abc/x", "/sys/fs/cgroup/memory/x"},
		{mounts[1], "/docker/abcd", ""}, // not below the mount's root
		{mounts[0], "/system.slice/c.service/" + MainLeaf, "/sys/fs/cgroup/cpu,cpuacct/system.slice/c.service"},
		{mounts[0], "/", "/sys/fs/cgroup/cpu,cpuacct"},
	} {
		if got := dirOf(tc.m, tc.p); got != tc.want {
			t.Errorf("dirOf(%s, %s) = %q, want %q", tc.m.point, tc.p, got, tc.want)
		}
	}
}

func TestGroupPath(t *testing.T) {
	m := Disabled("test")
	for _, bad := range []string{"", "/a", "a/", "a//b", "../a", "a/..", "a/.", "cgroup.procs", "a/" + MainLeaf, "a b", "a\nb", strings.Repeat("a", 129)} {
		if _, err := m.Group(bad); !errors.Is(err, ErrBadPath) {
			t.Errorf("Group(%q) = %v, want ErrBadPath", bad, err)
		}
	}
	for _, good := range []string{"a", "conductor/0123abcd/app-1/app-1_web_20001-1a2b/3", WatcherPath("id", "hello", "hello_worker", "x1"), RunPath("id", "hello", "abc")} {
		if _, err := m.Group(good); err != nil {
			t.Errorf("Group(%q) = %v", good, err)
		}
	}
}

// A disabled Manager makes nothing, and starting a command still works.
func TestDisabled(t *testing.T) {
	m := Disabled("not root")
	if m.Enabled() || m.Mode() != "none: limits not enforced (not root)" {
		t.Errorf("mode %q", m.Mode())
	}
	g, err := m.Group("conductor/x")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []func() error{g.Create, g.Kill, g.Remove, func() error { return g.SetLimits(Limits{Pids: 1}) }} {
		if err := f(); err != nil {
			t.Error(err)
		}
	}
	cmd := exec.Command("true")
	if err := g.Start(cmd); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// fakeV2 makes a directory that looks like a delegated cgroup2 cgroup, with
// the groups of rel already there (cgroupfs makes a child's files itself).
func fakeV2(t *testing.T, rel string) *Manager {
	t.Helper()
	base := t.TempDir()
	dir := base
	for _, p := range append([]string{""}, strings.Split(rel, "/")...) {
		dir = filepath.Join(dir, p)
		must(t, os.MkdirAll(dir, 0o755))
		must(t, os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpuset cpu io memory hugetlb pids rdma misc\n"), 0o644))
		must(t, os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), nil, 0o644))
		must(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644))
	}
	return &Manager{version: V2, base: base, delegated: true}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The v2 writes: each parent gives memory, cpu and pids to its children,
// the leaf gets the limits in v2's syntax, and a process is added by pid.
func TestV2Writes(t *testing.T) {
	const rel = "conductor/inst/app/app_web_20001-ab/1"
	m := fakeV2(t, rel)
	if m.Mode() != "cgroup v2" {
		t.Errorf("mode %q", m.Mode())
	}
	g, err := m.Group(rel)
	must(t, err)
	must(t, g.Create())
	dir := m.base
	for i, p := range strings.Split(rel, "/") {
		if got := readString(t, filepath.Join(dir, "cgroup.subtree_control")); got != "+memory +cpu +pids" {
			t.Errorf("level %d (%s): subtree_control = %q", i, dir, got)
		}
		dir = filepath.Join(dir, p)
	}
	if got := readString(t, filepath.Join(dir, "cgroup.subtree_control")); got != "" {
		t.Errorf("the leaf enables controllers: %q", got)
	}
	for _, tc := range []struct {
		l    Limits
		want map[string]string
	}{
		{Limits{MemoryBytes: 512 << 20, CPUMillis: 1500, Pids: 256}, map[string]string{
			"memory.max": "536870912", "memory.swap.max": "0", "cpu.max": "150000 100000", "pids.max": "256"}},
		{Limits{CPUMillis: 1}, map[string]string{ // the kernel's smallest quota is 1 ms
			"memory.max": "max", "memory.swap.max": "max", "cpu.max": "1000 100000", "pids.max": "max"}},
		{Limits{}, map[string]string{"memory.max": "max", "memory.swap.max": "max", "cpu.max": "max 100000", "pids.max": "max"}},
	} {
		must(t, g.SetLimits(tc.l))
		for f, want := range tc.want {
			if got := readString(t, filepath.Join(dir, f)); got != want {
				t.Errorf("%+v: %s = %q, want %q", tc.l, f, got, want)
			}
		}
	}
	must(t, g.Add(4242))
	if got := readString(t, filepath.Join(dir, "cgroup.procs")); got != "4242" {
		t.Errorf("cgroup.procs = %q", got)
	}
	pids, err := g.Pids()
	if err != nil || !slices.Equal(pids, []int{4242}) {
		t.Errorf("Pids = %v, %v", pids, err)
	}
	// An enabled controller is not written again.
	must(t, os.WriteFile(filepath.Join(m.base, "cgroup.subtree_control"), []byte("cpu memory pids\n"), 0o644))
	must(t, g.Create())
	if got := readString(t, filepath.Join(m.base, "cgroup.subtree_control")); got != "cpu memory pids\n" {
		t.Errorf("subtree_control rewritten: %q", got)
	}
	must(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644))
	must(t, g.Remove())
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("leaf not removed: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); err != nil {
		t.Errorf("parent removed: %v", err)
	}
}

// A v2 cgroup that is not delegated and does not give its children the
// controllers is not used.
func TestV2NotDelegated(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	m := fakeV2(t, "x")
	if got := openV2(m.base, false); got.Enabled() || !strings.Contains(got.Mode(), "Delegate=yes") {
		t.Errorf("not delegated: %s", got.Mode())
	}
	must(t, os.WriteFile(filepath.Join(m.base, "cgroup.subtree_control"), []byte("memory pids\n"), 0o644))
	if got := openV2(m.base, false); !got.Enabled() {
		t.Errorf("controllers given to children, yet: %s", got.Mode())
	}
	if got := openV2(m.base, true); !got.Enabled() {
		t.Errorf("namespace root: %s", got.Mode())
	}
}

// here is the Manager for this process's own cgroups, or a skip.
func here(t *testing.T) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	m := Open(0)
	if !m.Enabled() {
		t.Skipf("no writable cgroups: %s", m.Mode())
	}
	return m
}

// testGroup makes a group below m's base, destroyed when the test ends.
func testGroup(t *testing.T, m *Manager, name string) *Group {
	t.Helper()
	g, err := m.Group(fmt.Sprintf("conductor-test-%d/%s", os.Getpid(), name))
	must(t, err)
	must(t, g.Create())
	t.Cleanup(func() {
		_ = g.Destroy()
		if parent, err := m.Group(fmt.Sprintf("conductor-test-%d", os.Getpid())); err == nil {
			_ = parent.Remove()
		}
	})
	return g
}

func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// state is the field after the command's closing parenthesis
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// On this host's real cgroups: a command started in a group is there with
// the child it forks at once, the limits are the kernel's, and Kill gets
// every process, the orphaned grandchild too, then Remove removes it.
func TestRealStartKillRemove(t *testing.T) {
	m := here(t)
	t.Logf("mode: %s, base %s", m.Mode(), m.Base())
	g := testGroup(t, m, "start")
	must(t, g.SetLimits(Limits{MemoryBytes: 256 << 20, CPUMillis: 500, Pids: 64}))
	// The shell backgrounds a sleep that outlives it (an orphan), then
	// waits on a second one.
	cmd := exec.Command("/bin/sh", "-c", "sleep 600 & sleep 601")
	must(t, g.Start(cmd))
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var pids []int
	waitFor(t, "the shell and both sleeps in the group", func() bool {
		pids, _ = g.Pids()
		return len(pids) == 3
	})
	if !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("pids %v lack the shell %d", pids, cmd.Process.Pid)
	}
	// Not a thread of this test process was left in the group.
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		data, _ := os.ReadFile("/proc/self/task/" + task.Name() + "/cgroup")
		if strings.Contains(string(data), "conductor-test-") {
			t.Errorf("thread %s of the test is in the group: %s", task.Name(), data)
		}
	}
	switch m.Version() {
	case V1:
		for _, h := range m.v1 {
			dir := filepath.Join(h.base, g.Path())
			switch h.controller {
			case "memory":
				if got := strings.TrimSpace(readString(t, filepath.Join(dir, "memory.limit_in_bytes"))); got != "268435456" {
					t.Errorf("memory.limit_in_bytes = %s", got)
				}
			case "cpu":
				if got := strings.TrimSpace(readString(t, filepath.Join(dir, "cpu.cfs_quota_us"))); got != "50000" {
					t.Errorf("cpu.cfs_quota_us = %s", got)
				}
			case "pids":
				if got := strings.TrimSpace(readString(t, filepath.Join(dir, "pids.max"))); got != "64" {
					t.Errorf("pids.max = %s", got)
				}
			}
		}
	case V2:
		if got := strings.TrimSpace(readString(t, filepath.Join(m.base, g.Path(), "memory.max"))); got != "268435456" {
			t.Errorf("memory.max = %s", got)
		}
	}
	must(t, g.Kill())
	_ = cmd.Wait()
	for _, p := range pids {
		if alive(p) {
			t.Errorf("pid %d survived Kill", p)
		}
	}
	must(t, g.Remove())
	if g.Exists() {
		t.Error("group still exists")
	}
}

// A process that goes over the group's memory limit is killed by the
// kernel, not the host.
func TestRealMemoryLimit(t *testing.T) {
	m := here(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
	g := testGroup(t, m, "memory")
	must(t, g.SetLimits(Limits{MemoryBytes: 48 << 20}))
	cmd := exec.Command("python3", "-c", "b = bytearray(256 << 20); print('allocated')")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	must(t, g.Start(cmd))
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("python over the limit: %v, output %q; want killed by SIGKILL", err, out)
	}
}

// A group with many processes forking is emptied.
func TestRealKillForking(t *testing.T) {
	m := here(t)
	g := testGroup(t, m, "forking")
	must(t, g.SetLimits(Limits{Pids: 200}))
	cmd := exec.Command("/bin/sh", "-c", "while :; do sleep 600 & done")
	must(t, g.Start(cmd))
	waitFor(t, "sleeps piling up", func() bool { p, _ := g.Pids(); return len(p) > 20 })
	must(t, g.Kill())
	_ = cmd.Wait()
	if p, _ := g.Pids(); len(p) != 0 {
		t.Errorf("left: %v", p)
	}
	must(t, g.Remove())
}

// The v2 paths on a real cgroup2 hierarchy: a hybrid host's unified mount
// has no controllers, but cgroup.procs, cgroup.kill and starting a command
// into a group (clone3) work as on a v2 host.
func TestRealV2Unified(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	cg, _ := os.ReadFile("/proc/self/cgroup")
	pc := parseProcCgroup(cg)
	var base string
	for _, mt := range parseMountinfo(mountinfo) {
		if mt.v2 && pc.hasV2 {
			base = dirOf(mt, pc.v2)
			break
		}
	}
	if base == "" {
		t.Skip("no cgroup2 mount")
	}
	m := &Manager{version: V2, base: base, delegated: true}
	g := testGroup(t, m, "v2")
	cmd := exec.Command("/bin/sh", "-c", "sleep 600 & sleep 601")
	must(t, g.Start(cmd))
	var pids []int
	waitFor(t, "three processes in the v2 group", func() bool { pids, _ = g.Pids(); return len(pids) == 3 })
	if _, err := os.Stat(filepath.Join(base, g.Path(), "cgroup.kill")); err != nil {
		t.Logf("no cgroup.kill: the SIGKILL loop is used (%v)", err)
	}
	must(t, g.Kill())
	_ = cmd.Wait()
	for _, p := range pids {
		if alive(p) {
			t.Errorf("pid %d survived", p)
		}
	}
	must(t, g.Remove())
}
