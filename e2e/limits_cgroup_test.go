package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hogPy is a worker that starts a child (`sleep N`) that outlives it when
// it is stopped, and that eats memory when the trigger file names its pid.
const hogPy = `import os, subprocess, sys, time
trigger, nap = sys.argv[1], sys.argv[2]
child = subprocess.Popen(["sleep", nap])
print("hog %d child %d" % (os.getpid(), child.pid), flush=True)
blocks = []
while True:
    try:
        with open(trigger) as f:
            want = f.read().strip()
    except OSError:
        want = ""
    if want == str(os.getpid()) and len(blocks) < 64:
        blocks.append(b"x" * (8 << 20))  # written, so resident: 512 MiB at most
        print("hog holds %d MiB" % (8 * len(blocks)), flush=True)
        continue
    time.sleep(0.1)
`

// releaseSh backgrounds two sleeps before it migrates: one stays in the
// release command's process group, one leaves it (setsid).
const releaseSh = `#!/bin/sh
sleep %d >/dev/null 2>&1 &
setsid sleep %d >/dev/null 2>&1 &
exec python manage.py migrate --noinput
`

// pgrepExact returns the pids of processes whose command line is exactly cmd.
func pgrepExact(cmd string) []int {
	out, _ := exec.Command("pgrep", "-x", "-f", cmd).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}

// liveProcess tells whether pid runs (a zombie does not count).
func liveProcess(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// hogPids finds the hog worker's pid and its sleep child's, from the
// worker's own line in the process table.
func hogPids(t *testing.T, nap int) (hog, child int) {
	t.Helper()
	hogs := pgrepExact(fmt.Sprintf("python hog.py %s %d", hogTrigger(nap), nap))
	if len(hogs) != 1 {
		return 0, 0
	}
	for _, c := range pgrepExact(fmt.Sprintf("sleep %d", nap)) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(c) + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(hogs[0]) {
			return hogs[0], c
		}
	}
	return hogs[0], 0
}

func hogTrigger(nap int) string { return fmt.Sprintf("/tmp/conductor-e2e-hog-%d", nap) }

// memoryCgroupDir is the v1 memory cgroup directory of pid ("" on v2 or
// without one).
func memoryCgroupDir(pid int) string {
	data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	for _, line := range strings.Split(string(data), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[1] == "memory" {
			return filepath.Join("/sys/fs/cgroup/memory", parts[2])
		}
	}
	return ""
}

