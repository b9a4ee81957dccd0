// Package procnet reads who listens on a TCP port: the listening (or
// established) sockets, from the kernel's sock_diag over netlink, or from
// /proc/net/tcp and tcp6 where netlink is not allowed, and the processes
// holding them (a socket's inode among the descriptors of /proc/<pid>/fd). The builder uses
// it to tell an app's own process from another program on the app's port,
// and (Activity) to tell a process that has booted and waits for work from
// one still starting.
package procnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TCP states (the kernel's numbers; /proc/net/tcp's st column shows them
// in hex).
const (
	stateEstablished uint8 = 1
	stateListen      uint8 = 10
)

// Socket is a listening TCP socket.
type Socket struct {
	Port  int
	Inode uint64
}

// ParseListening returns the listening sockets of a /proc/net/tcp or
// /proc/net/tcp6 table (any local address).
func ParseListening(r io.Reader) ([]Socket, error) { return parseSockets(r, stateListen) }

// parseSockets returns the sockets of a /proc/net/tcp or tcp6 table in
// state, by local port.
func parseSockets(r io.Reader, state uint8) ([]Socket, error) {
	st := fmt.Sprintf("%02X", state)
	var out []Socket
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		if f[3] != st {
			continue
		}
		_, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			return nil, fmt.Errorf("procnet: bad local address %q", f[1])
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			return nil, fmt.Errorf("procnet: bad port in %q: %w", f[1], err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("procnet: bad inode %q: %w", f[9], err)
		}
		out = append(out, Socket{Port: int(port), Inode: inode})
	}
	return out, sc.Err()
}

// Listening returns the sockets listening on port (IPv4 and IPv6, any
// address) in this network namespace.
func Listening(port int) ([]Socket, error) { return sockets(port, stateListen) }

// Established returns the connections whose local end is port: to a
// server on port, those it serves and those waiting in its accept queue.
func Established(port int) ([]Socket, error) { return sockets(port, stateEstablished) }

// sockets returns the TCP sockets in state on local port: from the
// kernel's sock_diag (diag.go), or, where netlink is not allowed, from
// /proc/net/tcp and tcp6.
func sockets(port int, state uint8) ([]Socket, error) {
	var out []Socket
	v4, err := diagSockets(unix.AF_INET, state)
	if err == nil {
		v6, err6 := diagSockets(unix.AF_INET6, state)
		if err6 != nil && !errors.Is(err6, unix.ENOENT) && !errors.Is(err6, unix.EAFNOSUPPORT) { // no IPv6 is none
			err = err6
		}
		for _, s := range append(v4, v6...) {
			if s.Port == port {
				out = append(out, s)
			}
		}
	}
	if err == nil {
		return out, nil
	}
	return procSockets(port, state)
}

// procSockets is sockets from /proc/net/tcp and tcp6.
func procSockets(port int, state uint8) ([]Socket, error) {
	var out []Socket
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if errors.Is(err, os.ErrNotExist) { // no IPv6
			continue
		}
		if err != nil {
			return nil, err
		}
		all, err := parseSockets(f, state)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", table, err)
		}
		for _, s := range all {
			if s.Port == port {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// Stat is what Conductor reads of a process's /proc/<pid>/stat.
type Stat struct {
	State byte   // R running, S sleeping, D disk wait, Z zombie…
	PPID  int    // its parent
	Ticks uint64 // CPU time used (utime + stime), in clock ticks
}

// ParseStat reads the text of /proc/<pid>/stat.
func ParseStat(stat []byte) (Stat, error) {
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Stat{}, errors.New("procnet: malformed stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 || len(f[0]) != 1 {
		return Stat{}, errors.New("procnet: malformed stat")
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("procnet: ppid: %w", err)
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Stat{}, fmt.Errorf("procnet: cpu time: %w", err)
	}
	return Stat{State: f[0][0], PPID: ppid, Ticks: utime + stime}, nil
}

// ParsePPID returns the parent pid from the text of /proc/<pid>/stat.
func ParsePPID(stat []byte) (int, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("procnet: malformed stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, errors.New("procnet: malformed stat")
	}
	return strconv.Atoi(f[1])
}

// Activity sums the CPU time of pids and tells whether every thread of
// every one of them is asleep (state S: waiting for something, not
// running, runnable or in a disk wait); a pid that is gone makes it an
// error. Every thread, not the process's own state, which is its main
// thread's: a Go or threaded program's main thread can wait on a futex
// while another thread has work and, on a loaded machine, waits for a CPU
// without using any.
func Activity(pids []int) (ticks uint64, asleep bool, err error) {
	asleep = true
	for _, p := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(p))
		b, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			return 0, false, err
		}
		st, err := ParseStat(b)
		if err != nil {
			return 0, false, err
		}
		ticks += st.Ticks
		if !asleep {
			continue
		}
		tasks, err := os.ReadDir(filepath.Join(dir, "task"))
		if err != nil {
			return 0, false, err
		}
		for _, task := range tasks {
			b, err := os.ReadFile(filepath.Join(dir, "task", task.Name(), "stat"))
			if err != nil {
				asleep = false // the thread ended meanwhile: not idle
				break
			}
			if ts, err := ParseStat(b); err != nil || ts.State != 'S' {
				asleep = false
				break
			}
		}
	}
	return ticks, asleep, nil
}

