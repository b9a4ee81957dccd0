// Package circus runs Conductor's own circusd as a child and manages the
// apps' watchers: one ini file per watcher in an include dir, applied with
// circus's reloadconfig (which leaves unchanged watchers running) and
// removed with rm before the file goes, over circusd's control socket
// (client.go).
package circus

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/hasadna/conductor/internal/lazyre"
	"github.com/hasadna/conductor/supervisor"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.ParseFS(templateFS, "templates/*.tmpl"))

// Circus is Conductor's circusd under Dir.
type Circus struct {
	Bin   string // directory holding circusd
	Dir   string // circus.ini, sockets, watchers/
	Owner string // user owning the control socket

	// System: circusd runs as its own service, from the configuration
	// WriteConfig wrote when Conductor was installed. Start then only waits
	// for it to answer and nothing here stops it, so restarting Conductor
	// leaves the apps running.
	System      bool
	WatchersDir string // circusd's include dir ("" means Dir/watchers)

	mu   sync.Mutex  // guards sock
	sock zmq4.Socket // connection for read-only commands, dialed on first use

	// The lane: circusd runs one changing command at a time, so ours go
	// one after the other, each when the one before has its answer
	// (client.go).
	laneMu   sync.Mutex
	laneTail chan struct{} // closed when the last command in the lane has its answer
	laneSock zmq4.Socket   // used by the command at the head of the lane only

	dumpMu     sync.Mutex
	lastDumped time.Time // when circusd was last asked for its stacks (stuck.go)

	child *supervisor.Child
}

func (c *Circus) watchersDir() string {
	if c.WatchersDir != "" {
		return c.WatchersDir
	}
	return filepath.Join(c.Dir, "watchers")
}

func (c *Circus) endpoint() string { return "ipc://" + filepath.Join(c.Dir, "circus.sock") }

// iniSafe is what paths and names rendered into circus ini may contain:
// no newlines (a new key), no % (configparser interpolation), no spaces
// (circus splits cmd/args with shlex), no ; or # (comments).
var iniSafe = lazyre.New(`^[A-Za-z0-9_./:@+=-]+$`)

func checkIniSafe(values ...string) error {
	for _, v := range values {
		if !iniSafe.MatchString(v) {
			return fmt.Errorf("circus: %q contains characters that are unsafe in circus ini", v)
		}
	}
	return nil
}

// Config renders circusd's configuration: control socket and pid file
// under Dir, watchers included from the watchers dir.
func (c *Circus) Config() ([]byte, error) {
	if err := checkIniSafe(c.Dir, c.watchersDir(), c.Owner); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "circus.ini.tmpl", map[string]string{
		"Dir": c.Dir, "WatchersDir": c.watchersDir(), "Owner": c.Owner,
	}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Start writes circus.ini and starts circusd under supervision. Watchers
// left in the include dir by a previous run start again with it. With
// System set it only waits for the service's circusd to answer.
func (c *Circus) Start(ctx context.Context) error {
	if err := InstallStream(c.Bin); err != nil {
		return err
	}
	if c.System {
		return c.waitReady(ctx)
	}
	if err := os.MkdirAll(c.watchersDir(), 0o700); err != nil {
		return err
	}
	ini, err := c.Config()
	if err != nil {
		return err
	}
	conf := filepath.Join(c.Dir, "circus.ini")
	before, _ := os.ReadFile(conf)
	if err := os.WriteFile(conf, ini, 0o600); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(c.Dir, "circusd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	c.child = &supervisor.Child{
		Name: "circusd",
		Command: func() *exec.Cmd {
			cmd := exec.Command(filepath.Join(c.Bin, "circusd"), "--log-level", "info", conf)
			cmd.Stdout, cmd.Stderr = logFile, logFile
			return cmd
		},
		Stop:    syscall.SIGTERM, // circusd stops its watchers, each within graceful_timeout
		Grace:   stopGrace,
		PidFile: c.pidFile(),
		Ours:    c.Ours,
		// A circusd left running by a previous conductor is adopted, with
		// its apps, only if it answers on its control socket.
		Ready: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return c.Ping(ctx)
		},
	}
	if err := c.child.Start(ctx); err != nil {
		return fmt.Errorf("start circusd: %w", err)
	}
	if c.child.Adopted() && !bytes.Equal(before, ini) {
		// circusd reads its own settings only when it starts.
		slog.Warn("circus.ini changed: the running circusd (kept, with the apps) uses it after conductor stop-all and a start")
	}
	return c.waitReady(ctx)
}

