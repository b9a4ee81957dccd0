package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/nats-io/nats.go"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/cgroup"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/queue"
)

// A one-off command (`run app -- cmd…`) runs on the app's host and talks to
// the SSH session over NATS. The asker subscribes to <inbox>.> and sends a
// RunRequest to agent.<host>.run; the host starts the command, answers, and
// publishes its output on <inbox>.out and <inbox>.err, a heartbeat on
// <inbox>.beat and finally its exit status on <inbox>.exit. The asker
// sends stdin on <inbox>.in (an EOF header ends it), terminal size changes
// on <inbox>.win, a heartbeat on <inbox>.hb and <inbox>.kill when its
// client leaves. Either side that stops hearing the other ends the command.

// RunRequest asks a host to run a one-off command in an app's current
// release.
type RunRequest struct {
	App   string   `json:"app"`
	Port  int      `json:"port"` // the serving release's web port: its process spec gives the env
	Argv  []string `json:"argv"`
	Tty   *Window  `json:"tty,omitempty"` // run on a pseudo-terminal of this size
	Term  string   `json:"term,omitempty"`
	Inbox string   `json:"inbox"`
	// Cron, instead of Argv, runs the current release's cron entry of
	// this id (cron:run, cron.go).
	Cron string `json:"cron,omitempty"`
}

// Window is a terminal size.
type Window struct {
	Cols int `json:"cols"`
	Rows int `json:"rows"`
}

const (
	eofHeader   = "Conductor-EOF"
	runBeat     = 5 * time.Second
	runSilentIn = 4 * runBeat
)

type runExit struct {
	Code int `json:"code"`
}

