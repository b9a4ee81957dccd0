package gitserver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
)

// dashboardCommand prints a one-time login URL for the web dashboard
// (package dashboard): the browser that opens it first is logged in as the
// session's user, for conductor.DashboardSessionTTL.
func (s *Server) dashboardCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "dashboard",
		Short: "Print a one-time URL that logs a browser in to the web dashboard as you (valid 2 minutes)",
		Args:  exactArgs(0, "dashboard"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if s.cfg.DashboardURL == "" || s.cfg.Dashboard == nil {
				return conductor.Errorf(conductor.EUNAVAILABLE, "the web dashboard is off on this server (conductor serve --dashboard-listen)")
			}
			token := conductor.NewDashboardSecret()
			expires := time.Now().Add(conductor.DashboardTokenTTL)
			if err := s.cfg.Dashboard.AddDashboardToken(ctx, UserFromContext(ctx).ID, FingerprintFromContext(ctx), conductor.HashDashboardSecret(token), expires); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Open this URL to log in to the dashboard as %s (it works once, until %s):\n  %s/login?token=%s\n",
				UserFromContext(ctx).Name, expires.UTC().Format("15:04:05 MST"), s.cfg.DashboardURL, token)
			return nil
		},
	}
}

func (s *Server) dashboardSessionsCommand() *cobra.Command {
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:   "dashboard:sessions",
		Short: "List your browser sessions of the web dashboard (--all: everyone's, admin)",
		Args:  exactArgs(0, "dashboard:sessions [--all] [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if s.cfg.Dashboard == nil {
				return conductor.Errorf(conductor.EUNAVAILABLE, "the web dashboard is off on this server")
			}
			userID, err := s.dashboardScope(ctx, all)
			if err != nil {
				return err
			}
			list, err := s.cfg.Dashboard.ListDashboardSessions(ctx, userID, time.Now())
			if err != nil {
				return err
			}
			type row struct {
				ID      int64     `json:"id"`
				User    string    `json:"user"`
				Created time.Time `json:"created"`
				Seen    time.Time `json:"seen"`
				Expires time.Time `json:"expires"`
				Key     string    `json:"key"`
				Agent   string    `json:"agent"`
			}
			rows := []row{}
			for _, x := range list {
				rows = append(rows, row{x.ID, x.User, x.CreatedAt.UTC(), x.SeenAt.UTC(), x.ExpiresAt.UTC(), x.Fingerprint, x.Agent})
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no dashboard sessions")
				return nil
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tUSER\tKEY\tSINCE\tLAST SEEN\tEXPIRES\tBROWSER")
			for _, r := range rows {
				fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.User, r.Key, r.Created.Format(time.RFC3339), r.Seen.Format(time.RFC3339),
					r.Expires.Format(time.RFC3339), terminalText(r.Agent, false))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&all, "all", false, "everyone's sessions (admin)")
	return cmd
}

func (s *Server) dashboardLogoutCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "dashboard:logout [<id>]",
		Short: "End a dashboard session (its id from dashboard:sessions), or all of yours with --all",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 || (len(args) == 1) == all {
				return conductor.Errorf(conductor.EINVALID, "usage: dashboard:logout <id> | dashboard:logout --all")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if s.cfg.Dashboard == nil {
				return conductor.Errorf(conductor.EUNAVAILABLE, "the web dashboard is off on this server")
			}
			u := UserFromContext(ctx)
			var id int64
			if len(args) == 1 {
				n, err := strconv.ParseInt(args[0], 10, 64)
				if err != nil || n < 1 {
					return conductor.Errorf(conductor.EINVALID, "%q is not a session id (see dashboard:sessions)", truncate(args[0]))
				}
				id = n
			}
			// A developer ends only their own sessions; an admin any one by
			// its id, and --all ends the admin's own, like anyone's.
			userID := u.ID
			if u.Admin && id != 0 {
				userID = 0
			}
			n, err := s.cfg.Dashboard.EndDashboardSessions(ctx, userID, id)
			if err != nil {
				return err
			}
			if id != 0 && n == 0 {
				return conductor.Errorf(conductor.ENOTFOUND, "no dashboard session %d of yours", id)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Ended %d dashboard session(s)\n", n)
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "end all your sessions")
	return cmd
}

// dashboardScope is whose sessions dashboard:sessions lists: the user's,
// or everyone's (0) for an admin's --all.
func (s *Server) dashboardScope(ctx context.Context, all bool) (int64, error) {
	u := UserFromContext(ctx)
	if !all {
		return u.ID, nil
	}
	if !u.Admin {
		return 0, conductor.Errorf(conductor.EUNAUTHORIZED, "dashboard:sessions --all needs an admin")
	}
	return 0, nil
}

// RunAs runs an SSH command on behalf of the web dashboard: the same cobra
// command, authorization (conductor.Authorize) and audit entry as when u
// types it over SSH, so an action in the browser cannot do more, or less
// visibly, than its SSH twin. via stands in the audit entry where a key's
// fingerprint would ("dashboard session 12"). The command's output goes to
// out; a failure is an *conductor.Error with what the user would be told.
func (s *Server) RunAs(ctx context.Context, u *conductor.User, via string, args []string, out io.Writer) error {
	sess := &bufferSession{out: out}
	ctx = WithFingerprint(WithUser(ctx, u), via)
	code := s.runCommand(ctx, sess, args)
	if code == 0 {
		return nil
	}
	msg := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(sess.errs.String()), "error: "))
	if msg == "" {
		msg = fmt.Sprintf("%s failed (exit status %d)", args[0], code)
	}
	return conductor.Errorf(conductor.EINVALID, "%s", msg)
}

// bufferSession is a session without a client: no input, no pty, output to
// a writer and errors kept for RunAs.
type bufferSession struct {
	out  io.Writer
	errs bytes.Buffer
}

func (b *bufferSession) Read([]byte) (int, error)                { return 0, io.EOF }
func (b *bufferSession) Write(p []byte) (int, error)             { return b.out.Write(p) }
func (b *bufferSession) Stderr() io.ReadWriter                   { return &b.errs }
func (b *bufferSession) Pty() (ssh.Pty, <-chan ssh.Window, bool) { return ssh.Pty{}, nil, false }
