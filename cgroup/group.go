package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Limits are what the kernel holds one group to. Zero means no limit.
type Limits struct {
	MemoryBytes int64 `json:"memory_bytes,omitempty"` // memory (swap included) in bytes
	CPUMillis   int64 `json:"cpu_millis,omitempty"`   // CPU time in thousandths of a CPU: 1500 is 1.5 CPUs
	Pids        int64 `json:"pids,omitempty"`         // processes and threads
}

// IsZero tells whether no limit is set.
func (l Limits) IsZero() bool { return l == Limits{} }

// cpuPeriod is the CFS period CPU quotas are given in (µs), the kernel's
// default.
const cpuPeriod = 100000

// Group is one cgroup, named by a path relative to the Manager's base. The
// same path names it in every v1 hierarchy.
type Group struct {
	m     *Manager
	rel   string
	parts []string
}

// Group names a group below the base; nothing is made until Create. rel is
// slash-separated plain names ("conductor/<id>/<app>/<watcher>/1").
func (m *Manager) Group(rel string) (*Group, error) {
	parts, err := splitPath(rel)
	if err != nil {
		return nil, err
	}
	return &Group{m: m, rel: rel, parts: parts}, nil
}

// Path is the group's path relative to the base.
func (g *Group) Path() string { return g.rel }

// dirs are the group's directories: one on v2, one per hierarchy on v1.
func (g *Group) dirs() []string {
	switch g.m.version {
	case V2:
		return []string{filepath.Join(append([]string{g.m.base}, g.parts...)...)}
	case V1:
		var out []string
		for _, h := range g.m.v1 {
			out = append(out, filepath.Join(append([]string{h.base}, g.parts...)...))
		}
		return out
	}
	return nil
}

// Create makes the group and its parents. On v2 each parent gives the
// memory, cpu and pids controllers to its children; a delegated base whose
// own processes are in the way has them moved into MainLeaf first.
func (g *Group) Create() error {
	switch g.m.version {
	case V1:
		for _, d := range g.dirs() {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return fmt.Errorf("cgroup: %w", err)
			}
		}
		return nil
	case V2:
		if err := g.m.enableBase(); err != nil {
			return err
		}
		dir := g.m.base
		for i, p := range g.parts {
			dir = filepath.Join(dir, p)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("cgroup: %w", err)
			}
			if i < len(g.parts)-1 {
				if err := enableControllers(dir); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// enableBase makes the base give the controllers to its children. A
// cgroup with processes of its own cannot (EBUSY): when the base is ours,
// its processes move into MainLeaf.
func (m *Manager) enableBase() error {
	err := enableControllers(m.base)
	if err == nil || !errors.Is(err, unix.EBUSY) || !m.delegated {
		return err
	}
	leaf := filepath.Join(m.base, MainLeaf)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("cgroup: %w", err)
	}
	// Processes may fork while they are moved: a few rounds.
	for range 10 {
		pids, err := readPids(filepath.Join(m.base, "cgroup.procs"))
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			if err := writeFile(filepath.Join(leaf, "cgroup.procs"), strconv.Itoa(pid)); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
		}
	}
	return enableControllers(m.base)
}

