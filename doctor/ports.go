package doctor

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// ConductorProcesses names the processes that belong to a running
// Conductor and may hold its ports: the nginx serving its sites (the master
// named by nginxPidFile, and that master's workers), called label.
// conductor serve itself is recognized by its executable's name.
func ConductorProcesses(nginxPidFile, label string) map[int]string {
	owners := map[int]string{}
	if nginxPidFile == "" {
		return owners
	}
	master, alive := pidFromFile(nginxPidFile)
	if !alive {
		return owners
	}
	owners[master] = label
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, _ := strconv.Atoi(filepath.Base(p))
		if parentPid(pid) == master {
			owners[pid] = label
		}
	}
	return owners
}

// Port checks that addr is free for Conductor to listen on, or already held
// by Conductor itself.
func Port(check, addr, flag string, owners map[int]string) Result {
	if addr == "" {
		return ok(check, "not configured")
	}
	l, err := net.Listen("tcp", addr)
	if err == nil {
		l.Close()
		return ok(check, "%s is free", addr)
	}
	_, portStr, splitErr := net.SplitHostPort(addr)
	port, convErr := strconv.Atoi(portStr)
	if splitErr != nil || convErr != nil {
		return fail(check, "give "+flag+" as HOST:PORT", "%s: %v", addr, err)
	}
	pids := listeners(port)
	if len(pids) == 0 {
		return fail(check, "give "+flag+" an address of this host with a free port (run doctor as root to see who holds it)",
			"cannot listen on %s: %v", addr, err)
	}
	var others []string
	for _, pid := range pids {
		if who, found := owners[pid]; found {
			return ok(check, "%s is held by %s (pid %d)", addr, who, pid)
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); filepath.Base(exe) == "conductor" {
			return ok(check, "%s is held by conductor (pid %d)", addr, pid)
		}
		others = append(others, fmt.Sprintf("%s (pid %d)", processName(pid), pid))
	}
	return fail(check, "stop that program or give "+flag+" another port",
		"%s is in use by %s", addr, strings.Join(others, ", "))
}

// listeners returns the pids of the processes with a socket listening on
// TCP port, from /proc (all of them only when run as root).
func listeners(port int) []int {
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); err == nil && int(p) == port {
				inodes["socket:["+fields[9]+"]"] = true
			}
		}
		f.Close()
	}
	if len(inodes) == 0 {
		return nil
	}
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		fds, _ := filepath.Glob(filepath.Join(p, "fd", "*"))
		for _, fd := range fds {
			if target, err := os.Readlink(fd); err == nil && inodes[target] {
				pid, _ := strconv.Atoi(filepath.Base(p))
				pids = append(pids, pid)
				break
			}
		}
	}
	sort.Ints(pids)
	return pids
}

// processName is a process's command name from /proc.
func processName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "a process"
	}
	return strings.TrimSpace(string(b))
}

// parentPid reads a process's parent from /proc/PID/stat.
func parentPid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(s[i+1:])
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}
