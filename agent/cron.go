package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/process"
)

// CronResult is how one cron run ended.
type CronResult struct {
	Code     int  // exit status (128+signal when killed)
	TimedOut bool // killed at the entry's timeout
}

// CronLog is the file, in the app's logs dir, that cron runs write to:
// `logs <app> --process cron` reads it like a process type's log.
const CronLog = "cron.log"

// RunCron runs a cron entry's command now, in the release serving on port:
// `bash -c <command>` (as a Procfile command runs) as the app user, in its
// own process group and cgroup, with the environment the release's
// processes have (read from its process spec, as `run` does), killed with
// everything it started at e.Timeout or when ctx ends. Its output goes to
// the app's logs/cron.log as lines of process name (cron.<run id>), and to
// tee as well when it is not nil (cron:run's session).
func (h *Host) RunCron(ctx context.Context, app string, port int, e conductor.CronEntry, name string, tee io.Writer) (CronResult, error) {
	if err := conductor.ValidateAppName(app); err != nil {
		return CronResult{}, err
	}
	spec, err := h.releaseSpec(app, port)
	if err != nil {
		return CronResult{}, err
	}
	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	delete(env, "PORT") // a cron run serves nothing
	delete(env, "GUNICORN_CMD_ARGS")
	cred, err := appCredential(app)
	if err != nil {
		return CronResult{}, err
	}
	logw, err := h.openCronLog(app)
	if err != nil {
		return CronResult{}, fmt.Errorf("open %s's cron log: %w", app, err)
	}
	defer logw.Close()

	timeout := e.Timeout
	if timeout <= 0 {
		timeout = conductor.DefaultCronTimeout
	}
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := exec.Command(process.Shell, "-c", e.Command)
	c.Dir = spec.Dir
	c.Env = process.Environ(env)
	// Its own process group; it dies with a killed conductor (whose next
	// start kills what it left with the cgroups).
	c.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.WaitDelay = 5 * time.Second
	group := h.runGroup(app)
	pr, pw, err := os.Pipe()
	if err != nil {
		return CronResult{}, err
	}
	c.Stdout, c.Stderr = pw, pw
	if group != nil {
		err = group.Start(c)
	} else {
		err = c.Start()
	}
	pw.Close()
	if err != nil {
		pr.Close()
		if group != nil {
			_ = group.Remove()
		}
		return CronResult{}, fmt.Errorf("start cron %s: %w", e.ID, err)
	}
	lw := &cronLines{f: logw, label: fmt.Sprintf("[%d %s]", c.Process.Pid, name), tee: tee}
	lw.line(fmt.Sprintf("%s%s (pid %d): %s: %s", process.StartLinePrefix, name, c.Process.Pid, e.ID, e.Command))
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(lw, pr)
		close(copied)
	}()
	killAll := func() {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		if group != nil {
			if err := group.Kill(); err != nil {
				slog.Warn("kill a cron run's cgroup", "app", app, "err", err)
			}
		}
	}
	waited := make(chan error, 1)
	go func() { waited <- c.Wait() }()
	var werr error
	select {
	case werr = <-waited:
	case <-runCtx.Done():
		killAll()
		werr = <-waited
	}
	killAll() // what it put in the background goes with it
	select {
	case <-copied:
	case <-time.After(5 * time.Second): // a process out of reach holds the pipe
	}
	pr.Close()
	<-copied
	lw.flush()
	if group != nil {
		_ = group.Remove()
	}
	res := CronResult{TimedOut: errors.Is(runCtx.Err(), context.DeadlineExceeded)}
	var exit *exec.ExitError
	switch {
	case errors.As(werr, &exit):
		res.Code = exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Code = 128 + int(ws.Signal())
		}
	case werr != nil:
		return res, werr
	}
	switch {
	case res.TimedOut:
		lw.line(fmt.Sprintf("conductor: %s timed out after %s: killed", name, timeout))
	case ctx.Err() != nil:
		lw.line(fmt.Sprintf("conductor: %s stopped: %v", name, context.Cause(ctx)))
	default:
		lw.line(fmt.Sprintf("conductor: %s exited with status %d", name, res.Code))
	}
	return res, nil
}

