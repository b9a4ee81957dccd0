package gitserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gliderlabs/ssh"
	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/hooks"
	"github.com/hasadna/conductor/queue"
)

// session is the part of an SSH session the commands use: ssh.Session has
// it, and tests bring their own.
type session interface {
	io.ReadWriter
	Stderr() io.ReadWriter
	Pty() (ssh.Pty, <-chan ssh.Window, bool)
}

// exitStatus is returned by a command whose status is not 0 or 1 (run
// passes on the one-off command's), with nothing more to print.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// runCommand runs an SSH command (Heroku/Dokku grammar) as a cobra command
// bound to the session, records it in the audit trail when it changes
// state, and returns the exit status. ctx carries the user and key.
func (s *Server) runCommand(ctx context.Context, sess session, args []string) int {
	if len(args) == 0 {
		args = []string{"help"}
	}
	if _, _, isPty := sess.Pty(); !isPty {
		// A person at a terminal sees each keystroke's echo at once; the
		// rest gathers lines into fewer packets (coalesce.go).
		cs := coalesce(sess)
		defer cs.out.Flush() // before the caller sends the exit status
		sess = cs
	}
	u := UserFromContext(ctx)
	rec := &conductor.AuditEntry{At: time.Now(), User: u.Name, Fingerprint: FingerprintFromContext(ctx)}
	root := s.commands(sess, args...)
	root.SetArgs(args)
	root.SetIn(sess)
	root.SetOut(sess)
	root.SetErr(sess.Stderr())
	cmd, err := root.ExecuteContextC(withAudit(ctx, rec))
	code, msg := 0, ""
	if err != nil {
		code, msg = 1, errorMessage(err)
		var st exitStatus
		if errors.As(err, &st) {
			code = int(st)
		} else {
			fmt.Fprintf(sess.Stderr(), "error: %s\n", msg)
		}
		if msg == "internal error" {
			slog.Error("command failed", "user", u.Name, "command", strings.Join(conductor.RedactCommand(args), " "), "err", err)
		}
	}
	if cmd != nil && conductor.Permissions[cmd.Name()].Changes && !helpAsked(cmd) {
		rec.Op, rec.Took, rec.Error = cmd.Name(), time.Since(rec.At), msg
		switch {
		case rec.Outcome != "": // denied
		case code == 0:
			rec.Outcome = conductor.OutcomeOK
		default:
			rec.Outcome = conductor.OutcomeFailed
		}
		if err := s.store.AddAudit(context.WithoutCancel(ctx), rec); err != nil {
			slog.Error("audit", "op", rec.Op, "user", rec.User, "err", err)
		}
	}
	return code
}

// helpAsked tells whether cmd only printed its --help.
func helpAsked(cmd *cobra.Command) bool {
	h, err := cmd.Flags().GetBool("help")
	return err == nil && h
}

// errorMessage is what the user is told about err: an *conductor.Error's
// message, cobra's usage and flag errors, and nothing of internal errors
// (their detail goes to the server log).
func errorMessage(err error) string {
	var cerr *conductor.Error
	var st exitStatus
	switch {
	case errors.As(err, &cerr):
		return cerr.Message
	case errors.As(err, &st):
		return st.Error()
	case isUsageError(err) || strings.HasPrefix(err.Error(), "unknown command"):
		return err.Error()
	default:
		return "internal error"
	}
}

// usageError marks cobra's flag errors, which are safe to show.
type usageError struct{ error }

func isUsageError(err error) bool { _, ok := err.(usageError); return ok }

func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return conductor.Errorf(conductor.EINVALID, "usage: %s", usage)
		}
		return nil
	}
}

func minArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return conductor.Errorf(conductor.EINVALID, "usage: %s", usage)
		}
		return nil
	}
}

