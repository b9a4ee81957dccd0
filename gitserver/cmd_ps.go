package gitserver

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/process"
)

// MaxProcesses bounds one process type's scale.
const MaxProcesses = 16

func (s *Server) psCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ps <app>",
		Short: "Show an app's process types, how many run and their state",
		Args:  exactArgs(1, "ps <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			procs, err := s.processes(ctx, appFromContext(ctx))
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), procs)
			}
			if len(procs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no processes: push to deploy")
			}
			for _, p := range procs {
				line := fmt.Sprintf("%-12s %d/%d  %-8s %s", p.Type, p.Running, p.Wanted, p.State, p.Watcher)
				if p.Limits != "" {
					line += "  limits: " + p.Limits
				}
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) psScaleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ps:scale <app> TYPE=N...",
		Short: "Set how many processes of each type run, e.g. ps:scale app web=2 worker=1",
		Long: "Set how many processes of each type run. The running processes are kept; circus starts\n" +
			"or stops only the difference, and later deploys keep the scale. web=N runs N gunicorn masters\n" +
			"sharing the web port (Conductor passes --reuse-port).",
		Args: minArgs(2, "ps:scale <app> TYPE=N..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			scale := map[string]int{}
			for _, arg := range args[1:] {
				typ, n, err := parseScale(arg)
				if err != nil {
					return err
				}
				if typ == "web" && n < 1 {
					return conductor.Errorf(conductor.EINVALID, "web needs at least one process: the app would stop answering")
				}
				scale[typ] = n
			}
			cur, err := s.store.CurrentRelease(ctx, app.ID)
			if conductor.ErrorCode(err) == conductor.ENOTFOUND {
				return conductor.Errorf(conductor.EINVALID, "%s has not been deployed yet: push first", app.Name)
			} else if err != nil {
				return err
			}
			list, err := s.cfg.Agents.ReleaseTypes(ctx, app, cur.Dir)
			if err != nil {
				return err
			}
			types := map[string]bool{}
			for _, t := range list {
				types[t] = true
			}
			for typ := range scale {
				if !types[typ] {
					return conductor.Errorf(conductor.EINVALID, "%s has no process type %s (its Procfile has: %s)", app.Name, typ, strings.Join(sortedKeys(types), ", "))
				}
			}
			if err := s.store.SetProcessScale(ctx, app.ID, scale); err != nil {
				return err
			}
			for _, typ := range sortedKeys(scale) {
				watcher := process.ReleaseWatcher(app.Name, typ, cur.Port) // the serving release's
				if err := s.cfg.Agents.Scale(ctx, app, watcher, scale[typ]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Scaled %s %s to %d\n", app.Name, typ, scale[typ])
			}
			return nil
		},
	}
}

// parseScale reads TYPE=N.
func parseScale(arg string) (string, int, error) {
	typ, count, ok := strings.Cut(arg, "=")
	if !ok {
		return "", 0, conductor.Errorf(conductor.EINVALID, "%q is not TYPE=N", truncate(arg))
	}
	if err := conductor.ValidateProcessType(typ); err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 0 || n > MaxProcesses {
		return "", 0, conductor.Errorf(conductor.EINVALID, "%s: the count must be a number from 0 to %d", typ, MaxProcesses)
	}
	return typ, n, nil
}

func (s *Server) psRestartCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ps:restart <app>",
		Short: "Restart an app's processes without dropping a request",
		Long: "Restart an app's processes: the current release is started again next to the serving one\n" +
			"and traffic switches once it answers, as in a deploy (it shows in the deploy history).",
		Args: exactArgs(1, "ps:restart <app>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if _, err := s.store.CurrentRelease(ctx, app.ID); conductor.ErrorCode(err) == conductor.ENOTFOUND {
				return conductor.Errorf(conductor.EINVALID, "%s has not been deployed yet: push first", app.Name)
			}
			return s.redeploy(ctx, app, "ps:restart", cmd.OutOrStdout())
		},
	}
}
