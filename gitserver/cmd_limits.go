package gitserver

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
)

// ps:limit sets the kernel limits of each process of a process type
// (Dokku's resource:limit, Heroku's dyno sizes): memory (swap included),
// CPU and processes+threads, enforced with cgroups on the app's host. Like
// config:set, a change restarts the app with the same zero-downtime switch
// as a deploy, and later deploys keep it. Lifting one limit is KEY=none,
// all of a type's is --clear (Dokku's resource:limit-clear).
func (s *Server) psLimitCommand() *cobra.Command {
	var clear, noRestart, asJSON bool
	cmd := &cobra.Command{
		Use:   "ps:limit <app> [<type> KEY=VALUE...|--clear]",
		Short: "Show or set the memory, CPU and process limits of each process of a type",
		Long: "Show or set the limits that each process of a process type runs under, enforced by the kernel\n" +
			"(cgroups) on the app's host, e.g. ps:limit app web memory=512M cpu=1 pids=256. Memory is in\n" +
			"bytes or K/M/G (powers of 1024; swap counts), cpu in CPUs (0.5 is half of one), pids counts\n" +
			"processes and threads. A process over its memory limit is killed by the kernel and restarted\n" +
			"by circus. KEY=none lifts one limit; --clear lifts all of the type's. Each process of the type\n" +
			"gets the limits on its own (ps:scale web=2 runs two of that size). The app restarts with them\n" +
			"like after config:set (--no-restart: the next restart or push applies them); deploys keep them.",
		Args: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0:
				return conductor.Errorf(conductor.EINVALID, "usage: ps:limit <app> [<type> KEY=VALUE...|--clear]")
			case len(args) == 1 && clear:
				return conductor.Errorf(conductor.EINVALID, "usage: ps:limit <app> <type> --clear")
			case len(args) == 2 && !clear:
				return conductor.Errorf(conductor.EINVALID, "usage: ps:limit <app> <type> KEY=VALUE... (memory=512M cpu=1 pids=256, KEY=none) or --clear")
			case len(args) > 2 && clear:
				return conductor.Errorf(conductor.EINVALID, "--clear takes no KEY=VALUE")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			out := cmd.OutOrStdout()
			all, err := s.store.ProcessLimits(ctx, app.ID)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				if asJSON {
					return printJSON(out, all)
				}
				if len(all) == 0 {
					fmt.Fprintf(out, "%s has no limits: set some with ps:limit %s <type> memory=512M cpu=1 pids=256\n", app.Name, app.Name)
				}
				for _, typ := range sortedKeys(all) {
					fmt.Fprintf(out, "%-12s %s\n", typ, all[typ])
				}
				return nil
			}
			typ := args[1]
			if err := conductor.ValidateProcessType(typ); err != nil {
				return err
			}
			if typ == "release" {
				return conductor.Errorf(conductor.EINVALID, "release is the deploy's release phase, not a process that keeps running: it has no limits")
			}
			limits := conductor.ProcessLimits{}
			if !clear {
				if limits, err = conductor.ApplyLimits(all[typ], args[2:]); err != nil {
					return err
				}
			}
			cur, err := s.store.CurrentRelease(ctx, app.ID)
			deployed := err == nil
			if err != nil && conductor.ErrorCode(err) != conductor.ENOTFOUND {
				return err
			}
			if deployed {
				types, err := s.cfg.Agents.ReleaseTypes(ctx, app, cur.Dir)
				if err != nil {
					return err
				}
				if !contains(types, typ) {
					return conductor.Errorf(conductor.EINVALID, "%s has no process type %s (its Procfile has: %s)", app.Name, typ, strings.Join(types, ", "))
				}
			}
			if err := s.store.SetProcessLimits(ctx, app.ID, typ, limits); err != nil {
				return err
			}
			fmt.Fprintf(out, "Limits of %s %s: %s\n", app.Name, typ, limits)
			if noRestart {
				fmt.Fprintln(out, "Not restarted: the next ps:restart, config change or push applies them")
				return nil
			}
			return s.redeploy(ctx, app, "ps:limit", out)
		},
	}
	cmd.Flags().BoolVar(&clear, "clear", false, "lift all limits of the type")
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "only store the change")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (with no type)")
	return cmd
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