// releaseSpec reads a process spec of the release serving on port: its
// web process's, else (a worker-only app) another type's. Every type of a
// release has the same environment but PORT.
func (h *Host) releaseSpec(app string, port int) (*process.Spec, error) {
	dir := h.Layout.RunDir(app)
	names := []string{WebWatcher(app, port) + ".json"}
	if paths, err := filepath.Glob(filepath.Join(dir, app+"_*.json")); err == nil {
		sort.Strings(paths)
		for _, p := range paths {
			w := strings.TrimSuffix(filepath.Base(p), ".json")
			if _, wp, ok := process.ParseWatcher(app, w); ok && wp == port {
				names = append(names, filepath.Base(p))
			}
		}
	}
	var firstErr error
	for _, n := range names {
		s, err := process.ReadSpec(filepath.Join(dir, n)) // root's, no link
		if err == nil {
			return s, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("read the serving release's process spec: %w", firstErr)
}

// openCronLog opens logs/cron.log for appending, as circusd's stream opens
// a process log: the logs dir is root's and reached without links, the
// file is never a link or a FIFO, 0640 in the dir's group (the app's). It
// rotates at 10 MiB like the process logs (three old files kept).
func (h *Host) openCronLog(app string) (*os.File, error) {
	dir, err := safefs.OpenDir(h.Layout.ProjectDir(app), "logs")
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	var st unix.Stat_t
	if unix.Fstatat(dfd, CronLog, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size > cronLogMax {
		for i := 2; i >= 1; i-- {
			_ = unix.Renameat(dfd, fmt.Sprintf("%s.%d", CronLog, i), dfd, fmt.Sprintf("%s.%d", CronLog, i+1))
		}
		_ = unix.Renameat(dfd, CronLog, dfd, CronLog+".1")
	}
	fd, err := unix.Openat(dfd, CronLog, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), filepath.Join(h.Layout.LogDir(app), CronLog))
	var fst, dst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil || fst.Mode&unix.S_IFMT != unix.S_IFREG || int(fst.Uid) != os.Geteuid() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file of ours", f.Name())
	}
	if os.Geteuid() == 0 && unix.Fstat(dfd, &dst) == nil && fst.Gid != dst.Gid {
		_ = unix.Fchown(fd, -1, int(dst.Gid))
		_ = unix.Fchmod(fd, 0o640)
	}
	return f, nil
}

const cronLogMax = 10 << 20

// cronLines writes a run's output to the log a whole line at a time, each
// with the time and name prefix applogs reads ("<time> [<pid> cron.N] |
// text"), so runs writing at once never cut each other's lines.
type cronLines struct {
	mu      sync.Mutex
	f       *os.File
	label   string
	tee     io.Writer
	pending []byte
}

func (w *cronLines) Write(p []byte) (int, error) {
	if w.tee != nil {
		_, _ = w.tee.Write(p)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			break
		}
		w.write(string(w.pending[:i]))
		w.pending = w.pending[i+1:]
	}
	if len(w.pending) >= 64<<10 { // a line with no end is written as it is
		w.write(string(w.pending))
		w.pending = nil
	}
	return len(p), nil
}

// line writes a line of Conductor's own (not teed).
func (w *cronLines) line(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.write(s)
}

func (w *cronLines) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) > 0 {
		w.write(string(w.pending))
		w.pending = nil
	}
}

func (w *cronLines) write(s string) {
	// circus's stream writes local time the same way (watcher.ini.tmpl).
	_, _ = w.f.WriteString(time.Now().Format("2006-01-02T15:04:05.000000") + " " + w.label + " | " + s + "\n")
}

// CronRuns is what serves cron:run on this host: the scheduler, which
// records the run and refuses one while the entry's previous run goes on.
type CronRuns interface {
	RunNow(ctx context.Context, app, entry string, out io.Writer, started func(error)) (int, error)
}

// serveCronRun runs a cron entry for cron:run, relaying its output to the
// asker as `run` does (the asker's side is Client.Run).
func (h *Host) serveCronRun(ctx context.Context, nc *nats.Conn, req RunRequest, respond func(error)) {
	if h.Cron == nil {
		respond(conductor.Errorf(conductor.EUNAVAILABLE, "host %s runs no scheduler", h.Name))
		return
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &runSession{nc: nc, inbox: req.Inbox, cancel: cancel, heard: time.Now()}
	if err := s.subscribe(); err != nil {
		respond(err)
		return
	}
	defer s.unsubscribe()
	answered := false
	started := func(err error) {
		if !answered {
			answered = true
			respond(err)
		}
	}
	done := make(chan struct{})
	go s.beat(done, req.App)
	code, err := h.Cron.RunNow(runCtx, req.App, req.Cron, publisher{nc, req.Inbox + ".out"}, started)
	close(done)
	if !answered {
		started(err)
		return
	}
	if err != nil {
		_ = nc.Publish(req.Inbox+".err", []byte("error: "+conductor.ErrorMessage(err)+"\n"))
		code = 255
	}
	data, _ := json.Marshal(runExit{Code: code})
	_ = nc.Publish(req.Inbox+".exit", data)
	_ = nc.Flush()
}

// RunCron runs the app's cron entry id now on its host, relaying its
// output to stdio, and returns its exit status (cron:run).
func (c *Client) RunCron(ctx context.Context, app *conductor.App, id string, stdio Stdio) (int, error) {
	return c.run(ctx, app, RunRequest{App: app.Name, Cron: id}, stdio)
}
