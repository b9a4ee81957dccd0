package gitserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/gliderlabs/ssh"
	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/process"
)

func (s *Server) runCmd(sess session) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run <app> -- <command>...",
		Short: "Run a one-off command in the app's current release, e.g. run app -- python manage.py migrate",
		Long: "Run a one-off command in the app's current release, as the app's user, with the environment\n" +
			"of its processes. Output is streamed and the command's exit status returned. Ask ssh for a\n" +
			"terminal (ssh -t) for interactive commands such as python manage.py createsuperuser.",
		Args: minArgs(2, "run <app> -- <command>..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			argv := args[1:]
			if argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return conductor.Errorf(conductor.EINVALID, "usage: run <app> -- <command>...")
			}
			return s.runOneOff(cmd.Context(), appFromContext(cmd.Context()), sess, argv)
		},
	}
	// Everything after the app is the command's, flags included.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// runOneOff runs argv (never through a shell) in the current release, as
// the app user, with the environment circus gives the app's web processes:
// it reads that release's web process spec, so nothing about the
// environment is computed twice.
func (s *Server) runOneOff(ctx context.Context, app *conductor.App, sess session, argv []string) error {
	cur, err := s.store.CurrentRelease(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		return conductor.Errorf(conductor.EINVALID, "%s has not been deployed yet: push first", app.Name)
	} else if err != nil {
		return err
	}
	specPath := filepath.Join(s.cfg.Layout.RunDir(app.Name), app.Name+"_web_"+strconv.Itoa(cur.Port)+".json")
	data, err := os.ReadFile(specPath)
	if err != nil {
		return fmt.Errorf("read the current release's process spec: %w", err)
	}
	var spec process.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("parse %s: %w", specPath, err)
	}
	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	// The web process's own binding: a one-off command serves nothing.
	delete(env, "PORT")
	delete(env, "GUNICORN_CMD_ARGS")

	bin := argv[0]
	if !strings.Contains(bin, "/") {
		if bin, err = process.LookPath(bin, env["PATH"]); err != nil {
			return conductor.Errorf(conductor.EINVALID, "%s: command not found", truncate(argv[0]))
		}
	}
	cred, err := appCredential(app.Name)
	if err != nil {
		return err
	}
	c := exec.CommandContext(ctx, bin)
	c.Args = argv
	c.Dir = spec.Dir
	// The process group goes when the client does, children included.
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = 5 * time.Second

	ptyReq, winCh, isPty := sess.Pty()
	if isPty {
		if ptyReq.Term != "" {
			env["TERM"] = ptyReq.Term
		}
		c.Env = process.Environ(env)
		err = runInPty(c, cred, sess, ptyReq, winCh)
	} else {
		c.Env = process.Environ(env)
		err = runPiped(c, cred, sess)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code := exit.ExitCode()
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		if code == 0 {
			return nil
		}
		return exitStatus(code)
	}
	return err
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

// runPiped runs c with the session's streams. Stdin is copied by hand and
// closed at the client's EOF, so Wait never waits for a client that keeps
// its stdin open.
func runPiped(c *exec.Cmd, cred *syscall.Credential, sess session) error {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	c.Stdout, c.Stderr = sess, sess.Stderr()
	stdin, err := c.StdinPipe()
	if err != nil {
		return err
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.Args[0], err)
	}
	go func() {
		_, _ = io.Copy(stdin, sess)
		stdin.Close()
	}()
	return c.Wait()
}

// runInPty runs c on a new pseudo-terminal, owned by the app user, as the
// controlling terminal of a new session, and relays it to the client.
func runInPty(c *exec.Cmd, cred *syscall.Credential, sess session, req ssh.Pty, winCh <-chan ssh.Window) error {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return fmt.Errorf("open pty: %w", err)
	}
	defer ptmx.Close()
	if cred != nil {
		if err := tty.Chown(int(cred.Uid), int(cred.Gid)); err != nil {
			tty.Close()
			return fmt.Errorf("chown pty: %w", err)
		}
	}
	setSize(ptmx, req.Window)
	c.Stdin, c.Stdout, c.Stderr = tty, tty, tty
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Credential: cred}
	err = c.Start()
	tty.Close() // the child has its copy; EOF on ptmx once it is gone
	if err != nil {
		return fmt.Errorf("start %s: %w", c.Args[0], err)
	}
	go func() {
		for w := range winCh {
			setSize(ptmx, w)
		}
	}()
	go func() { _, _ = io.Copy(ptmx, sess) }()
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(sess, ptmx) // ends with EIO when the last holder of the tty exits
		close(copied)
	}()
	err = c.Wait()
	select {
	case <-copied:
	case <-time.After(2 * time.Second): // a background child kept the tty
	}
	return err
}

func setSize(f *os.File, w ssh.Window) {
	if w.Width > 0 && w.Height > 0 {
		_ = pty.Setsize(f, &pty.Winsize{Rows: uint16(w.Height), Cols: uint16(w.Width)})
	}
}