// TestCgroupLimits plays ps:limit on this host's real cgroups: a worker
// over its memory limit is killed by the kernel and restarted by circus
// while the app's web and another app keep answering; what a worker
// started does not survive the worker's watcher; what a release command
// left running in the background is killed when the release step ends.
func TestCgroupLimits(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
			t.Skip("no cgroup memory controller on this host")
		}
	}
	in := StartInstance(t)
	base := 7000 + rand.IntN(2000)*3
	nap, stay, leave := base, base+1, base+2
	t.Cleanup(func() {
		os.Remove(hogTrigger(nap))
		_ = exec.Command("pkill", "-x", "-f", fmt.Sprintf("sleep (%d|%d|%d|%d|%d)", nap, stay, leave, base+3, base+4)).Run()
	})

	calm := in.WorkTree("hello")
	if r := in.Push(calm, "calm", "main"); r.Code != 0 {
		t.Fatalf("push calm: %s", r)
	}
	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "hog.py"), hogPy)
	writeFile(t, filepath.Join(work, "release.sh"), fmt.Sprintf(releaseSh, stay, leave))
	writeFile(t, filepath.Join(work, "Procfile"), fmt.Sprintf(
		"web: gunicorn hello.wsgi --log-file -\nworker: python hog.py %s %d\nrelease: sh release.sh\n", hogTrigger(nap), nap))
	in.Commit(work, "a worker that hogs memory on demand")
	if r := in.Push(work, "hog", "main"); r.Code != 0 {
		t.Fatalf("push hog: %s", r)
	}

	// Part 7: the release step's background sleeps died with the step,
	// the one that left the process group (setsid) too.
	for _, n := range []int{stay, leave} {
		if pids := pgrepExact(fmt.Sprintf("sleep %d", n)); len(pids) > 0 {
			t.Errorf("sleep %d started in the background by the release command outlived the release step: %v", n, pids)
		}
	}

	var hog1, child1 int
	waitFor(t, "the hog worker and its child", func() bool { hog1, child1 = hogPids(t, nap); return hog1 > 0 && child1 > 0 })

	// Limits: only the admin's, kept in the state, listed.
	dev := in.NewKey("dev")
	if r := in.SSHIn(in.AdminKey, "keys:add dev", readFileString(t, dev+".pub")); r.Code != 0 {
		t.Fatalf("keys:add: %s", r)
	}
	in.SSH(in.AdminKey, "access:grant hog dev")
	refused(t, "ps:limit by a developer", in.SSH(dev, "ps:limit hog worker memory=1G"), "")
	refused(t, "a bad memory size", in.SSH(in.AdminKey, "ps:limit hog worker memory=lots"), "memory=lots")
	refused(t, "an unknown type", in.SSH(in.AdminKey, "ps:limit hog clock memory=64M"), "no process type clock")
	r := in.SSH(in.AdminKey, "ps:limit hog worker memory=64M cpu=0.5 pids=64")
	if r.Code != 0 || !strings.Contains(r.Stdout, "memory=64M cpu=0.5 pids=64") {
		t.Fatalf("ps:limit: %s", r)
	}
	if r := in.SSH(in.AdminKey, "ps:limit hog"); r.Code != 0 || !strings.Contains(r.Stdout, "worker       memory=64M cpu=0.5 pids=64") {
		t.Errorf("ps:limit hog lists: %s", r)
	}
	// ps shows what the running worker's spec holds: ps:limit restarted it.
	if r := in.SSH(in.AdminKey, "ps hog"); r.Code != 0 || !strings.Contains(r.Stdout, "limits: memory=64M cpu=0.5 pids=64") {
		t.Errorf("ps hog does not show the worker's limits: %s", r)
	}

	// Part 3: the restart removed the old worker's watcher: its child,
	// orphaned when circus stopped it, went with it.
	var hog2, child2 int
	waitFor(t, "the restarted hog worker", func() bool { hog2, child2 = hogPids(t, nap); return hog2 > 0 && hog2 != hog1 && child2 > 0 })
	waitFor(t, fmt.Sprintf("the old worker's child sleep (pid %d) to be killed with its watcher", child1), func() bool { return !liveProcess(child1) })

	dir := memoryCgroupDir(hog2)
	t.Logf("worker %d (child %d) restarted as %d (child %d), in %s", hog1, child1, hog2, child2, dir)
	if dir != "" {
		if got := strings.TrimSpace(readFileString(t, filepath.Join(dir, "memory.limit_in_bytes"))); got != "67108864" {
			t.Errorf("the worker's memory cgroup %s has limit %s, want 64 MiB", dir, got)
		}
		if !strings.Contains(dir, "/conductor/") || !strings.HasSuffix(dir, "/1") {
			t.Errorf("the worker is in %s, not in a slot group of Conductor's", dir)
		}
	}

	// Part 4: over its limit, the worker is killed by the kernel and
	// circus starts it again, while both apps keep answering.
	var stop atomic.Bool
	var wg sync.WaitGroup
	failures := make(chan string, 100)
	for _, app := range []string{"calm", "hog"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if code, body, _ := in.Get(app, "/"); code != 200 {
					select {
					case failures <- fmt.Sprintf("%s answered %d: %.200s", app, code, body):
					default:
					}
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	writeFile(t, hogTrigger(nap), strconv.Itoa(hog2))
	var hog3 int
	waitFor(t, "circus to restart the worker killed over its memory limit", func() bool {
		hog3, _ = hogPids(t, nap)
		return hog3 > 0 && hog3 != hog2
	})
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("while the worker was killed: %s", f)
	}
	if dir != "" {
		oom := readFileString(t, filepath.Join(dir, "memory.oom_control"))
		t.Logf("worker %d killed over its limit, restarted as %d; memory.oom_control:\n%s", hog2, hog3, oom)
		if !strings.Contains(oom, "oom_kill 1") {
			t.Errorf("the worker's cgroup saw no OOM kill:\n%s", oom)
		}
	}
	// The killed worker's child was killed by its successor in its slot.
	waitFor(t, "the OOM-killed worker's child to be killed", func() bool { return !liveProcess(child2) })
	logs := in.SSH(in.AdminKey, "logs hog -n 200 --process worker").Stdout
	if strings.Count(logs, "conductor: starting worker.1") < 3 {
		t.Errorf("want three starts of worker.1 in its log:\n%s", logs)
	}

	// apps:destroy takes the worker and its child, and the groups.
	_, child3 := hogPids(t, nap)
	if r := in.SSH(in.AdminKey, "apps:destroy hog --confirm hog"); r.Code != 0 {
		t.Fatalf("apps:destroy: %s", r)
	}
	if child3 > 0 && liveProcess(child3) {
		t.Errorf("the worker's child (pid %d) outlived apps:destroy", child3)
	}
	if dir != "" {
		if _, err := os.Stat(filepath.Dir(filepath.Dir(dir))); err == nil {
			t.Errorf("the app's cgroup %s outlived apps:destroy", filepath.Dir(filepath.Dir(dir)))
		}
	}
	if code, _, _ := in.Get("calm", "/"); code != 200 {
		t.Errorf("calm answers %d after hog is gone", code)
	}

	// run: what the command backgrounds goes when it ends.
	runNap := base + 3
	r = in.SSH(in.AdminKey, fmt.Sprintf("run calm -- setsid sh -c 'sleep %d >/dev/null 2>&1 & echo started'", runNap))
	if r.Code != 0 || !strings.Contains(r.Stdout, "started") {
		t.Errorf("run: %s", r)
	}
	waitFor(t, "the run command's background sleep to be killed", func() bool { return len(pgrepExact(fmt.Sprintf("sleep %d", runNap))) == 0 })

	// A conductor killed during a build step: the step's command dies with
	// it (Pdeathsig), what it put in the background (out of its process
	// group, too) is killed when the conductor starts again.
	crashNap := base + 4
	writeFile(t, filepath.Join(calm, "slow.sh"), fmt.Sprintf("#!/bin/sh\nsetsid sleep %d >/dev/null 2>&1 &\nexec sleep 120\n", crashNap))
	writeFile(t, filepath.Join(calm, "Procfile"), "web: gunicorn hello.wsgi --log-file -\nrelease: sh slow.sh\n")
	in.Commit(calm, "a release that hangs")
	pushed := make(chan Result, 1)
	go func() { pushed <- in.Push(calm, "calm", "main") }()
	waitFor(t, "the hanging release step", func() bool { return len(pgrepExact(fmt.Sprintf("sleep %d", crashNap))) == 1 })
	in.Kill()
	<-pushed
	if pids := pgrepExact(fmt.Sprintf("sleep %d", crashNap)); len(pids) != 1 {
		t.Fatalf("want the background sleep alive after the conductor's death, for the restart to kill: %v", pids)
	}
	in.Start()
	if pids := pgrepExact(fmt.Sprintf("sleep %d", crashNap)); len(pids) != 0 {
		t.Errorf("the build step's background sleep outlived the conductor's restart: %v", pids)
	}
	waitFor(t, "calm served again after the restart", func() bool { code, _, _ := in.Get("calm", "/"); return code == 200 })
}

