package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gliderlabs/ssh"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/hooks"
	"github.com/hasadna/conductor/provision"
)

// AppFromRepoPath turns what git sends ("app", "/app", "app.git",
// "/app.git/") into an app name, refusing anything that is not exactly a
// valid app name, so no path can leave the repos dir.
func AppFromRepoPath(p string) (string, error) {
	name := strings.TrimSuffix(strings.TrimPrefix(p, "/"), "/")
	name = strings.TrimSuffix(name, ".git")
	if err := conductor.ValidateAppName(name); err != nil {
		return "", err
	}
	return name, nil
}

// RepoDir is the bare repository of an app.
func (s *Server) RepoDir(app string) string { return filepath.Join(s.cfg.ReposDir, app+".git") }

// serveGit runs git-receive-pack or git-upload-pack for an app with the real
// git binary and returns its exit status. A push goes into the audit trail.
func (s *Server) serveGit(sess ssh.Session, args []string) int {
	ctx := sess.Context()
	u := UserFromContext(ctx)
	push := args[0] == conductor.OpPush
	rec := &conductor.AuditEntry{At: time.Now(), User: u.Name, Fingerprint: FingerprintFromContext(ctx), Op: conductor.OpPush}
	code := s.git(ctx, sess, args, rec)
	if push {
		rec.Took = time.Since(rec.At)
		if rec.Outcome == "" {
			rec.Outcome = conductor.OutcomeOK
			if code != 0 {
				rec.Outcome, rec.Error = conductor.OutcomeFailed, fmt.Sprintf("git exited with status %d", code)
			}
		}
		// receive-pack exits 0 even when the hook declines the push: the
		// deploy's own status says how the push ended.
		if d := s.pushedDeploy(ctx, rec); d != nil {
			rec.DeployID = d.ID
			if d.Status == conductor.DeployFailed {
				rec.Outcome, rec.Error = conductor.OutcomeFailed, "deploy failed: "+firstLine(d.Error)
			}
		}
		if err := s.store.AddAudit(context.WithoutCancel(ctx), rec); err != nil {
			slog.Error("audit", "op", rec.Op, "user", rec.User, "err", err)
		}
	}
	return code
}

// pushedDeploy finds the deploy a push started: the hook (a separate
// process) makes it, so it is the newest deploy of the app by this user
// since the push began.
func (s *Server) pushedDeploy(ctx context.Context, rec *conductor.AuditEntry) *conductor.Deploy {
	if rec.App == "" || rec.Outcome == conductor.OutcomeDenied {
		return nil
	}
	app, err := s.store.FindApp(ctx, rec.App)
	if err != nil {
		return nil
	}
	deploys, err := s.store.ListDeploys(ctx, app.ID)
	if err != nil {
		return nil
	}
	since := rec.At.Add(-time.Millisecond) // the store keeps milliseconds
	for _, d := range deploys {            // newest first
		if d.Pusher == rec.User && !d.CreatedAt.Before(since) {
			return d
		}
	}
	return nil
}

