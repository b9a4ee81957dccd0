package gitserver

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/queue"
)

func (s *Server) logsCommand() *cobra.Command {
	var (
		lines   int
		follow  bool
		process string
		build   bool
		raw     bool
	)
	cmd := &cobra.Command{
		Use:   "logs <app> [--build [<deploy>]]",
		Short: "Show the output of an app's processes, or the build log of a deploy",
		Args: func(cmd *cobra.Command, args []string) error {
			return rangeArgs(args, 1, 2, "logs <app> [-n N] [-f] [--process TYPE] | logs <app> --build [<deploy>]")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if build {
				deploy := ""
				if len(args) == 2 {
					deploy = args[1]
				}
				return s.buildLog(ctx, app, deploy, raw, cmd.OutOrStdout())
			}
			if len(args) == 2 {
				return conductor.Errorf(conductor.EINVALID, "a deploy id goes with --build")
			}
			if process != "" {
				if err := conductor.ValidateProcessType(process); err != nil {
					return err
				}
			}
			if lines < 0 || lines > 100000 {
				return conductor.Errorf(conductor.EINVALID, "-n must be between 0 and 100000")
			}
			// The files live on the app's host: its worker reads them.
			out := cmd.OutOrStdout()
			return s.queue.AppLogs(ctx, app.Host, queue.AppLogsRequest{App: app.Name, Process: process, Lines: lines, Follow: follow},
				func(line string) error {
					_, err := fmt.Fprintln(out, terminalText(line, raw))
					return err
				})
		},
	}
	cmd.Flags().IntVarP(&lines, "num", "n", 100, "number of lines")
	cmd.Flags().BoolVarP(&follow, "tail", "f", false, "keep printing new lines until you disconnect")
	cmd.Flags().StringVarP(&process, "process", "p", "", "only this process type")
	cmd.Flags().BoolVar(&build, "build", false, "show the build log of the newest (or the given) deploy")
	cmd.Flags().BoolVar(&raw, "raw", false, rawFlagUsage)
	return cmd
}

// buildLog replays a deploy's build output from the job log stream: the
// whole log of a finished deploy, and live to its end for a running one.
// The output of the app's build steps is app-controlled text: unless raw,
// it is printed without terminal escapes.
func (s *Server) buildLog(ctx context.Context, app *conductor.App, id string, raw bool, out io.Writer) error {
	deploys, err := s.store.ListDeploys(ctx, app.ID)
	if err != nil {
		return err
	}
	var d *conductor.Deploy
	for _, x := range deploys {
		if id == "" || x.ID == id {
			d = x
			break
		}
	}
	if d == nil && id == "" {
		return conductor.Errorf(conductor.ENOTFOUND, "%s has no deploys yet", app.Name)
	} else if d == nil {
		return conductor.Errorf(conductor.ENOTFOUND, "%s has no deploy %q", app.Name, id)
	}
	finished := d.Status == conductor.DeploySucceeded || d.Status == conductor.DeployFailed
	if finished {
		ok, err := s.queue.HasLog(ctx, d.ID)
		if err != nil {
			return err
		}
		if !ok {
			return conductor.Errorf(conductor.ENOTFOUND, "the build log of %s is no longer kept", d.ID)
		}
	}
	fmt.Fprintf(out, "Build log of deploy %s (%s, %s by %s)\n", d.ID, d.Ref, d.Status, d.Pusher)
	res, err := s.queue.Follow(ctx, d.ID, func(line string) { fmt.Fprintln(out, terminalText(line, raw)) })
	if err != nil {
		return err
	}
	if res.OK {
		fmt.Fprintln(out, "-----> Deploy succeeded")
	} else {
		fmt.Fprintf(out, " !     Deploy failed: %s\n", terminalText(res.Message, raw))
	}
	return nil
}