// TestNoCgroupsWorkerChildren: without cgroups (--cgroups=false), the
// child a worker left when its watcher is removed is still killed, found
// by its session, and a release command's background sleep in its
// process group too.
func TestNoCgroupsWorkerChildren(t *testing.T) {
	in := StartInstance(t, "--cgroups=false")
	base := 7000 + rand.IntN(2000)*3 + 1
	nap, stay := base, base+1
	t.Cleanup(func() {
		_ = exec.Command("pkill", "-x", "-f", fmt.Sprintf("sleep (%d|%d)", nap, stay)).Run()
	})
	work := in.WorkTree("hello")
	writeFile(t, filepath.Join(work, "hog.py"), hogPy)
	writeFile(t, filepath.Join(work, "release.sh"), fmt.Sprintf("#!/bin/sh\nsleep %d >/dev/null 2>&1 &\nexec python manage.py migrate --noinput\n", stay))
	writeFile(t, filepath.Join(work, "Procfile"), fmt.Sprintf(
		"web: gunicorn hello.wsgi --log-file -\nworker: python hog.py %s %d\nrelease: sh release.sh\n", hogTrigger(nap), nap))
	in.Commit(work, "a worker with a child")
	if r := in.Push(work, "plain-nocg", "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	if pids := pgrepExact(fmt.Sprintf("sleep %d", stay)); len(pids) > 0 {
		t.Errorf("the release command's background sleep outlived its step: %v", pids)
	}
	var hog1, child1 int
	waitFor(t, "the worker and its child", func() bool { hog1, child1 = hogPids(t, nap); return hog1 > 0 && child1 > 0 })
	if dir := memoryCgroupDir(hog1); strings.Contains(dir, "/conductor/") {
		t.Errorf("--cgroups=false, yet the worker is in %s", dir)
	}
	// The Procfile drops the worker: its watcher is removed.
	writeFile(t, filepath.Join(work, "Procfile"), "web: gunicorn hello.wsgi --log-file -\n")
	in.Commit(work, "no worker")
	if r := in.Push(work, "plain-nocg", "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	// The push does not wait for the old release's processes: they are
	// retired in the background (graceful_timeout), and what they left is
	// killed by session 5 s after that.
	deadline := time.Now().Add(30 * time.Second) // graceful_timeout (10 s) + 5 s, with room
	for (liveProcess(hog1) || liveProcess(child1)) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if liveProcess(hog1) {
		t.Errorf("the worker (pid %d) runs on", hog1)
	}
	if liveProcess(child1) {
		t.Errorf("the worker's child (pid %d) outlived its watcher", child1)
		_ = syscall.Kill(child1, syscall.SIGKILL)
	}
}

func readFileString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
