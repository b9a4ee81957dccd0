package gitserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/hooks"
	"github.com/hasadna/conductor/queue"
)

// runCommand runs an SSH command (Heroku/Dokku grammar) as a cobra command
// bound to the session, and returns the exit status.
func (s *Server) runCommand(sess ssh.Session, args []string) int {
	if len(args) == 0 {
		args = []string{"help"}
	}
	root := s.commands(sess)
	root.SetArgs(args)
	root.SetIn(sess)
	root.SetOut(sess)
	root.SetErr(sess.Stderr())
	if err := root.ExecuteContext(sess.Context()); err != nil {
		var cerr *conductor.Error
		switch {
		case errors.As(err, &cerr):
			fmt.Fprintf(sess.Stderr(), "error: %s\n", cerr.Message)
		case isUsageError(err) || strings.HasPrefix(err.Error(), "unknown command"):
			fmt.Fprintf(sess.Stderr(), "error: %s\n", err)
		default:
			slog.Error("command failed", "command", sess.RawCommand(), "err", err)
			fmt.Fprintln(sess.Stderr(), "error: internal error")
		}
		return 1
	}
	return 0
}

// usageError marks cobra's argument errors, which are safe to show.
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

// commands builds the command tree for one session.
func (s *Server) commands(sess ssh.Session) *cobra.Command {
	root := &cobra.Command{
		Use:           "conductor",
		Short:         "Conductor: git push deploys for Django apps",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	root.AddCommand(
		s.whoamiCommand(),
		s.appsCommand(),
		s.appsCreateCommand(),
		s.configCommand(),
		s.configGetCommand(),
		s.configSetCommand(),
		s.configUnsetCommand(),
		s.logsCommand(),
	)
	return root
}

// requireAdmin fails unless the session's user is an admin.
func requireAdmin(ctx context.Context) error {
	if u := UserFromContext(ctx); u == nil || !u.Admin {
		return conductor.Errorf(conductor.EUNAUTHORIZED, "this command needs an admin")
	}
	return nil
}

// appFor finds an app the session's user may act on at the needed level.
// An app the user may not see is reported as not found.
func (s *Server) appFor(ctx context.Context, name string, need conductor.AccessLevel) (*conductor.App, error) {
	if err := conductor.ValidateAppName(name); err != nil {
		return nil, err
	}
	app, err := s.store.FindApp(ctx, name)
	if err != nil {
		return nil, err
	}
	level, err := conductor.AccessFor(ctx, s.store, UserFromContext(ctx), app)
	if err != nil {
		return nil, err
	}
	if level < need {
		return nil, conductor.Errorf(conductor.ENOTFOUND, "app %q not found", name)
	}
	return app, nil
}

func (s *Server) whoamiCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "whoami",
		Short: "Show who you are authenticated as",
		Args:  exactArgs(0, "whoami"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := UserFromContext(cmd.Context())
			role := "developer"
			if u.Admin {
				role = "admin"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s (%s)\n", u.Name, role)
			return nil
		},
	}
}

