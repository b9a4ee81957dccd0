package cgroup

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Start starts cmd inside the group, so that not even a child it forks at
// once is left outside. On v2 the kernel starts it there (clone3 with
// CLONE_INTO_CGROUP). On v1, where membership is per thread, the thread
// that forks is moved into the group for the fork and back after it. On a
// disabled Manager it is cmd.Start.
func (g *Group) Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	switch g.m.version {
	case V2:
		fd, err := unix.Open(g.dirs()[0], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("cgroup: open %s: %w", g.rel, err)
		}
		defer unix.Close(fd)
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		return cmd.Start()
	case V1:
		return g.startV1(cmd)
	}
	return cmd.Start()
}

// startV1 forks from a locked OS thread that sits in the group meanwhile.
// Go's runtime starts no new thread from a locked one, so only the child
// lands in the group. If the thread cannot go back, it is not unlocked:
// the runtime then ends it with the goroutine instead of reusing it.
func (g *Group) startV1(cmd *exec.Cmd) error {
	type result struct{ err error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		tid := unix.Gettid()
		task := "/proc/self/task/" + strconv.Itoa(tid) + "/cgroup"
		data, err := os.ReadFile(task)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{fmt.Errorf("cgroup: %w", err)}
			return
		}
		own := parseProcCgroup(data)
		var back []string // each hierarchy's tasks file the thread came from
		for _, h := range g.m.v1 {
			p, ok := own.byCtrl[h.controller]
			if !ok {
				continue
			}
			if dir := pathIn(h.mount, p); dir != "" {
				back = append(back, filepath.Join(dir, "tasks"))
			}
		}
		if len(back) != len(g.m.v1) {
			// The thread's own groups are not all in view: it could not
			// go back. Start, then move the child (a fork it makes at
			// once may be left behind).
			runtime.UnlockOSThread()
			err := cmd.Start()
			if err == nil {
				err = g.Add(cmd.Process.Pid)
			}
			done <- result{err}
			return
		}
		moved := 0
		for _, d := range g.dirs() {
			if err = writeFile(filepath.Join(d, "tasks"), strconv.Itoa(tid)); err != nil {
				break
			}
			moved++
		}
		if err == nil {
			err = cmd.Start()
		}
		restored := true
		for _, t := range back {
			if werr := writeFile(t, strconv.Itoa(tid)); werr != nil {
				restored = false
			}
		}
		if restored || moved == 0 {
			runtime.UnlockOSThread()
		}
		done <- result{err}
	}()
	return (<-done).err
}