func (s *Server) git(ctx ssh.Context, sess ssh.Session, args []string, rec *conductor.AuditEntry) int {
	u := UserFromContext(ctx)
	fail := func(err error) int {
		if conductor.ErrorCode(err) == conductor.EINTERNAL {
			slog.Error("git", "user", u.Name, "command", logCommand(sess.RawCommand()), "err", err)
		}
		rec.Error = conductor.ErrorMessage(err)
		if c := conductor.ErrorCode(err); c == conductor.EUNAUTHORIZED || c == conductor.ENOTFOUND {
			rec.Outcome = conductor.OutcomeDenied
		} else {
			rec.Outcome = conductor.OutcomeFailed
		}
		fmt.Fprintf(sess.Stderr(), "error: %s\n", rec.Error)
		return 1
	}
	if len(args) != 2 {
		return fail(conductor.Errorf(conductor.EINVALID, "usage: %s <app>", args[0]))
	}
	service, push := args[0], args[0] == conductor.OpPush
	name, err := AppFromRepoPath(args[1])
	if err != nil {
		return fail(err)
	}
	rec.App = name
	app, err := s.store.FindApp(ctx, name)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND && push &&
		conductor.Authorize(ctx, s.store, u, "apps:create", nil) == nil {
		// The design card: an eKnight is provisioned when first seen.
		fmt.Fprintf(sess.Stderr(), "-----> Creating app %s\n", name)
		app, err = s.createApp(ctx, name, s.cfg.DefaultDB, "")
	}
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		return fail(conductor.AppNotFound(name))
	} else if err != nil {
		return fail(err)
	}
	if err := conductor.Authorize(ctx, s.store, u, service, app); err != nil {
		return fail(err)
	}
	if push {
		release, err := s.pushes.acquire(ctx, name, u.Name, sess.Stderr())
		if err != nil {
			return fail(err)
		}
		defer release()
	}
	repo := s.RepoDir(name)
	if err := initRepo(ctx, repo); err != nil {
		return fail(err)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + repo,
		hooks.EnvNATSURL + "=" + s.cfg.NATS.URLs,
		hooks.EnvNATSToken + "=" + s.cfg.NATS.Token,
		hooks.EnvNATSCA + "=" + s.cfg.NATS.CAFile,
		hooks.EnvApp + "=" + name,
		hooks.EnvUser + "=" + u.Name,
		hooks.EnvHost + "=" + app.Host,
	}
	// Only GIT_PROTOCOL passes from the client's env (gogs CVE-2024-39930).
	for _, kv := range sess.Environ() {
		if v, ok := strings.CutPrefix(kv, "GIT_PROTOCOL="); ok && (v == "version=2" || v == "version=1") {
			env = append(env, kv)
		}
	}
	gitArgs := []string{"-c", "core.hooksPath=" + s.cfg.HooksDir, "-c", "receive.fsckObjects=true"}
	if push && s.limits.MaxPushSize > 0 {
		// git refuses a bigger pack itself ("pack exceeds maximum allowed
		// size") before the hook runs, so nothing is stored or deployed.
		gitArgs = append(gitArgs, "-c", "receive.maxInputSize="+strconv.FormatInt(s.limits.MaxPushSize, 10))
	}
	cmd := exec.CommandContext(ctx, "git", append(gitArgs, strings.TrimPrefix(service, "git-"), repo)...)
	cmd.Env = env
	// git dies with a killed conductor, instead of leaving its hook waiting.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = sess, sess.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fail(err)
	}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("start git %s: %w", service, err))
	}
	// Copy the client's data to git and close git's stdin at the client's
	// EOF (gitkit PR #30), without making Wait depend on the client.
	go func() {
		_, _ = io.Copy(stdin, sess)
		stdin.Close()
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	} else if err != nil {
		return fail(fmt.Errorf("git %s: %w", service, err))
	}
	return 0
}

// createApp records a new app and creates its repository.
func (s *Server) createApp(ctx context.Context, name, db, host string) (*conductor.App, error) {
	if err := s.cfg.Databases.CheckKind(db); err != nil {
		return nil, err
	}
	host, err := s.placeApp(ctx, host)
	if err != nil {
		return nil, err
	}
	app, err := provision.NewApp(ctx, s.store, name, db, host, s.cfg.Ports)
	if err != nil {
		return nil, err
	}
	if err := initRepo(ctx, s.RepoDir(name)); err != nil {
		return nil, err
	}
	return app, nil
}

// initRepo creates a bare repository if it does not exist yet.
func initRepo(ctx context.Context, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return nil
	}
	if err := privateDir(filepath.Dir(dir)); err != nil {
		return err
	}
	// No template: its sample hooks never run (core.hooksPath is Conductor's),
	// and copying them is half of git init's time.
	out, err := exec.CommandContext(ctx, "git", "init", "--quiet", "--bare", "--template=", "--initial-branch=main", dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("git init %s: %w: %s", dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// privateDir makes dir root's alone (0700): the repositories hold every
// app's source, and git runs as root, so no app user needs to reach them.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// PrivateReposDir makes the repositories' dir private; serve calls it at
// start, for instances whose dir predates this.
func PrivateReposDir(dir string) error { return privateDir(dir) }

// WriteHooks installs the pre-receive hook shared by every repository: it
// re-runs this binary, like soft-serve's `soft hook`.
func WriteHooks(hooksDir, conductorBin string) error {
	if err := os.MkdirAll(hooksDir, 0o700); err != nil {
		return err
	}
	script := "#!/bin/sh\n# Installed by Conductor.\nexec " + shellQuote(conductorBin) + " hook pre-receive\n"
	path := filepath.Join(hooksDir, "pre-receive")
	if err := os.WriteFile(path+".tmp", []byte(script), 0o700); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// shellQuote quotes a path we control for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