// stopGrace is how long circusd may take to stop its watchers (each
// within GracefulTimeout) before it is killed.
const stopGrace = 30 * time.Second

func (c *Circus) pidFile() string { return filepath.Join(c.Dir, "circusd.pid") }

// Ours tells whether pid is a circusd Conductor started for this Dir: our
// user, running circus's circusd script with our circus.ini.
func (c *Circus) Ours(pid int) bool {
	return supervisor.Matches(pid, "", filepath.Join(c.Bin, "circusd"), filepath.Join(c.Dir, "circus.ini"))
}

// Adopted tells whether Start found Conductor's circusd still running
// (with the apps) from a previous run and kept it.
func (c *Circus) Adopted() bool { return c.child != nil && c.child.Adopted() }

// Shutdown stops the circusd of Dir, and so every app process, if one of
// Conductor's runs: the apps outlive Conductor otherwise. It returns the
// pid stopped, or 0 when none ran. Not for system mode's circusd, which
// its service runs.
func (c *Circus) Shutdown() int {
	pid := supervisor.ReadPidFile(c.pidFile())
	if pid == 0 || !supervisor.Alive(pid) || !c.Ours(pid) {
		return 0
	}
	supervisor.StopPid(pid, syscall.SIGTERM, stopGrace)
	return pid
}

