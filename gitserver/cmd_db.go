package gitserver

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/hooks"
	"github.com/hasadna/conductor/provision"
)

// dbListCommand is `db <app>` and its synonym `db:list <app>`: the app's
// databases by alias, never a password.
func (s *Server) dbListCommand(name string) func() *cobra.Command {
	return func() *cobra.Command {
		var asJSON bool
		cmd := &cobra.Command{
			Use:   name + " <app>",
			Short: "List an app's databases: alias, kind, name, user, the variable with its URL",
			Args:  exactArgs(1, name+" <app> [--json]"),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx := cmd.Context()
				app := appFromContext(ctx)
				dbs, err := s.databases().List(ctx, app)
				if err != nil {
					return err
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), dbs)
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "%-12s %-9s %-22s %s\n", "ALIAS", "KIND", "ENV", "DATABASE")
				for _, d := range dbs {
					fmt.Fprintf(w, "%-12s %-9s %-22s %s\n", d.Alias, d.Kind, d.Env, describeDB(d))
				}
				return nil
			},
		}
		cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		return cmd
	}
}

// describeDB is one database as db and apps:info show it.
func describeDB(d provision.DatabaseInfo) string {
	desc := d.Name
	if d.User != "" {
		desc += " as " + d.User
	}
	if d.Port != "" {
		desc += " on " + net.JoinHostPort(d.Host, d.Port)
	} else if d.Host != "" {
		desc += " on " + d.Host // a unix socket
	}
	if !d.Provisioned {
		desc += " (made by the first deploy)"
	}
	return desc
}

// databases is the server's provisioner; without one (tests, SQLite only)
// every server kind is refused by CheckKind.
func (s *Server) databases() *provision.Databases {
	if s.cfg.Databases != nil {
		return s.cfg.Databases
	}
	return &provision.Databases{}
}

func (s *Server) dbCreateCommand() *cobra.Command {
	var alias string
	var confirm, noRestart bool
	cmd := &cobra.Command{
		Use:   "db:create <app> postgres|mysql",
		Short: "Add a database to an app, as DATABASE_URL or <ALIAS>_DATABASE_URL (admin)",
		Long: "Add a PostgreSQL or MariaDB database to an app under a Django alias (--alias, default\n" +
			"\"default\"), then redeploy the serving release so that it runs its release phase (migrate)\n" +
			"with the database in DATABASES and its URL in DATABASE_URL (default) or <ALIAS>_DATABASE_URL.\n" +
			"Replacing a deployed app's SQLite default needs --confirm: the new database starts empty and\n" +
			"the SQLite file stays in the app's data dir with its data (copy it with dumpdata/loaddata).",
		Args: exactArgs(2, "db:create <app> postgres|mysql [--alias NAME] [--confirm] [--no-restart]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			kind := args[1]
			if kind != conductor.DBPostgres && kind != conductor.DBMySQL {
				return conductor.Errorf(conductor.EINVALID, "unknown database kind %q: use postgres or mysql", kind)
			}
			if err := conductor.ValidateDatabaseAlias(alias); err != nil {
				return err
			}
			// Flags are not in the audit trail's detail by themselves.
			auditFromContext(ctx).Detail = kind + " --alias " + alias
			dbs := s.databases()
			if err := dbs.CheckKind(kind); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if alias == conductor.DefaultAlias && app.DBKind == conductor.DBSQLite && !confirm {
				if dbs.SQLiteExists(app.Name) || s.deployed(ctx, app) {
					return conductor.Errorf(conductor.EINVALID,
						"%s's default database is SQLite: the new %s database replaces it empty, and the SQLite file stays in the app's data dir with its data. "+
							"Save the data first (run %s -- python manage.py dumpdata), then confirm with db:create %s %s --confirm",
						app.Name, kind, app.Name, app.Name, kind)
				}
			}
			res, err := dbs.Add(ctx, app, kind, alias)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "Created %s for %s as %s (%s)\n", res.DB, app.Name, alias, conductor.DatabaseURLVar(alias))
			if res.KeptSQLite != "" {
				fmt.Fprintf(out, "The SQLite database %s is kept with its data; the app no longer uses it (apps:destroy removes it)\n", res.KeptSQLite)
			}
			if noRestart {
				fmt.Fprintf(out, "Not redeployed: the app sees the database from its next deploy (a push or deploy runs migrate on it)\n")
				return nil
			}
			if err := s.redeployRelease(ctx, app, "db:create "+alias, out); err != nil {
				fmt.Fprintf(out, "The database stays and the next deploy uses it; the serving release keeps the databases it had (db:destroy %s --alias %s --confirm undoes it)\n", app.Name, alias)
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&alias, "alias", conductor.DefaultAlias, "Django database alias")
	cmd.Flags().BoolVar(&confirm, "confirm", false, "replace a deployed app's SQLite default database")
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "do not redeploy now")
	return cmd
}

