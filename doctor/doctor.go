// Package doctor checks the host Conductor runs on: the programs it drives
// (nginx, circusd, python, git, the database clients), the Python
// interpreters registered for apps, the database servers, disk space, its
// ports, its state database and the permissions of its data dir. Each
// check is a named function that returns one Result: a status and one line
// saying what was found and, for a problem, the fix.
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/hasadna/conductor/nginx"
)

// Status is a check's verdict.
type Status string

// The statuses, in order of gravity.
const (
	OK   Status = "ok"
	Warn Status = "warn" // works now, but needs attention
	Fail Status = "FAIL" // Conductor cannot work like this
)

// Result is the outcome of one check.
type Result struct {
	Check  string `json:"check"`
	Status Status `json:"status"`
	Detail string `json:"detail"`        // what was found
	Fix    string `json:"fix,omitempty"` // what to do about it, for warn and FAIL
}

func ok(check, format string, args ...any) Result {
	return Result{Check: check, Status: OK, Detail: fmt.Sprintf(format, args...)}
}

func warn(check, fix, format string, args ...any) Result {
	return Result{Check: check, Status: Warn, Detail: fmt.Sprintf(format, args...), Fix: fix}
}

func fail(check, fix, format string, args ...any) Result {
	return Result{Check: check, Status: Fail, Detail: fmt.Sprintf(format, args...), Fix: fix}
}

// Config is what the checks look at: the paths, binaries, addresses and
// database servers of one Conductor, as `conductor serve` is given them.
type Config struct {
	Data         string // state: conductor.db, host key, repos
	Srv          string // apps: projects/ and environments/
	NginxBin     string
	NginxPrefix  string // nginx -p for NginxConf ("": none, as for the host's nginx)
	NginxConf    string // the nginx.conf that serves Conductor's sites, tested with nginx -t
	NginxPidFile string // its master's pid file: that nginx may hold the HTTP port
	NginxOwner   string // how to name that nginx ("Conductor's nginx")
	CircusBin    string // directory of circusd, inside the circus virtualenv
	CircusDir    string // Conductor's circusd: circusd.pid and its control socket
	CircusPins   map[string]string
	Python       string
	Pythons      string // registered interpreters (package pythons); "": not checked
	SSHAddr      string
	HTTPAddr     string
	PostgresDSN  string // "" when not configured
	MySQLDSN     string // "" when not configured
	System       bool   // installed by conductor install: circusd and conductor are systemd services
}

// initCommand is how this Conductor's state is made.
func (c Config) initCommand() string {
	if c.System {
		return "conductor install --admin-key YOUR_KEY.pub"
	}
	return "conductor init --data " + c.Data + " --admin-key YOUR_KEY.pub"
}

// circusHints are what starts circusd and what restarts it.
func (c Config) circusHints() (starts, restart string) {
	if c.System {
		return "its service conductor-circusd starts it", "systemctl restart conductor-circusd"
	}
	return "conductor serve starts it", "restart conductor serve, which restarts circusd"
}

// Run runs every check that applies to c, in a fixed order.
func Run(ctx context.Context, c Config) []Result {
	rs := []Result{
		NginxBinary(ctx, c.NginxBin),
		NginxJSModule(nginx.DefaultJSModule),
		NginxConfig(ctx, c.NginxBin, c.NginxPrefix, c.NginxConf),
		Circusd(ctx, c.CircusBin, c.CircusPins),
		CircusSocket(ctx, c.CircusDir, c.circusHints),
		Python(ctx, c.Python),
		Git(ctx),
		RedisServer(ctx, "redis-server"), // redis:create
	}
	if c.Pythons != "" {
		rs = append(rs, Pythons(c.Pythons))
	}
	if c.PostgresDSN != "" {
		rs = append(rs, Postgres(ctx, c.PostgresDSN), ClientTool(ctx, "pg_dump", "postgresql-client"))
	}
	if c.MySQLDSN != "" {
		rs = append(rs, MariaDB(ctx, c.MySQLDSN), ClientTool(ctx, "mariadb-dump", "mariadb-client"))
	}
	rs = append(rs, Disk("disk data", c.Data))
	if !SameFilesystem(c.Data, c.Srv) {
		rs = append(rs, Disk("disk srv", c.Srv))
	}
	owners := ConductorProcesses(c.NginxPidFile, c.NginxOwner)
	rs = append(rs,
		Port("ssh port", c.SSHAddr, "--ssh-addr", owners),
		Port("http port", c.HTTPAddr, "--http-addr", owners),
		StateDB(ctx, c.Data, c.initCommand()),
		DataDir(c.Data, c.initCommand()),
		ProtectedLinks(),
		Cgroups(c.CircusDir, c.System),
		DBBackups(ctx, c.Data),
	)
	return rs
}

// Failed tells whether any result is a FAIL.
func Failed(rs []Result) bool {
	for _, r := range rs {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// WriteText prints one line per result: status, check, detail and fix.
func WriteText(w io.Writer, rs []Result) error {
	width := 0
	for _, r := range rs {
		width = max(width, len(r.Check))
	}
	for _, r := range rs {
		line := fmt.Sprintf("%-4s  %-*s  %s", r.Status, width, r.Check, oneLine(r.Detail))
		if r.Fix != "" {
			line += " — fix: " + oneLine(r.Fix)
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON prints the results as a JSON array.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

// oneLine keeps a tool's multi-line message on the result's line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
