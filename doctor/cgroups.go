package doctor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hasadna/conductor/cgroup"
)

// Cgroups names the cgroup mode app processes get (ps:limit's limits are
// enforced only with one): that of the running circusd (circusDir's pid
// file), whose cgroup run-process makes its groups below, or this
// process's when circusd is not running.
func Cgroups(circusDir string, system bool) Result {
	const check = "cgroups"
	m, where := cgroup.Open(0), "this process's cgroup"
	if data, err := os.ReadFile(filepath.Join(circusDir, "circusd.pid")); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 {
			if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
				m, where = cgroup.Open(pid), "circusd's cgroup"
			}
		}
	}
	if m.Enabled() {
		return ok(check, "%s below %s (%s): ps:limit's limits are enforced, and what a stopped process leaves is killed", m.Mode(), m.Base(), where)
	}
	fix := "run Conductor as root on a host with the cgroup v2 memory, cpu and pids controllers (or v1 hierarchies for them) mounted writable"
	if system {
		fix = "the systemd units need Delegate=yes (conductor install writes them so: reinstall, then systemctl daemon-reload and restart conductor-circusd)"
	}
	return warn(check, fix, "%s (%s): ps:limit is not enforced; processes a stopped app process leaves are found by session only", m.Mode(), where)
}