// commands builds the command tree for one session. Every command's name
// must be in conductor.Permissions: the root's PersistentPreRunE checks it
// there before any command runs. When args names a command, only that one
// is built (most sessions run one known command, and the whole tree is
// ~290 allocations); anything else (help, an unknown name, a flag) gets the
// whole tree, for help and suggestions.
func (s *Server) commands(sess session, args ...string) *cobra.Command {
	root := &cobra.Command{
		Use:               "conductor",
		Short:             "Conductor: git push deploys for Django apps",
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: s.authorize,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	builders := s.commandBuilders(sess)
	if len(args) > 0 {
		for _, b := range builders {
			if b.name == args[0] {
				root.AddCommand(b.build())
				return root
			}
		}
	}
	for _, b := range builders {
		root.AddCommand(b.build())
	}
	return root
}

// commandBuilder makes one command; name is its cobra Name (the first word
// of its Use line), checked by TestCommandBuilderNames.
type commandBuilder struct {
	name  string
	build func() *cobra.Command
}

// commandBuilders lists every command, in the order help shows them.
func (s *Server) commandBuilders(sess session) []commandBuilder {
	return []commandBuilder{
		{"whoami", s.whoamiCommand},
		{"apps", s.appsCommand},
		{"apps:create", s.appsCreateCommand},
		{"apps:info", s.appsInfoCommand},
		{"apps:destroy", s.appsDestroyCommand},
		{"apps:set", s.appsSetCommand},
		{"apps:get", s.appsGetCommand},
		{"deploys", s.deploysCommand},
		{"releases", s.releasesCommand},
		{"rollback", s.rollbackCommand},
		{"deploy", s.deployCommand},
		{"deploys:cancel", s.deploysCancelCommand},
		{"config", s.configCommand},
		{"config:get", s.configGetCommand},
		{"config:set", s.configSetCommand},
		{"config:unset", s.configUnsetCommand},
		{"config:file", s.configFileCommand},
		{"config:files", s.configFilesCommand},
		{"config:file:remove", s.configFileRemoveCommand},
		{"config:file:get", s.configFileGetCommand},
		{"db", s.dbListCommand("db")},
		{"db:list", s.dbListCommand("db:list")},
		{"db:create", s.dbCreateCommand},
		{"db:destroy", s.dbDestroyCommand},
		{"db:backup", s.dbBackupCommand},
		{"db:backups", s.dbBackupsCommand},
		{"db:restore", s.dbRestoreCommand},
		{"db:backups:schedule", s.dbBackupsScheduleCommand},
		{"redis", s.redisCommand},
		{"redis:create", s.redisCreateCommand},
		{"redis:destroy", s.redisDestroyCommand},
		{"logs", s.logsCommand},
		{"ps", s.psCommand},
		{"ps:scale", s.psScaleCommand},
		{"ps:restart", s.psRestartCommand},
		{"ps:limit", s.psLimitCommand},
		{"maintenance", s.maintenanceCommand},
		{"maintenance:on", s.maintenanceOnCommand},
		{"maintenance:off", s.maintenanceOffCommand},
		{"run", func() *cobra.Command { return s.runCmd(sess) }},
		{"cron", s.cronCommand},
		{"cron:run", func() *cobra.Command { return s.cronRunCommand(sess) }},
		{"domains", s.domainsCommand},
		{"domains:add", s.domainsAddCommand},
		{"domains:remove", s.domainsRemoveCommand},
		{"domains:cert", s.domainsCertCommand},
		{"keys", s.keysCommand},
		{"keys:add", s.keysAddCommand},
		{"keys:remove", s.keysRemoveCommand},
		{"access", s.accessCommand},
		{"access:grant", s.accessGrantCommand},
		{"access:revoke", s.accessRevokeCommand},
		{"audit", s.auditCommand},
		{"hosts", s.hostsCommand},
		{"notify", s.notifyCommand},
		{"notify:add", s.notifyAddCommand},
		{"notify:remove", s.notifyRemoveCommand},
		{"notify:test", s.notifyTestCommand},
		{"dashboard", s.dashboardCommand},
		{"dashboard:sessions", s.dashboardSessionsCommand},
		{"dashboard:logout", s.dashboardLogoutCommand},
	}
}

// authorize runs before every command: it resolves the app the command
// names (its first argument) and asks conductor.Authorize, the one place
// that decides, whether the session's user may run it.
func (s *Server) authorize(cmd *cobra.Command, args []string) error {
	ctx := cmd.Context()
	op := cmd.Name()
	rec := auditFromContext(ctx)
	perm, ok := conductor.Permissions[op]
	detail := args
	if op == "config:set" {
		// Recorded even when the command is denied or its arguments are
		// wrong: no value may be in it.
		detail = conductor.RedactConfigSetArgs(args)
	}
	var app *conductor.App
	if ok && perm.PerApp {
		if len(args) == 0 {
			return conductor.Errorf(conductor.EINVALID, "usage: %s", cmd.UseLine())
		}
		if err := conductor.ValidateAppName(args[0]); err != nil {
			return err
		}
		rec.App = args[0]
		rec.Detail = strings.Join(detail[1:], " ")
		a, err := s.store.FindApp(ctx, args[0])
		if conductor.ErrorCode(err) == conductor.ENOTFOUND {
			return conductor.AppNotFound(args[0])
		} else if err != nil {
			return err
		}
		app = a
	} else {
		rec.Detail = strings.Join(detail, " ")
	}
	if err := conductor.Authorize(ctx, s.store, UserFromContext(ctx), op, app); err != nil {
		if c := conductor.ErrorCode(err); c == conductor.EUNAUTHORIZED || c == conductor.ENOTFOUND {
			rec.Outcome = conductor.OutcomeDenied
		}
		return err
	}
	cmd.SetContext(withApp(ctx, app))
	return nil
}

// printJSON writes v as indented JSON. encoding/json escapes C0 control
// characters but not DEL and C1 (U+0080–U+009F), which some terminals act
// on: they are escaped too (they can only be in strings, so the JSON means
// the same).
func printJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(escapeC1(buf.Bytes()))
	return err
}

// escapeC1 replaces DEL and C1 characters in JSON text with \u escapes.
func escapeC1(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r >= 0x7f && r <= 0x9f }) {
		return b
	}
	var out bytes.Buffer
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r >= 0x7f && r <= 0x9f {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.Write(b[:size])
		}
		b = b[size:]
	}
	return out.Bytes()
}

// redeploy releases the app's current revision again through the normal
// pipeline, so a change of config, domains or a restart gets the same
// zero-downtime switch as a push, and shows up in the deploy history with
// reason as its ref. An app that was never deployed just keeps the change
// for its first push.
func (s *Server) redeploy(ctx context.Context, app *conductor.App, reason string, out io.Writer) error {
	cur, err := s.store.CurrentRelease(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		fmt.Fprintf(out, "%s has not been deployed yet: the change applies to its first deploy\n", app.Name)
		return nil
	} else if err != nil {
		return err
	}
	// A restart job: the builder takes whatever release serves when the job
	// runs, so a change queued behind a push applies to that push's release.
	job := s.newJob(ctx, app, cur.Rev, reason)
	job.Kind = queue.KindRestart
	fmt.Fprintf(out, "-----> Restarting %s (release %s)\n", app.Name, job.ID)
	return hooks.Run(ctx, s.queue, job, out)
}
