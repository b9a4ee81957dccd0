package gitserver

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
)

// apps:set and apps:get: Conductor's own settings of one app (today the
// time bounds of its deploy steps, conductor.AppSettings), apart from its
// config vars. A change applies from the next job that starts running; no
// restart is needed.

func (s *Server) appsSetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apps:set <app> KEY=VALUE...",
		Short: "Set Conductor's settings of an app (deploy step timeouts)",
		Long: "Set Conductor's settings of an app, e.g. apps:set app timeout.release=30m. KEY= (or KEY=default)\n" +
			"resets a key. Durations are like 90s, 30m, 1h. A step that runs past its timeout is killed with\n" +
			"everything it started and the deploy fails; the serving release stays. apps:get lists the keys.\n" +
			"The settings apply from the next deploy, config change or restart that starts running.",
		Args: minArgs(2, "apps:set <app> KEY=VALUE..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			set, unset, err := conductor.ParseAppSettings(args[1:])
			if err != nil {
				return err
			}
			if err := s.store.SetAppSettings(ctx, app.ID, set, unset); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, k := range sortedKeys(set) {
				fmt.Fprintf(out, "%s: %s=%s\n", app.Name, k, set[k])
			}
			for _, k := range unset {
				st, _ := conductor.FindAppSetting(k)
				fmt.Fprintf(out, "%s: %s reset to its default (%s)\n", app.Name, k, st.Default)
			}
			fmt.Fprintln(out, "Applies from the next deploy that starts")
			return nil
		},
	}
	return cmd
}

// appSettingView is one line of apps:get --json.
type appSettingView struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Default bool   `json:"default"`
	Help    string `json:"help"`
}

func (s *Server) appsGetCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "apps:get <app> [KEY]",
		Short: "Show Conductor's settings of an app (apps:set), defaults included",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return conductor.Errorf(conductor.EINVALID, "usage: apps:get <app> [KEY]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			stored, err := s.store.AppSettings(ctx, app.ID)
			if err != nil {
				return err
			}
			keys := conductor.AppSettings
			if len(args) == 2 {
				st, err := conductor.FindAppSetting(args[1])
				if err != nil {
					return err
				}
				keys = []conductor.AppSetting{st}
			}
			views := []appSettingView{}
			for _, st := range keys {
				v, ok := stored[st.Key]
				if !ok {
					v = st.Default
				}
				views = append(views, appSettingView{Key: st.Key, Value: v, Default: !ok, Help: st.Help})
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, views)
			}
			if len(args) == 2 {
				fmt.Fprintln(out, views[0].Value)
				return nil
			}
			for _, v := range views {
				note := ""
				if v.Default {
					note = " (default)"
				}
				fmt.Fprintf(out, "%-20s %-8s%-10s %s\n", v.Key, v.Value, note, v.Help)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
