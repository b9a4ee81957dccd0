package process

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Without cgroups, what an app process started is found by its session:
// circus makes each process it starts a session leader (setsid), and
// children stay in their parent's session unless they call setsid
// themselves. KillSessions sends SIGKILL, until none is left (at most
// about 5 s), to every process in one of the sessions sids that belongs to
// uid: a session id is free for reuse once its last process is gone, so
// the uid keeps another user's process safe. It returns how many it
// killed.
func KillSessions(sids []int, uid int) int {
	if len(sids) == 0 {
		return 0
	}
	want := map[int]bool{}
	for _, s := range sids {
		if s > 1 {
			want[s] = true
		}
	}
	self := os.Getpid()
	killed := map[int]bool{}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		found := 0
		entries, err := os.ReadDir("/proc")
		if err != nil {
			break
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == self || pid <= 1 {
				continue
			}
			sid, puid, ok := procSession(pid)
			if !ok || !want[sid] || puid != uid {
				continue
			}
			found++
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed[pid] = true
			}
		}
		if found == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return len(killed)
}

// procSession reads a process's session id and real uid; a zombie (which
// SIGKILL cannot help) is skipped.
func procSession(pid int) (sid, uid int, ok bool) {
	p := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(p + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// pid (comm) state ppid pgrp session ...: comm may hold spaces and ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 4 || f[0] == "Z" {
		return 0, 0, false
	}
	sid, err = strconv.Atoi(f[3])
	if err != nil {
		return 0, 0, false
	}
	// The real uid from status: /proc/<pid> itself is root's for a
	// process that is not dumpable.
	status, err := os.ReadFile(p + "/status")
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, found := strings.CutPrefix(line, "Uid:"); found {
			if f := strings.Fields(rest); len(f) > 0 {
				if uid, err = strconv.Atoi(f[0]); err == nil {
					return sid, uid, true
				}
			}
		}
	}
	return 0, 0, false
}
