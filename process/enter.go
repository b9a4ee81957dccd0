package process

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor/cgroup"
	"github.com/hasadna/conductor/internal/lazyre"
)

// maxSpecSize bounds what run-process reads: a spec is a command and an
// environment (config values are at most 32 KiB each).
const maxSpecSize = 16 << 20

// specFile is a spec as read, with what the kernel says of its file.
type specFile struct {
	Spec
	uid, gid int
	mode     os.FileMode
}

// readSpec opens the spec without following a symlink in its last
// component, checks it is a regular file and parses it.
func readSpec(path string) (*specFile, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSpecSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSpecSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxSpecSize)
	}
	sf := &specFile{uid: int(st.Uid), gid: int(st.Gid), mode: os.FileMode(st.Mode & 0o7777)}
	if err := json.Unmarshal(data, &sf.Spec); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return sf, nil
}

// trusted tells whether only root could have written the spec: then it may
// name the user to become and the cgroup to join. A spec its app user owns
// (as specs were before they moved to a root-owned directory) is run as
// that owner, in no cgroup: it could name another app's.
func (sf *specFile) trusted() bool { return sf.uid == 0 && sf.mode&0o022 == 0 }

var widRE = lazyre.New(`^[0-9]{1,6}$`)

// enter is what run-process does as root before it runs anything of the
// app: put itself in the process's cgroup (<Cgroup>/<wid>, after killing
// whatever an earlier process of that slot left there) with the type's
// limits, then become the app user for good. It returns warnings to print
// once the log has the process's start line. Not as root, it does nothing:
// circus (or a developer) already runs it as the user it should be.
func (sf *specFile) enter(wid string) (warnings []string, err error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	uid, gid := sf.UID, sf.GID
	if !sf.trusted() {
		if sf.uid == 0 {
			return nil, fmt.Errorf("the process spec is writable by others than root (mode %o): refusing it", sf.mode)
		}
		if uid != 0 && uid != sf.uid {
			return nil, fmt.Errorf("the process spec names uid %d but belongs to uid %d: refusing it", uid, sf.uid)
		}
		uid, gid = sf.uid, sf.gid
		if sf.Cgroup != "" {
			warnings = append(warnings, "the process spec is not root's: the process runs in no cgroup and its limits are not enforced")
		}
	}
	if uid == 0 || gid == 0 {
		return nil, fmt.Errorf("the process spec names no app user (uid %d, gid %d): app processes never run as root", uid, gid)
	}
	if sf.trusted() && sf.Cgroup != "" {
		if err := joinCgroup(sf.Cgroup, wid, sf.Limits); err != nil {
			// Limits are not worth an app that does not start.
			warnings = append(warnings, "limits not enforced: "+err.Error())
		}
	}
	return warnings, dropPrivileges(uid, gid)
}

// joinCgroup moves this process into the watcher's group for slot wid.
func joinCgroup(watcherGroup, wid string, limits cgroup.Limits) error {
	m := cgroup.Open(0)
	if !m.Enabled() {
		if limits.IsZero() {
			return nil // nothing was asked that is lost
		}
		return fmt.Errorf("%s", m.Mode())
	}
	if wid == "" {
		wid = "1"
	}
	if !widRE.MatchString(wid) {
		return fmt.Errorf("bad process slot %q", wid)
	}
	g, err := m.Group(watcherGroup + "/" + wid)
	if err != nil {
		return err
	}
	if err := g.Create(); err != nil {
		return err
	}
	// A process of this slot that died may have left children: they are
	// not this process's, and would count against its limits.
	if err := g.Kill(); err != nil {
		return err
	}
	if err := g.SetLimits(limits); err != nil {
		return err
	}
	return g.Add(os.Getpid())
}

// dropPrivileges makes this process uid and gid, with the user's
// supplementary groups (or none), for every thread and for good: Go's
// Setuid and friends apply to all threads on Linux, and root's setuid sets
// the real, effective and saved ids alike.
func dropPrivileges(uid, gid int) error {
	groups := []int{gid}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if g, err := strconv.Atoi(s); err == nil && g != gid && g != 0 {
					groups = append(groups, g)
				}
			}
		}
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(gid); err != nil {
		return fmt.Errorf("setgid %d: %w", gid, err)
	}
	if err := syscall.Setuid(uid); err != nil {
		return fmt.Errorf("setuid %d: %w", uid, err)
	}
	if os.Getuid() != uid || os.Geteuid() != uid || os.Getgid() != gid || os.Getegid() != gid {
		return fmt.Errorf("still uid %d/%d gid %d/%d after dropping privileges", os.Getuid(), os.Geteuid(), os.Getgid(), os.Getegid())
	}
	if syscall.Setuid(0) == nil {
		return fmt.Errorf("could become root again after dropping privileges")
	}
	return nil
}

// ReadSpec reads a process spec the way run-process does: not through a
// symlink, a regular file only. The builder reads a watcher's spec to find
// its cgroup before it removes the watcher.
func ReadSpec(path string) (*Spec, error) {
	sf, err := readSpec(path)
	if err != nil {
		return nil, err
	}
	return &sf.Spec, nil
}
