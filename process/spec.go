package process

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor/cgroup"
	"github.com/hasadna/conductor/internal/safefs"
)

// Spec is everything needed to start one app process. Circus runs
// `conductor run-process <spec.json>` as the app user; that execs the real
// command. Keeping the command and environment in a JSON file means no user
// data is ever rendered into circus's ini (quotes, newlines, % and $ in config
// values are just JSON strings) and HOME is set, which circus does not do.
type Spec struct {
	Type string   `json:"type"` // process type, e.g. "web"
	Argv []string `json:"argv"` // ShellArgv(Command) for a Procfile command
	// Command is the Procfile's command line, shown in the log's start
	// line ("" in specs written before commands ran under bash).
	Command string            `json:"command,omitempty"`
	Env     map[string]string `json:"env"`
	Dir     string            `json:"dir"`

	// Set when Conductor runs as root. Circus then starts run-process as
	// root, which joins Cgroup and becomes UID/GID (enter.go) before it
	// reads or runs anything of the app.
	UID int `json:"uid,omitempty"`
	GID int `json:"gid,omitempty"`
	// Cgroup is the watcher's group (cgroup.WatcherPath), below the cgroup
	// run-process starts in (circusd's); each process gets its own group
	// <Cgroup>/<wid> with Limits. "" for none.
	Cgroup string        `json:"cgroup,omitempty"`
	Limits cgroup.Limits `json:"limits,omitzero"`
}

// Shell runs every Procfile command, as Heroku and Dokku run them: `bash
// -c <command>` as the app user, so pipes, &&, `VAR=value cmd` and $PORT
// mean what they mean in a shell. The command is the app's own code,
// passed whole as bash's script and never pieced together with anything
// else: it runs as its app user and may do what that user may. Bash (5.1
// and later) replaces itself with the last simple command of the script
// (`gunicorn x`, `A=1 celery worker`, `migrate && gunicorn x`), so circus's
// signals reach the process itself; what a pipeline or a wrapper script
// starts gets the stop signal too (the watcher's stop_children), and what
// is left once the watcher stops is killed by its cgroup or session
// (builder's stopWatcher).
const Shell = "/bin/bash"

// ShellArgv is the argv that runs a Procfile command.
func ShellArgv(cmd string) []string { return []string{Shell, "-c", cmd} }

// ValidateCommand checks what a Procfile command must be to be run at
// all: something, and no NUL byte (an exec argument cannot hold one). Its
// syntax is bash's business: a mistake shows in the process's log.
func ValidateCommand(cmd string) error {
	if strings.TrimSpace(cmd) == "" {
		return fmt.Errorf("empty command")
	}
	if strings.ContainsRune(cmd, 0) {
		return fmt.Errorf("the command holds a NUL byte")
	}
	return nil
}

// Environ returns env as sorted KEY=VALUE pairs.
func Environ(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// WriteSpec writes a spec file into the app's run dir, which is root's:
// the file is root's too, readable by the app's group (gid) and no one
// else, as it holds the app's secrets. It replaces whatever entry was there
// (a symlink left from when the dir was the app's included) and never
// writes through one.
func WriteSpec(path string, s *Spec, uid, gid int) error {
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	owner := 0
	if os.Geteuid() != 0 {
		owner, gid = safefs.Keep, safefs.Keep
	}
	_ = uid // the app reads its spec through its group; root owns it
	return safefs.WriteFile(filepath.Dir(path), filepath.Base(path), data, 0o640, owner, gid)
}

// The first line a process writes, which `logs` reads to name the pid's
// lines "web.1", "worker.2"… as Heroku does.
const StartLinePrefix = "conductor: starting "

// Exec replaces the current process with the spec's command, so circus's
// signals reach it directly. wid is circus's slot number for the process
// (1..numprocesses); stderr is joined to stdout so the log is one stream.
func Exec(specPath, wid string) error {
	sf, err := readSpec(specPath)
	if err != nil {
		return err
	}
	s := sf.Spec
	if len(s.Argv) == 0 {
		return fmt.Errorf("%s: empty command", specPath)
	}
	warnings, err := sf.enter(wid) // as root: cgroup, limits, then the app user
	if err != nil {
		return err
	}
	if err := os.Chdir(s.Dir); err != nil {
		return err
	}
	if err := unix.Dup2(1, 2); err != nil {
		return fmt.Errorf("join stderr to stdout: %w", err)
	}
	if wid != "" {
		shown := s.Command
		if shown == "" {
			shown = strings.Join(s.Argv, " ")
		}
		fmt.Printf("%s%s.%s (pid %d): %s\n", StartLinePrefix, s.Type, wid, os.Getpid(), shown)
	}
	for _, w := range warnings {
		fmt.Printf("conductor: warning: %s\n", w)
	}
	bin := s.Argv[0]
	if !strings.Contains(bin, "/") {
		bin, err = LookPath(bin, s.Env["PATH"])
		if err != nil {
			return err
		}
	}
	if tid := unix.Gettid(); tid != os.Getpid() {
		// The kernel retires the main thread first, and for that moment
		// the process looks like a zombie to circus (cmd/conductor's init
		// keeps the main goroutine on the main thread).
		fmt.Printf("conductor: warning: exec from thread %d, not the main thread\n", tid)
	}
	return syscall.Exec(bin, s.Argv, Environ(s.Env))
}

// LookPath finds a command on the spec's PATH, not Conductor's.
func LookPath(name, path string) (string, error) {
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
}

// Confine sets what in a spec decides whom the process runs as to the app
// user's ids, for a spec whose content root does not trust (one the app
// user once owned): whatever else it says runs as that user anyway.
// Its cgroup and limits go too: the next deploy or restart sets them.
func (s *Spec) Confine(uid, gid int) {
	s.UID, s.GID = uid, gid
	s.Cgroup, s.Limits = "", cgroup.Limits{}
}
