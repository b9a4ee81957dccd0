// Package cgroup puts processes in kernel control groups: it finds which
// cgroup version the host has (v2, the unified hierarchy systemd uses, or the
// v1 memory, cpu and pids hierarchies), creates groups under the cgroup of a
// given process, sets their memory, CPU and process-count limits, starts or
// moves processes into them, lists and kills everything in a group, and
// removes it.
//
// Groups are made below the cgroup of a process (Open(pid)): under systemd
// that is the unit's own cgroup, which must be delegated (Delegate=yes) for
// its subtree to be ours to write. On v2, a cgroup that has processes of its
// own cannot give controllers to its children (the "no internal processes"
// rule), so the first group made moves the unit's own processes into the
// leaf MainLeaf and enables the controllers on the unit's cgroup.
//
// When nothing is writable (not root, no controllers mounted, a v2 cgroup not
// delegated to us) a Manager says so in Mode and every group operation is a
// no-op: limits are not enforced, and nothing fails because of it.
package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor/internal/lazyre"
)

// Version is which cgroup interface a Manager drives.
type Version int

// The versions.
const (
	None Version = iota // no writable cgroups: limits are not enforced
	V1                  // the legacy per-controller hierarchies
	V2                  // the unified hierarchy
)

// MainLeaf is the group that a delegated v2 cgroup's own processes are moved
// into, so that the cgroup may enable controllers for its children.
const MainLeaf = "conductor-main"

// controllers are the ones Conductor sets limits with.
var controllers = []string{"memory", "cpu", "pids"}

// Manager makes groups below one base cgroup.
type Manager struct {
	version Version
	reason  string // why version is None

	// v2: the base cgroup's directory.
	base string
	// delegated: the base is ours to reorganize (systemd's delegate xattr,
	// or the root of our cgroup namespace).
	delegated bool

	// v1: the base directory of each controller's hierarchy, in the order
	// of controllers (absent controllers are left out).
	v1 []hierarchy
}

type hierarchy struct {
	controller string
	base       string
	mount      mount // where the hierarchy is mounted
}

// Version is the cgroup version groups are made with.
func (m *Manager) Version() Version { return m.version }

// Enabled tells whether groups are made at all.
func (m *Manager) Enabled() bool { return m != nil && m.version != None }

// Mode says in words what the Manager does, for `conductor doctor`:
// "cgroup v2", "cgroup v1 (memory, cpu, pids)" or "none: limits not
// enforced (why)".
func (m *Manager) Mode() string {
	switch {
	case m == nil:
		return "none: limits not enforced"
	case m.version == V2:
		return "cgroup v2"
	case m.version == V1:
		var names []string
		for _, h := range m.v1 {
			names = append(names, h.controller)
		}
		return "cgroup v1 (" + strings.Join(names, ", ") + ")"
	}
	if m.reason != "" {
		return "none: limits not enforced (" + m.reason + ")"
	}
	return "none: limits not enforced"
}

// Base is the directory groups are made under (v2), or the first
// hierarchy's (v1); "" when disabled. For messages.
func (m *Manager) Base() string {
	switch {
	case m == nil:
		return ""
	case m.version == V2:
		return m.base
	case m.version == V1 && len(m.v1) > 0:
		return m.v1[0].base
	}
	return ""
}

// Disabled is a Manager that makes no groups, saying why.
func Disabled(reason string) *Manager { return &Manager{version: None, reason: reason} }

// Open finds the cgroups of process pid (0: this process) and returns a
// Manager for groups below them. It never fails: without writable cgroups
// it returns a disabled Manager whose Mode says why.
func Open(pid int) *Manager {
	if os.Geteuid() != 0 {
		return Disabled("not running as root")
	}
	proc := "self"
	if pid != 0 {
		proc = strconv.Itoa(pid)
	}
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Disabled(err.Error())
	}
	cg, err := os.ReadFile("/proc/" + proc + "/cgroup")
	if err != nil {
		return Disabled(err.Error())
	}
	return open(parseMountinfo(mountinfo), parseProcCgroup(cg))
}

// mount is one cgroup filesystem mount from /proc/self/mountinfo.
type mount struct {
	root, point string
	v2          bool
	controllers []string // v1: the controllers the hierarchy has
}

func parseMountinfo(data []byte) []mount {
	var out []mount
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// id parent maj:min root point opts [optional...] - fstype source superopts
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(lf) < 5 || len(rf) < 3 {
			continue
		}
		m := mount{root: unescapeMount(lf[3]), point: unescapeMount(lf[4])}
		switch rf[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			for _, o := range strings.Split(rf[2], ",") {
				for _, c := range controllers {
					if o == c {
						m.controllers = append(m.controllers, c)
					}
				}
			}
		default:
			continue
		}
		out = append(out, m)
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// procCgroup is /proc/<pid>/cgroup: the v2 path and each v1 controller's.
type procCgroup struct {
	v2     string // "" when the process has no v2 line
	hasV2  bool
	byCtrl map[string]string
}

func parseProcCgroup(data []byte) procCgroup {
	pc := procCgroup{byCtrl: map[string]string{}}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			pc.v2, pc.hasV2 = parts[2], true
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			pc.byCtrl[c] = parts[2]
		}
	}
	return pc
}