// enableControllers writes +memory +cpu +pids (those the cgroup has) into
// its cgroup.subtree_control.
func enableControllers(dir string) error {
	have, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	on, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	var add []string
	for _, c := range controllers {
		if hasWord(string(have), c) && !hasWord(string(on), c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	return writeFile(filepath.Join(dir, "cgroup.subtree_control"), strings.Join(add, " "))
}

// SetLimits sets (or, for zero values, lifts) the group's limits. Swap is
// held to the memory limit too, so a limit is not a slower way to grow.
func (g *Group) SetLimits(l Limits) error {
	switch g.m.version {
	case V2:
		dir := g.dirs()[0]
		mem, swap := "max", "max"
		if l.MemoryBytes > 0 {
			mem, swap = strconv.FormatInt(l.MemoryBytes, 10), "0"
		}
		cpu := "max " + strconv.Itoa(cpuPeriod)
		if l.CPUMillis > 0 {
			cpu = strconv.FormatInt(quota(l.CPUMillis), 10) + " " + strconv.Itoa(cpuPeriod)
		}
		pids := "max"
		if l.Pids > 0 {
			pids = strconv.FormatInt(l.Pids, 10)
		}
		for _, w := range []struct{ file, value string }{
			{"memory.max", mem}, {"memory.swap.max", swap}, {"cpu.max", cpu}, {"pids.max", pids},
		} {
			if err := writeFile(filepath.Join(dir, w.file), w.value); err != nil {
				// A kernel without swap accounting has no memory.swap.max.
				if w.file == "memory.swap.max" && errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return err
			}
		}
	case V1:
		for i, dir := range g.dirs() {
			if err := setV1(g.m.v1[i].controller, dir, l); err != nil {
				return err
			}
		}
	}
	return nil
}

func quota(millis int64) int64 { return max(millis*cpuPeriod/1000, 1000) }

func setV1(controller, dir string, l Limits) error {
	switch controller {
	case "memory":
		limit := "-1"
		if l.MemoryBytes > 0 {
			limit = strconv.FormatInt(l.MemoryBytes, 10)
		}
		// memsw (memory+swap) may never be below the memory limit: lift
		// it, set the limit, then hold memsw to it.
		memsw := filepath.Join(dir, "memory.memsw.limit_in_bytes")
		_, err := os.Stat(memsw)
		hasSwap := err == nil
		if hasSwap {
			if err := writeFile(memsw, "-1"); err != nil {
				return err
			}
		}
		if err := writeFile(filepath.Join(dir, "memory.limit_in_bytes"), limit); err != nil {
			return err
		}
		if hasSwap && l.MemoryBytes > 0 {
			return writeFile(memsw, limit)
		}
	case "cpu":
		q := "-1"
		if l.CPUMillis > 0 {
			q = strconv.FormatInt(quota(l.CPUMillis), 10)
		}
		if err := writeFile(filepath.Join(dir, "cpu.cfs_period_us"), strconv.Itoa(cpuPeriod)); err != nil {
			return err
		}
		return writeFile(filepath.Join(dir, "cpu.cfs_quota_us"), q)
	case "pids":
		v := "max"
		if l.Pids > 0 {
			v = strconv.FormatInt(l.Pids, 10)
		}
		return writeFile(filepath.Join(dir, "pids.max"), v)
	}
	return nil
}

// Add moves process pid (all its threads) into the group.
func (g *Group) Add(pid int) error {
	for _, d := range g.dirs() {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// Pids lists the processes in the group and the groups below it.
func (g *Group) Pids() ([]int, error) {
	dirs := g.dirs()
	if len(dirs) == 0 {
		return nil, nil
	}
	// On v1 every process is in every hierarchy: the first one tells.
	var pids []int
	err := filepath.WalkDir(dirs[0], func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walked
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		p, err := readPids(filepath.Join(path, "cgroup.procs"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		pids = append(pids, p...)
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	slices.Sort(pids)
	return slices.Compact(pids), err
}

// Exists tells whether the group has been made.
func (g *Group) Exists() bool {
	dirs := g.dirs()
	if len(dirs) == 0 {
		return false
	}
	_, err := os.Stat(dirs[0])
	return err == nil
}

// KillTimeout bounds how long Kill waits for the group to empty.
var KillTimeout = 10 * time.Second

// Kill kills every process in the group and below it and returns once
// they are gone: with cgroup.kill on v2 (Linux 5.14), else by sending
// SIGKILL to each, again and again, so a process forked meanwhile goes too.
func (g *Group) Kill() error {
	dirs := g.dirs()
	if len(dirs) == 0 || !g.Exists() {
		return nil
	}
	if g.m.version == V2 {
		if err := writeFile(filepath.Join(dirs[0], "cgroup.kill"), "1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	self := os.Getpid()
	deadline := time.Now().Add(KillTimeout)
	for {
		pids, err := g.Pids()
		if err != nil {
			return err
		}
		pids = slices.DeleteFunc(pids, func(p int) bool { return p == self || p <= 1 })
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: %d processes still running after SIGKILL (%v)", g.rel, len(pids), pids)
		}
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Remove deletes the group and the groups below it; its processes must be
// gone (Kill). A group that does not exist is not an error.
func (g *Group) Remove() error {
	for _, d := range g.dirs() {
		var sub []string
		err := filepath.WalkDir(d, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if e.IsDir() {
				sub = append(sub, path)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		// Deepest first. A group just emptied can stay busy for a moment.
		for i := len(sub) - 1; i >= 0; i-- {
			var err error
			for try := 0; try < 50; try++ {
				if err = rmGroupDir(sub[i]); err == nil || !errors.Is(err, unix.EBUSY) {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				return fmt.Errorf("cgroup: remove %s: %w", sub[i], err)
			}
		}
	}
	return nil
}

// rmGroupDir removes one group directory. cgroupfs removes a group's
// files with it; a plain directory (the tests' stand-in for cgroupfs)
// needs them removed first.
func rmGroupDir(dir string) error {
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if errors.Is(err, unix.ENOTEMPTY) {
		if entries, rerr := os.ReadDir(dir); rerr == nil && onlyFiles(entries) {
			for _, e := range entries {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
			if err = unix.Rmdir(dir); err == nil {
				return nil
			}
		}
	}
	return err
}

func onlyFiles(entries []fs.DirEntry) bool {
	for _, e := range entries {
		if e.IsDir() {
			return false
		}
	}
	return true
}

// Children lists the names of the groups directly below the group.
func (g *Group) Children() ([]string, error) {
	dirs := g.dirs()
	if len(dirs) == 0 {
		return nil, nil
	}
	entries, err := os.ReadDir(dirs[0])
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && nameRE.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Destroy kills everything in the group and removes it.
func (g *Group) Destroy() error {
	if err := g.Kill(); err != nil {
		return err
	}
	return g.Remove()
}

func readPids(path string) ([]int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids, nil
}

// writeFile writes one value to a cgroup file. O_CREATE only matters for
// the tests' plain directories: cgroupfs has every file it accepts.
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|os.O_CREATE, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EACCES) {
			// cgroupfs refuses to create a file it does not have.
			if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
				return &fs.PathError{Op: "write", Path: path, Err: fs.ErrNotExist}
			}
		}
		return fmt.Errorf("cgroup: %w", err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cgroup: write %s to %s: %w", value, path, err)
	}
	return nil
}

// RemoveIfEmpty removes the group's own directory if nothing is in it or
// below it, and leaves it otherwise: for parents other instances or apps
// may share.
func (g *Group) RemoveIfEmpty() error {
	for _, d := range g.dirs() {
		err := unix.Rmdir(d)
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
			return fmt.Errorf("cgroup: remove %s: %w", d, err)
		}
	}
	return nil
}