func (s *Server) dbDestroyCommand() *cobra.Command {
	var alias string
	var confirm, noRestart bool
	cmd := &cobra.Command{
		Use:   "db:destroy <app> --alias NAME --confirm",
		Short: "Drop one of an app's databases with its data (admin)",
		Long: "Drop the database of an alias with all its data, then redeploy the serving release without it.\n" +
			"Destroying the default puts the app back on its SQLite file (the one it had before, if any).",
		Args: exactArgs(1, "db:destroy <app> --alias NAME --confirm [--no-restart]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if alias == "" {
				return conductor.Errorf(conductor.EINVALID, "usage: db:destroy %s --alias NAME --confirm", app.Name)
			}
			if err := conductor.ValidateDatabaseAlias(alias); err != nil {
				return err
			}
			auditFromContext(ctx).Detail = "--alias " + alias
			if !confirm {
				return conductor.Errorf(conductor.EINVALID,
					"this drops %s's database %s with all its data: confirm with db:destroy %s --alias %s --confirm", app.Name, alias, app.Name, alias)
			}
			db, err := s.databases().Remove(ctx, app, alias)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if db != nil {
				fmt.Fprintf(out, "Dropped %s of %s (%s)\n", db, app.Name, alias)
			}
			if alias == conductor.DefaultAlias {
				fmt.Fprintf(out, "%s's default database is SQLite again: %s\n", app.Name, provision.SQLiteDatabase(s.databases().Layout, app.Name).Name)
			}
			if noRestart {
				fmt.Fprintf(out, "Not redeployed: the app keeps the old URL until its next deploy or restart\n")
				return nil
			}
			return s.redeployRelease(ctx, app, "db:destroy "+alias, out)
		},
	}
	cmd.Flags().StringVar(&alias, "alias", "", "Django database alias")
	cmd.Flags().BoolVar(&confirm, "confirm", false, "drop it with its data")
	cmd.Flags().BoolVar(&noRestart, "no-restart", false, "do not redeploy now")
	return cmd
}

// deployed tells whether the app has a serving release.
func (s *Server) deployed(ctx context.Context, app *conductor.App) bool {
	_, err := s.store.CurrentRelease(ctx, app.ID)
	return err == nil
}

// redeployRelease builds and releases the serving revision again through
// the whole pipeline, release phase included: a database change needs
// migrate to run on the new database before traffic switches (a restart
// job would start the release on empty tables). A never-deployed app gets
// the change at its first push.
func (s *Server) redeployRelease(ctx context.Context, app *conductor.App, reason string, out io.Writer) error {
	cur, err := s.store.CurrentRelease(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		fmt.Fprintf(out, "%s has not been deployed yet: the change applies to its first deploy\n", app.Name)
		return nil
	} else if err != nil {
		return err
	}
	job := s.newJob(ctx, app, cur.Rev, reason)
	fmt.Fprintf(out, "-----> Redeploying %s (%.8s) as %s\n", app.Name, cur.Rev, job.ID)
	return hooks.Submit(ctx, s.queue, s.RepoDir(app.Name), job, out)
}