// pathIn is where cgroup path p of a hierarchy mounted at m is, or "" when
// the mount does not show it (a container's view of an outside cgroup).
func pathIn(m mount, p string) string {
	rel := p
	if m.root != "/" {
		r, ok := strings.CutPrefix(p, m.root)
		if !ok || (r != "" && !strings.HasPrefix(r, "/")) {
			return ""
		}
		rel = r
	}
	return filepath.Join(m.point, rel)
}

// dirOf is the base for groups of a process in cgroup path p: its cgroup,
// or, for a unit's own process that was moved into MainLeaf, the unit's.
func dirOf(m mount, p string) string {
	if path.Base(p) == MainLeaf {
		p = path.Dir(p)
	}
	return pathIn(m, p)
}

func open(mounts []mount, pc procCgroup) *Manager {
	// v2 when a cgroup2 hierarchy has the memory controller: a unified
	// host (/sys/fs/cgroup). A hybrid host's cgroup2 mount has none and
	// its controllers are v1's.
	for _, m := range mounts {
		if !m.v2 || !pc.hasV2 {
			continue
		}
		ctrls, err := os.ReadFile(filepath.Join(m.point, "cgroup.controllers"))
		if err != nil || !hasWord(string(ctrls), "memory") {
			continue
		}
		base := dirOf(m, pc.v2)
		if base == "" {
			return Disabled("this process's cgroup is outside the mounted cgroup2 hierarchy")
		}
		return openV2(base, pc.v2 == "/" || m.root != "/" && pc.v2 == m.root)
	}
	var hs []hierarchy
	for _, c := range controllers {
		for _, m := range mounts {
			if m.v2 || !hasString(m.controllers, c) {
				continue
			}
			p, ok := pc.byCtrl[c]
			if !ok {
				continue
			}
			if dir := dirOf(m, p); dir != "" {
				hs = append(hs, hierarchy{controller: c, base: dir, mount: m})
			}
			break
		}
	}
	if len(hs) == 0 {
		return Disabled("no cgroup v2 hierarchy with the memory controller and no cgroup v1 memory, cpu or pids hierarchy is mounted")
	}
	for _, h := range hs {
		if err := unix.Access(h.base, unix.W_OK); err != nil {
			return Disabled(fmt.Sprintf("%s is not writable: %v", h.base, err))
		}
	}
	return &Manager{version: V1, v1: hs}
}

// openV2 checks that base is ours to make groups in: writable, and either
// delegated (Delegate=yes sets the trusted.delegate xattr; the root of a
// cgroup namespace is ours too) or already giving the controllers to its
// children.
func openV2(base string, nsRoot bool) *Manager {
	if err := unix.Access(base, unix.W_OK); err != nil {
		return Disabled(fmt.Sprintf("%s is not writable: %v", base, err))
	}
	m := &Manager{version: V2, base: base, delegated: nsRoot || isDelegated(base)}
	if !m.delegated {
		sub, _ := os.ReadFile(filepath.Join(base, "cgroup.subtree_control"))
		if !hasWord(string(sub), "memory") {
			return Disabled(fmt.Sprintf("cgroup v2: %s is not delegated to Conductor (set Delegate=yes in its systemd unit)", base))
		}
	}
	return m
}

// isDelegated reads the xattr systemd (>= 251) puts on a delegated cgroup.
func isDelegated(dir string) bool {
	for _, name := range []string{"trusted.delegate", "user.delegate"} {
		buf := make([]byte, 8)
		if n, err := unix.Getxattr(dir, name, buf); err == nil && string(buf[:n]) == "1" {
			return true
		}
	}
	return false
}

func hasWord(s, w string) bool { return hasString(strings.Fields(s), w) }

func hasString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// nameRE is what one component of a group path may be: Conductor's app,
// watcher and instance names, and no "." (cgroupfs's own files all have one).
var nameRE = lazyre.New(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)

// ErrBadPath is returned for a group path that is not a relative path of
// plain names.
var ErrBadPath = errors.New("cgroup: bad group path")

func splitPath(rel string) ([]string, error) {
	if rel == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadPath)
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts {
		if !nameRE.MatchString(p) || p == MainLeaf {
			return nil, fmt.Errorf("%w: %q", ErrBadPath, rel)
		}
	}
	return parts, nil
}

// CheckPath tells whether rel is a group path Group accepts.
func CheckPath(rel string) error {
	_, err := splitPath(rel)
	return err
}