// waitReady returns once circusd answers on its endpoint. circusd (a
// Python program) takes ~0.1–0.2 s to listen: asked again after 10 ms,
// doubling up to 100 ms, not every 200 ms.
func (c *Circus) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	wait := 10 * time.Millisecond
	for {
		if _, err := c.call(ctx, "list", nil); err == nil {
			return nil
		} else if time.Now().After(deadline) {
			return fmt.Errorf("circusd did not answer on %s within 30s: %w", c.endpoint(), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// Ping tells whether circusd answers on its endpoint now.
func (c *Circus) Ping(ctx context.Context) error {
	_, err := c.call(ctx, "list", nil)
	return err
}

// Wait returns once circusd's supervision has ended after Start's ctx
// ended. circusd itself goes on running the apps (see Shutdown).
func (c *Circus) Wait() {
	if c.child != nil {
		c.child.Wait()
	}
}

// Watcher is one supervised app process type.
type Watcher struct {
	App          string
	Name         string // lowercase, unique: <app>-<type>[-<port>]
	Cmd          string // the conductor binary
	Spec         string // process spec file passed to `conductor run-process`
	WorkingDir   string
	User         string // unix user to run as ("" to keep circusd's)
	NumProcesses int
	LogFile      string
	LogMaxBytes  int64 // rotate the log at this size (default 10 MiB)
	LogBackups   int   // rotated files kept (default 3)
}

// StreamClass is what the watcher's ini names as its stdout stream.
func (Watcher) StreamClass() string { return StreamClass }

func (c *Circus) watcherFile(name string) string {
	return filepath.Join(c.watchersDir(), name+".ini")
}

// Add writes a watcher's file and has circusd load it. Other watchers keep
// running untouched.
func (c *Circus) Add(ctx context.Context, w Watcher) error {
	if w.NumProcesses == 0 {
		w.NumProcesses = 1
	}
	if w.LogMaxBytes <= 0 {
		w.LogMaxBytes = 10 << 20
	}
	if w.LogBackups <= 0 {
		w.LogBackups = 3
	}
	ini, err := watcherIni(w)
	if err != nil {
		return err
	}
	path := c.watcherFile(w.Name)
	if err := os.WriteFile(path+".tmp", ini, 0o600); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	if _, err := c.call(ctx, "reloadconfig", map[string]any{"waiting": true}); err != nil {
		return fmt.Errorf("load watcher %s: %w", w.Name, err)
	}
	return nil
}

// watcherIni checks a watcher's values and renders its ini file. The app
// name is checked too: it is rendered in the header comment, where a
// newline would start a new key or section.
func watcherIni(w Watcher) ([]byte, error) {
	if err := checkIniSafe(w.App, w.Name, w.Cmd, w.Spec, w.WorkingDir, w.LogFile); err != nil {
		return nil, err
	}
	if w.User != "" {
		if err := checkIniSafe(w.User); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "watcher.ini.tmpl", w); err != nil {
		return nil, fmt.Errorf("render watcher %s: %w", w.Name, err)
	}
	return buf.Bytes(), nil
}

// Remove stops a watcher (gracefully, within its graceful_timeout) and
// deletes its file, returning once its processes have stopped. Removing an
// unknown watcher is not an error.
func (c *Circus) Remove(ctx context.Context, name string) error {
	if err := checkIniSafe(name); err != nil {
		return err
	}
	// Every watcher circusd runs has its file (Add writes it first): no
	// file, nothing to stop, and no round trip.
	if _, err := os.Stat(c.watcherFile(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var ce *circusError
	if _, err := c.call(ctx, "rm", map[string]any{"name": name, "waiting": true}); err != nil && !(asCircusError(err, &ce) && strings.Contains(ce.Reason, "not found")) {
		return fmt.Errorf("remove watcher %s: %w", name, err)
	}
	if err := os.Remove(c.watcherFile(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Retire removes a watcher without waiting for its processes to stop:
// circusd sends them the stop signal and gives them graceful_timeout to
// finish their requests. For a watcher that no longer gets traffic, so the
// caller need not wait for the slowest request. It returns at once: the
// rm takes its turn in the lane (client.go), and circusd answers it once
// the processes have stopped, when the next changing command goes. The
// watcher's file goes now; a reloadconfig queued after the rm cannot
// bring it back.
func (c *Circus) Retire(ctx context.Context, name string) error {
	if err := checkIniSafe(name); err != nil {
		return err
	}
	if _, err := os.Stat(c.watcherFile(name)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	c.background("rm", map[string]any{"name": name, "waiting": true}, GracefulTimeout+30*time.Second)
	if err := os.Remove(c.watcherFile(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Reload has circusd apply its watcher files as they are: watchers whose
// file is gone stop (it waits for them), those whose file is new start, the
// others run on untouched. For a circusd adopted from a conductor that was
// killed between a file's change and its command.
func (c *Circus) Reload(ctx context.Context) error {
	if _, err := c.call(ctx, "reloadconfig", map[string]any{"waiting": true}); err != nil {
		return fmt.Errorf("reload circusd's watchers: %w", err)
	}
	return nil
}

// Watchers returns the names of the watchers whose files are installed.
func (c *Circus) Watchers() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(c.watchersDir(), "*.ini"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".ini"))
	}
	return names, nil
}

var numProcessesRE = lazyre.New(`(?m)^numprocesses = \d+$`)

// Scale sets how many processes a watcher runs, now and in its ini file, so
// a later reloadconfig keeps the count (a numprocesses change alone only
// rescales; it does not restart the watcher).
func (c *Circus) Scale(ctx context.Context, name string, n int) error {
	if err := checkIniSafe(name); err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("scale %s: negative count %d", name, n)
	}
	path := c.watcherFile(name)
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("scale %s: %w", name, err)
	}
	data = numProcessesRE.ReplaceAll(data, []byte("numprocesses = "+strconv.Itoa(n)))
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	if _, err := c.call(ctx, "set", map[string]any{"name": name, "options": map[string]any{"numprocesses": n}}); err != nil {
		return fmt.Errorf("scale %s: %w", name, err)
	}
	return nil
}

// Pids returns the pids of a watcher's processes.
func (c *Circus) Pids(ctx context.Context, name string) ([]int, error) {
	if err := checkIniSafe(name); err != nil {
		return nil, err
	}
	reply, err := c.call(ctx, "list", map[string]any{"name": name})
	if err != nil {
		return nil, err
	}
	raw, _ := reply["pids"].([]any)
	pids := make([]int, 0, len(raw))
	for _, p := range raw {
		f, ok := p.(float64)
		if !ok {
			return nil, fmt.Errorf("circus list %s: unexpected pids %v", name, reply["pids"])
		}
		pids = append(pids, int(f))
	}
	return pids, nil
}

// Status returns circusd's status line per watcher ("active", "stopped"…).
func (c *Circus) Status(ctx context.Context) (map[string]string, error) {
	reply, err := c.call(ctx, "status", nil)
	if err != nil {
		return nil, err
	}
	raw, _ := reply["statuses"].(map[string]any)
	st := make(map[string]string, len(raw))
	for name, state := range raw {
		st[name], _ = state.(string)
	}
	return st, nil
}

// Pid is circusd's process id, from the pid file circus.ini names (in
// system mode too): the app processes it starts are in its cgroups.
func (c *Circus) Pid() (int, error) {
	data, err := os.ReadFile(filepath.Join(c.Dir, "circusd.pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("circusd.pid: bad pid %q", strings.TrimSpace(string(data)))
	}
	return pid, nil
}

// GracefulTimeout is how long circusd gives a stopping process before it
// kills it (graceful_timeout in watcher.ini.tmpl).
const GracefulTimeout = 10 * time.Second
