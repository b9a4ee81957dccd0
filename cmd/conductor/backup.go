package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/backup"
	"github.com/hasadna/conductor/provision"
)

// stateOptions say where a Conductor keeps its state and its apps, and
// which database servers hold the apps' databases: what backup and restore
// act on.
type stateOptions struct {
	data, config string
	system       bool
	databases    databaseOptions
}

func (o *stateOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.data, "data", "", "data directory, as given to conductor serve")
	f.BoolVar(&o.system, "system", false, "the production layout, configured as conductor serve --system is (/var/lib/conductor, /srv)")
	f.StringVar(&o.config, "config", defaultConfigPath, "with --system: serve's configuration file (for the data dir, srv and the DSNs)")
	o.databases.addFlags(f)
}

// layout resolves the data dir and where the apps' files are.
func (o *stateOptions) layout(flags *pflag.FlagSet) (string, provision.Layout, error) {
	if (o.data == "") == !o.system {
		return "", provision.Layout{}, errors.New("give --data DIR or --system")
	}
	data, err := filepath.Abs(o.data)
	if err != nil {
		return "", provision.Layout{}, err
	}
	if !o.system {
		return data, provision.Layout{Srv: filepath.Join(data, "srv")}, nil
	}
	sys, err := fromSystemConfig(flags, o.config)
	if err != nil {
		return "", provision.Layout{}, err
	}
	return o.data, provision.Layout{Srv: systemSetting(sys, "srv")}, nil
}

// servers are the configured database servers, by kind.
func (o *stateOptions) servers(ctx context.Context, layout provision.Layout) (map[string]conductor.DatabaseServer, error) {
	dbs, err := o.databases.databases(ctx, nil, layout, conductor.DBSQLite)
	if err != nil {
		return nil, err
	}
	return dbs.Servers, nil
}

func backupCommand() *cobra.Command {
	var o stateOptions
	var out string
	var skipDBBackups bool
	cmd := &cobra.Command{
		Use:   "backup --data DIR --out FILE.tar.gz|DIR",
		Short: "Back up Conductor's state, repositories, app data and app databases (while serve runs)",
		Long: `Write one .tar.gz (mode 0600: it holds secrets) with a consistent snapshot
of conductor.db, the SSH host key, the git repositories, each app's data dir
(its SQLite database snapshotted, media files) and SQL dumps of the apps'
PostgreSQL and MariaDB databases (give the DSN flags you give serve), and
the per-app database backups of this host (<data>/db-backups, db:backup's;
--skip-db-backups leaves them out). conductor serve may keep running. --out may name a directory: the file is
then conductor-backup-<UTC time>.tar.gz in it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return errors.New("--out is required")
			}
			ctx := cmd.Context()
			data, layout, err := o.layout(cmd.Flags())
			if err != nil {
				return err
			}
			servers, err := o.servers(ctx, layout)
			if err != nil {
				return err
			}
			if fi, err := os.Stat(out); err == nil && fi.IsDir() {
				out = filepath.Join(out, "conductor-backup-"+time.Now().UTC().Format("20060102T150405Z")+".tar.gz")
			}
			b := &backup.Backup{Data: data, Layout: layout, Servers: servers, Version: version, SkipDBBackups: skipDBBackups}
			m, err := writeBackup(ctx, b, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backed up %s (%d apps) to %s\n", data, len(m.Apps), out)
			// Say plainly what is not in it: a deployed app's files live on
			// its host, which may be another machine.
			for _, app := range m.Apps {
				// What of an app's data dir was left out, and why: a
				// file the app could not read itself, a database that
				// is a link or not a regular file, or that the app's
				// user could not snapshot. The rest of the backup is
				// whole: one app's files never fail everyone's backup.
				for _, note := range app.Notes {
					fmt.Fprintf(cmd.ErrOrStderr(), "Warning: app %s: %s\n", app.Name, note)
				}
				if !app.Data && app.Rev != "" {
					fmt.Fprintf(cmd.ErrOrStderr(), "Not included: the files of %s (host %s): %s is not on this machine; back it up there\n",
						app.Name, app.Host, layout.DataDir(app.Name))
				}
			}
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&out, "out", "", "archive to write, or a directory to write it in")
	cmd.Flags().BoolVar(&skipDBBackups, "skip-db-backups", false, "leave out <data>/db-backups (db:backup's files; e.g. when they are copied off-host with --backup-s3-url)")
	return cmd
}

// writeBackup writes the archive next to out and renames it into place, so
// out is never a partial backup.
func writeBackup(ctx context.Context, b *backup.Backup, out string) (*backup.Manifest, error) {
	tmp := out + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create the backup: %w", err)
	}
	defer os.Remove(tmp)
	m, err := b.Write(ctx, f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("back up %s: %w", b.Data, err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return nil, err
	}
	return m, nil
}

func restoreCommand() *cobra.Command {
	var o stateOptions
	var from string
	cmd := &cobra.Command{
		Use:   "restore --data DIR --from FILE.tar.gz",
		Short: "Restore a backup into an empty data dir (then start serve and redeploy the apps)",
		Long: `Put a backup made by conductor backup into a new, empty data dir: the state,
host key and repositories, each app's data dir (owned by the app's unix
user, created if needed) and its PostgreSQL or MariaDB database (created
with the app's credentials on the server the DSN flags name, which must not
hold tables for it yet). Releases and virtualenvs are not in a backup:
start conductor serve, then redeploy each app with the command printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" {
				return errors.New("--from is required")
			}
			ctx := cmd.Context()
			data, layout, err := o.layout(cmd.Flags())
			if err != nil {
				return err
			}
			servers, err := o.servers(ctx, layout)
			if err != nil {
				return err
			}
			f, err := os.Open(from)
			if err != nil {
				return err
			}
			defer f.Close()
			m, err := (&backup.Restore{Data: data, Layout: layout, Servers: servers}).Run(ctx, f)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Restored %d apps from %s (taken %s from %s) into %s.\n",
				len(m.Apps), from, m.Created.Format(time.RFC3339), m.Data, data)
			sort.Slice(m.Apps, func(i, j int) bool { return m.Apps[i].Name < m.Apps[j].Name })
			if len(m.Apps) > 0 {
				fmt.Fprintln(w, "Start conductor serve, then deploy each app again (its release is built from its repository):")
				for _, app := range m.Apps {
					if app.Rev == "" {
						fmt.Fprintf(w, "  %s: never deployed\n", app.Name)
						continue
					}
					fmt.Fprintf(w, "  ssh -p PORT git@HOST deploy %s %s\n", app.Name, app.Rev)
				}
			}
			return nil
		},
	}
	o.addFlags(cmd)
	cmd.Flags().StringVar(&from, "from", "", "backup archive made by conductor backup")
	return cmd
}