// serveRun runs one command for an asker.
func (h *Host) serveRun(ctx context.Context, nc *nats.Conn, m *nats.Msg) {
	respond := func(err error) { _ = m.Respond(queue.EncodeReply(nil, err)) }
	req, err := decode[RunRequest](m.Data)
	if err != nil {
		respond(err)
		return
	}
	// The inbox names where output goes: only an inbox, never another
	// subject of the system.
	if !strings.HasPrefix(req.Inbox, nats.InboxPrefix) || strings.ContainsAny(req.Inbox, "*> ") {
		respond(conductor.Errorf(conductor.EINVALID, "run: bad inbox"))
		return
	}
	if req.Cron != "" {
		h.serveCronRun(ctx, nc, req, respond) // cron.go
		return
	}
	cmd, err := h.command(ctx, req)
	if err != nil {
		respond(err)
		return
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := &runSession{nc: nc, inbox: req.Inbox, cancel: cancel, heard: time.Now(), group: h.runGroup(req.App)}
	if err := s.subscribe(); err != nil {
		respond(err)
		return
	}
	defer s.unsubscribe()
	code, err := s.run(runCtx, cmd, req, respond)
	if err != nil {
		slog.Warn("one-off command", "app", req.App, "err", err)
		code = 255
	}
	data, _ := json.Marshal(runExit{Code: code})
	_ = nc.Publish(req.Inbox+".exit", data)
	_ = nc.Flush()
}

// command builds the command: argv (never through a shell) in the current
// release, as the app user, with the environment circus gives the app's web
// processes, read from that release's process spec so nothing about the
// environment is computed twice.
func (h *Host) command(ctx context.Context, req RunRequest) (*exec.Cmd, error) {
	if err := conductor.ValidateAppName(req.App); err != nil {
		return nil, err
	}
	if len(req.Argv) == 0 {
		return nil, conductor.Errorf(conductor.EINVALID, "usage: run <app> -- <command>...")
	}
	specPath := filepath.Join(h.Layout.RunDir(req.App), WebWatcher(req.App, req.Port)+".json")
	data, err := os.ReadFile(specPath)
	if err != nil {
		return nil, fmt.Errorf("read the current release's process spec: %w", err)
	}
	var spec process.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("parse %s: %w", specPath, err)
	}
	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	// The web process's own binding: a one-off command serves nothing.
	delete(env, "PORT")
	delete(env, "GUNICORN_CMD_ARGS")
	if req.Tty != nil && req.Term != "" {
		env["TERM"] = req.Term
	}
	bin := req.Argv[0]
	if !strings.Contains(bin, "/") {
		if bin, err = process.LookPath(bin, env["PATH"]); err != nil {
			return nil, conductor.Errorf(conductor.EINVALID, "%s: command not found", truncate(req.Argv[0]))
		}
	}
	cred, err := appCredential(req.App)
	if err != nil {
		return nil, err
	}
	c := exec.CommandContext(ctx, bin)
	c.Args = req.Argv
	c.Dir = spec.Dir
	c.Env = process.Environ(env)
	// It dies with a killed conductor (Reconcile then kills what it left).
	c.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	c.WaitDelay = 5 * time.Second
	return c, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// appCredential is the app's unix user when Conductor runs as root (and
// made that user); otherwise commands run as Conductor's own user, as the
// app's processes do.
func appCredential(app string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(app)
	if err != nil || u.Name != conductor.AppUserComment {
		return nil, fmt.Errorf("app user %s: not found or not made by conductor (%v)", app, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("app user %s: bad uid/gid %s/%s", app, u.Uid, u.Gid)
	}
	// Groups empty: none of root's supplementary groups carry over.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// runSession is the host's side of one command.
type runSession struct {
	nc     *nats.Conn
	inbox  string
	cancel context.CancelFunc
	subs   []*nats.Subscription

	// group is the command's cgroup (nil: its process group or session
	// stands in): all of it is killed when the command ends or the asker
	// leaves, so a backgrounded child does not outlive it.
	group *cgroup.Group

	mu    sync.Mutex
	stdin io.WriteCloser // the pipe or the pty
	pty   *os.File
	heard time.Time
}

func (s *runSession) subscribe() error {
	handlers := map[string]nats.MsgHandler{
		".in": func(m *nats.Msg) {
			s.mu.Lock()
			w := s.stdin
			s.heard = time.Now()
			s.mu.Unlock()
			if w == nil {
				return
			}
			if m.Header.Get(eofHeader) != "" {
				if s.pty == nil {
					_ = w.Close()
				}
				return
			}
			_, _ = w.Write(m.Data)
		},
		".win": func(m *nats.Msg) {
			var w Window
			s.mu.Lock()
			p := s.pty
			s.mu.Unlock()
			if p != nil && json.Unmarshal(m.Data, &w) == nil {
				setSize(p, w)
			}
		},
		".hb": func(*nats.Msg) {
			s.mu.Lock()
			s.heard = time.Now()
			s.mu.Unlock()
		},
		".kill": func(*nats.Msg) { s.cancel() },
	}
	for suffix, h := range handlers {
		sub, err := s.nc.Subscribe(s.inbox+suffix, h)
		if err != nil {
			s.unsubscribe()
			return fmt.Errorf("run: subscribe: %w", err)
		}
		s.subs = append(s.subs, sub)
	}
	return nil
}

func (s *runSession) unsubscribe() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
}

// publisher writes output to one of the inbox's subjects.
type publisher struct {
	nc      *nats.Conn
	subject string
}

func (p publisher) Write(b []byte) (int, error) {
	for rest := b; len(rest) > 0; {
		n := min(len(rest), 32<<10)
		if err := p.nc.Publish(p.subject, rest[:n]); err != nil {
			return 0, err
		}
		rest = rest[n:]
	}
	return len(b), nil
}

// run starts the command, answers the request (respond), relays its output
// and returns its exit status.
func (s *runSession) run(ctx context.Context, c *exec.Cmd, req RunRequest, respond func(error)) (int, error) {
	out := publisher{s.nc, s.inbox + ".out"}
	var copied chan struct{}
	if req.Tty != nil {
		ptmx, tty, err := pty.Open()
		if err != nil {
			respond(fmt.Errorf("open pty: %w", err))
			return 0, nil
		}
		defer ptmx.Close()
		if cred := c.SysProcAttr.Credential; cred != nil {
			if err := tty.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
				tty.Close()
				respond(fmt.Errorf("chown pty: %w", err))
				return 0, nil
			}
		}
		setSize(ptmx, *req.Tty)
		c.Stdin, c.Stdout, c.Stderr = tty, tty, tty
		c.SysProcAttr.Setsid, c.SysProcAttr.Setctty, c.SysProcAttr.Ctty = true, true, 0
		err = s.start(c)
		tty.Close() // the child has its copy; EOF on ptmx once it is gone
		if err != nil {
			respond(conductor.Errorf(conductor.EINVALID, "start %s: %v", truncate(c.Args[0]), err))
			return 0, nil
		}
		s.mu.Lock()
		s.stdin, s.pty = ptmx, ptmx
		s.mu.Unlock()
		copied = make(chan struct{})
		go func() {
			_, _ = io.Copy(out, ptmx) // ends with EIO when the last holder of the tty exits
			close(copied)
		}()
	} else {
		c.SysProcAttr.Setpgid = true
		c.Stdout, c.Stderr = out, publisher{s.nc, s.inbox + ".err"}
		stdin, err := c.StdinPipe()
		if err != nil {
			respond(err)
			return 0, nil
		}
		if err := s.start(c); err != nil {
			respond(conductor.Errorf(conductor.EINVALID, "start %s: %v", truncate(c.Args[0]), err))
			return 0, nil
		}
		s.mu.Lock()
		s.stdin = stdin
		s.mu.Unlock()
	}
	respond(nil)
	// Beat while the command runs; stop it if the asker went silent (its
	// conductor died without saying kill).
	done := make(chan struct{})
	defer close(done)
	go s.beat(done, req.App)
	err := c.Wait()
	s.killAll(c) // what it started in the background goes with it
	if copied != nil {
		select {
		case <-copied:
		case <-time.After(2 * time.Second): // a background child kept the tty
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code := exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return code, nil
	}
	return 0, err
}

// beat publishes heartbeats until done, and stops the command if the
// asker went silent (its conductor died without saying kill).
func (s *runSession) beat(done <-chan struct{}, app string) {
	t := time.NewTicker(runBeat)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			_ = s.nc.Publish(s.inbox+".beat", nil)
			s.mu.Lock()
			silent := time.Since(s.heard) > runSilentIn
			s.mu.Unlock()
			if silent {
				slog.Warn("one-off command: the asker went silent; stopping it", "app", app)
				s.cancel()
			}
		}
	}
}