// Cmdline is a process's command line as it reads in /proc (arguments
// each ended by a NUL), "" when it cannot be read.
func Cmdline(pid int) string {
	b, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return string(b)
}

// Exe is the program a process runs (its /proc/<pid>/exe link), "" when
// it cannot be read.
func Exe(pid int) string {
	exe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	return exe
}

// Tree returns roots and all their descendants, given each process's
// parent.
func Tree(parent map[int]int, roots []int) []int {
	children := map[int][]int{}
	for pid, pp := range parent {
		children[pp] = append(children[pp], pid)
	}
	out, _ := walk(roots, func(p int) ([]int, error) { return children[p], nil })
	return out
}

// Descendants returns roots and all their live descendants, read from
// each process's /proc/<pid>/task/<tid>/children: only the processes of
// the tree are read, where Tree(Parents(), roots) reads every process on
// the host. On a kernel without those files (CONFIG_PROC_CHILDREN) it is
// Tree(Parents(), roots).
func Descendants(roots []int) []int {
	out, err := walk(roots, children)
	if errors.Is(err, errNoChildrenFile) {
		return Tree(Parents(), roots)
	}
	return out
}

// walk returns roots and every process below them, breadth first, each
// once, asking kids for a process's children; it stops at kids' first
// error.
func walk(roots []int, kids func(int) ([]int, error)) ([]int, error) {
	seen := map[int]bool{}
	var out []int
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
		k, err := kids(p)
		if err != nil {
			return out, err
		}
		queue = append(queue, k...)
	}
	return out, nil
}

// errNoChildrenFile: the kernel has no /proc/<pid>/task/<tid>/children.
var errNoChildrenFile = errors.New("no /proc/<pid>/task/<tid>/children")

// children lists a process's children: each thread's children file names
// those that thread started. A process that is gone has none.
func children(pid int) ([]int, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil // exited meanwhile
	}
	var kids []int
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "children"))
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(filepath.Join(dir, task.Name())); serr == nil {
				return nil, errNoChildrenFile // the thread is there, the file not
			}
			continue // the thread ended meanwhile
		} else if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids, nil
}

// Parent reads a process's parent from /proc; false when it is gone.
func Parent(pid int) (int, bool) {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, false
	}
	pp, err := ParsePPID(stat)
	return pp, err == nil
}

// Parents reads every live process's parent from /proc.
func Parents() map[int]int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		if pp, err := ParsePPID(stat); err == nil {
			parent[pid] = pp
		}
	}
	return parent
}

// SocketInode returns the inode of a /proc/<pid>/fd link's target
// ("socket:[12345]"), or false for anything else.
func SocketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// SocketInodes returns the inodes of the sockets the processes hold open.
func SocketInodes(pids []int) map[uint64]bool {
	out := map[uint64]bool{}
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // exited meanwhile
		}
		for _, e := range entries {
			link, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			if n, ok := SocketInode(link); ok {
				out[n] = true
			}
		}
	}
	return out
}

// Foreign returns the sockets listening on port that none of the processes
// roots or their descendants holds, and whether anything listens at all.
func Foreign(port int, roots []int) (foreign []Socket, listening bool, err error) {
	socks, err := Listening(port)
	if err != nil || len(socks) == 0 {
		return nil, false, err
	}
	var ours map[uint64]bool
	if len(roots) > 0 {
		ours = SocketInodes(Descendants(roots))
	}
	for _, s := range socks {
		if !ours[s.Inode] {
			foreign = append(foreign, s)
		}
	}
	return foreign, true, nil
}
