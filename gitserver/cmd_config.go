package gitserver

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/termtext"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/pybuild"
)

func (s *Server) configCommand() *cobra.Command {
	var asJSON, raw bool
	cmd := &cobra.Command{
		Use:   "config <app>",
		Short: "Show an app's config vars",
		Args:  exactArgs(1, "config <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			vars, err := s.store.Config(ctx, appFromContext(ctx).ID)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), vars)
			}
			for _, k := range sortedKeys(vars) {
				fmt.Fprintf(cmd.OutOrStdout(), "%s=%s\n", k, terminalText(vars[k], raw))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&raw, "raw", false, rawFlagUsage)
	return cmd
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (s *Server) configGetCommand() *cobra.Command {
	var raw bool
	cmd := &cobra.Command{
		Use:   "config:get <app> <KEY>",
		Short: "Print one config var",
		Args:  exactArgs(2, "config:get <app> <KEY>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if err := conductor.ValidateConfigKey(args[1]); err != nil {
				return err
			}
			vars, err := s.store.Config(ctx, app.ID)
			if err != nil {
				return err
			}
			v, ok := vars[args[1]]
			if !ok {
				return conductor.Errorf(conductor.ENOTFOUND, "%s has no config var %s", app.Name, args[1])
			}
			fmt.Fprintln(cmd.OutOrStdout(), terminalText(v, raw))
			return nil
		},
	}
	cmd.Flags().BoolVar(&raw, "raw", false, rawFlagUsage)
	return cmd
}

func (s *Server) configSetCommand() *cobra.Command {
	var noRestart bool
	cmd := &cobra.Command{
		Use:   "config:set <app> KEY=VALUE...",
		Short: "Set config vars and restart the app with them",
		Long: "Set config vars and restart the app with them, with the same zero-downtime switch as a deploy\n" +
			"(recorded in the deploy history). Quote a value with spaces: config:set app 'GREETING=hello world'.\n" +
			"Use --no-restart to batch changes; the next config change, ps:restart or push applies them.",
		Args: minArgs(2, "config:set <app> KEY=VALUE... [--no-restart]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			vars := map[string]string{}
			for i, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					// Not quoted: it may be (part of) a value, and the
					// message goes to the audit trail.
					return conductor.Errorf(conductor.EINVALID, "argument %d is not KEY=VALUE (quote a value with spaces: 'KEY=a b')", i+2)
				}
				if err := conductor.ValidateConfigKey(k); err != nil {
					return err
				}
				if err := conductor.ValidateConfigValue(k, v); err != nil {
					return err
				}
				// Refused here, before anything is stored, rather than by
				// the restart it would fail.
				if k == pybuild.ConfigHealthcheck && strings.TrimSpace(v) != "" {
					if _, err := pybuild.ParseHealthcheckVar(v); err != nil {
						return err
					}
				}
				if k == process.ConfigUptime && v != "" {
					if _, err := process.ParseUptime(v); err != nil {
						return conductor.Errorf(conductor.EINVALID, "%s: %v", k, err)
					}
				}
				vars[k] = v
			}
			keys := sortedKeys(vars)
			// Values may be secrets: the audit trail gets the names only.
			auditFromContext(ctx).Detail = strings.Join(keys, " ")
			if err := s.store.SetConfig(ctx, app.ID, vars); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Set %s on %s\n", strings.Join(keys, ", "), app.Name)
			if noRestart {
				fmt.Fprintf(cmd.OutOrStdout(), "Not restarted: the app sees the change after its next restart or deploy\n")
				return nil
			}
			return s.redeploy(ctx, app, "config:set", cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "only store the change")
	return cmd
}

func (s *Server) configUnsetCommand() *cobra.Command {
	var noRestart bool
	cmd := &cobra.Command{
		Use:   "config:unset <app> KEY...",
		Short: "Remove config vars and restart the app without them",
		Args:  minArgs(2, "config:unset <app> KEY... [--no-restart]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			keys := args[1:]
			for _, k := range keys {
				if err := conductor.ValidateConfigKey(k); err != nil {
					return err
				}
			}
			vars, err := s.store.Config(ctx, app.ID)
			if err != nil {
				return err
			}
			for _, k := range keys {
				if _, ok := vars[k]; !ok {
					return conductor.Errorf(conductor.ENOTFOUND, "%s has no config var %s", app.Name, k)
				}
			}
			if err := s.store.UnsetConfig(ctx, app.ID, keys); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Unset %s on %s\n", strings.Join(keys, ", "), app.Name)
			if noRestart {
				fmt.Fprintf(cmd.OutOrStdout(), "Not restarted: the app sees the change after its next restart or deploy\n")
				return nil
			}
			return s.redeploy(ctx, app, "config:unset", cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "only store the change")
	return cmd
}

// truncate shortens user input quoted in a message.
func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

const rawFlagUsage = "print as stored, terminal escape sequences and control characters included"

// terminalText is app-controlled text (a config value, a log line) as a
// command prints it: without terminal escapes and control characters
// unless the user asked for it raw.
func terminalText(s string, raw bool) string {
	if raw {
		return s
	}
	return termtext.Sanitize(s)
}
