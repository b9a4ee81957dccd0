package gitserver

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
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

// runOneOff runs argv on the app's host (package agent) in its current
// release, as the app user, with the environment of its web processes, and
// relays the session to it: a terminal when the client asked for one.
func (s *Server) runOneOff(ctx context.Context, app *conductor.App, sess session, argv []string) error {
	cur, err := s.store.CurrentRelease(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		return conductor.Errorf(conductor.EINVALID, "%s has not been deployed yet: push first", app.Name)
	} else if err != nil {
		return err
	}
	stdio := agent.Stdio{In: sess, Out: sess, Err: sess.Stderr()}
	if ptyReq, winCh, isPty := sess.Pty(); isPty {
		stdio.Tty = &agent.Window{Cols: ptyReq.Window.Width, Rows: ptyReq.Window.Height}
		stdio.Term = ptyReq.Term
		resize := make(chan agent.Window)
		go func() {
			defer close(resize)
			for w := range winCh {
				select {
				case resize <- agent.Window{Cols: w.Width, Rows: w.Height}:
				case <-ctx.Done():
					return
				}
			}
		}()
		stdio.Resize = resize
	}
	code, err := s.cfg.Agents.Run(ctx, app, cur.Port, argv, stdio)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitStatus(code)
	}
	return nil
}