// runGroup makes a cgroup for one command of app (nil without cgroups).
func (h *Host) runGroup(app string) *cgroup.Group {
	if !h.Cgroups.Enabled() || h.Instance == "" || conductor.ValidateAppName(app) != nil {
		return nil
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	g, err := h.Cgroups.Group(cgroup.RunPath(h.Instance, app, hex.EncodeToString(r[:])))
	if err == nil {
		err = g.Create()
	}
	if err != nil {
		slog.Warn("one-off command without its cgroup", "app", app, "err", err)
		return nil
	}
	return g
}

// start starts the command in the session's cgroup, and has a cancel (the
// asker left) kill all of it.
func (s *runSession) start(c *exec.Cmd) error {
	c.Cancel = func() error { s.killAll(c); return nil }
	if s.group != nil {
		return s.group.Start(c)
	}
	return c.Start()
}

// killAll kills the command's process group (it leads its group or
// session) and everything in its cgroup, and removes the cgroup once the
// command has been waited for.
func (s *runSession) killAll(c *exec.Cmd) {
	if c.Process != nil {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
	if s.group != nil {
		if err := s.group.Kill(); err != nil {
			slog.Warn("kill a one-off command's cgroup", "err", err)
		}
		if c.ProcessState != nil {
			_ = s.group.Remove()
		}
	}
}

func setSize(f *os.File, w Window) {
	if w.Cols > 0 && w.Rows > 0 {
		_ = pty.Setsize(f, &pty.Winsize{Rows: uint16(w.Rows), Cols: uint16(w.Cols)})
	}
}

// Stdio is the asker's side of a command: the SSH session.
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
	Tty      *Window       // nil: no terminal
	Term     string        // TERM of the client's terminal
	Resize   <-chan Window // terminal size changes
}

// Run runs argv in the app's current release (serving on port) on the
// app's host and relays it to stdio until it exits or ctx ends (the client
// left: the command is killed). It returns the command's exit status.
func (c *Client) Run(ctx context.Context, app *conductor.App, port int, argv []string, stdio Stdio) (int, error) {
	return c.run(ctx, app, RunRequest{App: app.Name, Port: port, Argv: argv, Tty: stdio.Tty, Term: stdio.Term}, stdio)
}

// run sends req (its inbox filled in here) and relays the command.
func (c *Client) run(ctx context.Context, app *conductor.App, req RunRequest, stdio Stdio) (int, error) {
	inbox := c.NC.NewInbox()
	req.Inbox = inbox
	exitc := make(chan int, 1)
	var outMu sync.Mutex
	var lastHeard time.Time
	heard := func() {
		outMu.Lock()
		lastHeard = time.Now()
		outMu.Unlock()
	}
	heard()
	sub, err := c.NC.Subscribe(inbox+".>", func(m *nats.Msg) {
		heard()
		switch strings.TrimPrefix(m.Subject, inbox) {
		case ".out":
			_, _ = stdio.Out.Write(m.Data)
		case ".err":
			_, _ = stdio.Err.Write(m.Data)
		case ".exit":
			var e runExit
			_ = json.Unmarshal(m.Data, &e)
			select {
			case exitc <- e.Code:
			default:
			}
		}
	})
	if err != nil {
		return 0, fmt.Errorf("run: subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	// Output may be large: the subscription buffers it rather than drop it.
	_ = sub.SetPendingLimits(-1, 256<<20)
	if err := c.call(ctx, app.Host, "run", req, nil); err != nil {
		return 0, err
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := stdio.In.Read(buf)
			if n > 0 {
				_ = c.NC.Publish(inbox+".in", buf[:n])
			}
			if err != nil {
				_ = c.NC.PublishMsg(&nats.Msg{Subject: inbox + ".in", Header: nats.Header{eofHeader: []string{"1"}}})
				return
			}
		}
	}()
	t := time.NewTicker(runBeat)
	defer t.Stop()
	for {
		select {
		case code := <-exitc:
			return code, nil
		case w, ok := <-stdio.Resize:
			if !ok {
				stdio.Resize = nil
				continue
			}
			data, _ := json.Marshal(w)
			_ = c.NC.Publish(inbox+".win", data)
		case <-t.C:
			_ = c.NC.Publish(inbox+".hb", nil)
			outMu.Lock()
			silent := time.Since(lastHeard) > runSilentIn
			outMu.Unlock()
			if silent {
				return 0, conductor.Errorf(conductor.EUNAVAILABLE, "host %s stopped answering: the command's outcome is unknown", app.Host)
			}
		case <-ctx.Done():
			_ = c.NC.Publish(inbox+".kill", nil)
			_ = c.NC.Flush()
			return 0, ctx.Err()
		}
	}
}