func (s *Server) appsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "apps",
		Short: "List the apps you can access",
		Args:  exactArgs(0, "apps [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			apps, err := s.store.ListApps(ctx)
			if err != nil {
				return err
			}
			type row struct {
				Name string `json:"name"`
				URL  string `json:"url"`
				DB   string `json:"db"`
			}
			rows := []row{}
			for _, a := range apps {
				level, err := conductor.AccessFor(ctx, s.store, UserFromContext(ctx), a)
				if err != nil {
					return err
				}
				if level >= conductor.ReadOnly {
					rows = append(rows, row{a.Name, "http://" + a.Name + "." + s.cfg.Domain + "/", a.DBKind})
				}
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(rows)
			}
			for _, r := range rows {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\n", r.Name, r.URL)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) appsCreateCommand() *cobra.Command {
	var db string
	cmd := &cobra.Command{
		Use:   "apps:create <app>",
		Short: "Create an app (admin)",
		Args:  exactArgs(1, "apps:create <app> [--db sqlite|postgres|mysql]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := requireAdmin(ctx); err != nil {
				return err
			}
			if db == "" {
				db = s.cfg.DefaultDB
			}
			app, err := s.createApp(ctx, args[0], db)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created %s (database: %s)\nPush to it: git push ssh://git@<host>:<port>/%s main\n", app.Name, app.DBKind, app.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "database: sqlite, postgres or mysql")
	return cmd
}

func (s *Server) configCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config <app>",
		Short: "Show an app's config vars",
		Args:  exactArgs(1, "config <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := s.appFor(cmd.Context(), args[0], conductor.ReadWrite)
			if err != nil {
				return err
			}
			vars, err := s.store.Config(cmd.Context(), app.ID)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(vars)
			}
			keys := make([]string, 0, len(vars))
			for k := range vars {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(cmd.OutOrStdout(), "%s=%s\n", k, vars[k])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) configGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "config:get <app> <KEY>",
		Short: "Print one config var",
		Args:  exactArgs(2, "config:get <app> <KEY>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, err := s.appFor(cmd.Context(), args[0], conductor.ReadWrite)
			if err != nil {
				return err
			}
			vars, err := s.store.Config(cmd.Context(), app.ID)
			if err != nil {
				return err
			}
			v, ok := vars[args[1]]
			if !ok {
				return conductor.Errorf(conductor.ENOTFOUND, "%s has no config var %q", app.Name, args[1])
			}
			fmt.Fprintln(cmd.OutOrStdout(), v)
			return nil
		},
	}
}

func (s *Server) configSetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "config:set <app> KEY=VALUE...",
		Short: "Set config vars and restart the app with them",
		Args:  minArgs(2, "config:set <app> KEY=VALUE..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app, err := s.appFor(ctx, args[0], conductor.ReadWrite)
			if err != nil {
				return err
			}
			vars := map[string]string{}
			for _, kv := range args[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return conductor.Errorf(conductor.EINVALID, "%q is not KEY=VALUE", kv)
				}
				if err := conductor.ValidateConfigKey(k); err != nil {
					return err
				}
				vars[k] = v
			}
			if err := s.store.SetConfig(ctx, app.ID, vars); err != nil {
				return err
			}
			keys := make([]string, 0, len(vars))
			for k := range vars {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			fmt.Fprintf(cmd.OutOrStdout(), "Set %s on %s\n", strings.Join(keys, ", "), app.Name)
			return s.redeploy(ctx, app, "config:set", cmd.OutOrStdout())
		},
	}
}

func (s *Server) configUnsetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "config:unset <app> KEY...",
		Short: "Remove config vars and restart the app without them",
		Args:  minArgs(2, "config:unset <app> KEY..."),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app, err := s.appFor(ctx, args[0], conductor.ReadWrite)
			if err != nil {
				return err
			}
			for _, k := range args[1:] {
				if err := conductor.ValidateConfigKey(k); err != nil {
					return err
				}
			}
			if err := s.store.UnsetConfig(ctx, app.ID, args[1:]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Unset %s on %s\n", strings.Join(args[1:], ", "), app.Name)
			return s.redeploy(ctx, app, "config:unset", cmd.OutOrStdout())
		},
	}
}

// redeploy releases the app's current revision again (with its new config),
// the way Heroku makes a new release on config changes. An app that was
// never deployed just keeps the config for its first push.
func (s *Server) redeploy(ctx context.Context, app *conductor.App, reason string, out io.Writer) error {
	cur, err := s.store.CurrentRelease(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	job := &queue.Job{
		ID: hooks.NewJobID(), App: app.Name, Host: s.cfg.Host, Rev: cur.Rev, Ref: reason,
		Pusher: UserFromContext(ctx).Name, CreatedAt: time.Now().UTC(),
	}
	fmt.Fprintf(out, "-----> Restarting %s with the new config (release %s)\n", app.Name, job.ID)
	return hooks.Submit(ctx, s.queue, s.RepoDir(app.Name), job, out)
}
