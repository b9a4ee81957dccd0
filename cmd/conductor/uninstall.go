package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/deploy/systemd"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/sqlite"
)

type uninstallOptions struct {
	config   string
	keepData bool
}

func uninstallCommand() *cobra.Command {
	var o uninstallOptions
	cmd := &cobra.Command{
		Use:   "uninstall [--keep-data]",
		Short: "Undo conductor install: stop the services, remove what install made (as root)",
		Long: `Stop and disable Conductor's services and remove the files and directories
conductor install created: the binary, the units, circusd's configuration.
Without --keep-data it also removes the state (/var/lib/conductor), the log
files, the config file and every app: its nginx site, watchers, files and
unix user. With --keep-data those stay, so installing again brings the apps
back. Nothing Conductor did not create is removed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUninstall(cmd.Context(), o, cmd.Flags().Changed("config"), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.config, "config", defaultConfigPath, "configuration file")
	cmd.Flags().BoolVar(&o.keepData, "keep-data", false, "keep the state, config, logs and apps")
	return cmd
}

func runUninstall(ctx context.Context, o uninstallOptions, explicit bool, out io.Writer) error {
	if os.Geteuid() != 0 {
		return errors.New("conductor uninstall must run as root")
	}
	paths, err := shippedPaths()
	if err != nil {
		return err
	}
	s, err := loadSystemSettings(o.config, explicit)
	if err != nil {
		return err
	}
	m, err := readManifest(s.data)
	if err != nil {
		return err
	}
	if err := stopServices(ctx, s, paths, out); err != nil {
		return err
	}

	created := map[string]bool{}
	for _, p := range m.Created {
		created[p] = true
	}
	// Kept with --keep-data: what installing again needs to bring the
	// apps back as they were.
	keep := map[string]bool{}
	if o.keepData {
		for _, p := range []string{s.data, paths.logDir, o.config, s.circusInclude,
			filepath.Join(s.data, "circus"), s.srv, filepath.Join(s.srv, "projects"), filepath.Join(s.srv, "environments")} {
			keep[p] = true
		}
	} else {
		if err := removeApps(ctx, s, out); err != nil {
			return err
		}
		if err := removeState(s, paths, created, out); err != nil {
			return err
		}
	}

	// Files first, then directories deepest first, and only if empty: a
	// directory holding anything else is someone else's business.
	var left []string
	for i := len(m.Created) - 1; i >= 0; i-- {
		p := m.Created[i]
		if keep[p] {
			left = append([]string{p}, left...)
			continue
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if err := os.Remove(p); err != nil {
			if fi.IsDir() {
				fmt.Fprintf(out, "Kept %s: it is not empty\n", p)
				continue
			}
			return fmt.Errorf("remove %s: %w", p, err)
		}
		fmt.Fprintf(out, "Removed %s\n", p)
	}
	if o.keepData {
		if err := writeManifest(s.data, manifest{Created: left}); err != nil {
			return err
		}
		fmt.Fprintf(out, "Kept the state (%s), config (%s), logs and apps: conductor install brings them back\n", s.data, o.config)
	}
	if systemdRunning() {
		if out, err := exec.CommandContext(ctx, "systemctl", "daemon-reload").CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl daemon-reload: %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// stopServices stops and disables the units with systemd; without it,
// it refuses to go on while Conductor or circusd still run.
func stopServices(ctx context.Context, s systemSettings, paths installPaths, out io.Writer) error {
	if systemdRunning() {
		units := []string{systemd.Conductor, systemd.Circusd}
		if raw, err := exec.CommandContext(ctx, "systemctl", "list-units", "--plain", "--no-legend", "--all", "conductor-worker@*").Output(); err == nil {
			for _, line := range strings.Split(string(raw), "\n") {
				if f := strings.Fields(line); len(f) > 0 {
					units = append(units, f[0])
				}
			}
		}
		args := append([]string{"disable", "--now"}, units...)
		if o, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(o)))
		}
		fmt.Fprintf(out, "Stopped and disabled %s\n", strings.Join(units, ", "))
		return nil
	}
	if pids := runningConductors(paths.bin); len(pids) > 0 {
		return fmt.Errorf("systemd is not running and conductor still runs (pid %v): stop it first", pids)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := s.circus().Ping(pingCtx); err == nil {
		return errors.New("systemd is not running and circusd still runs the apps: stop it first (SIGTERM to the pid in " +
			filepath.Join(s.data, "circus", "circusd.pid") + ")")
	}
	return nil
}

// removeApps undoes what Conductor made for each app on this host: nginx
// site, watchers, files, unix user. Databases on a PostgreSQL or MariaDB
// server are listed, not dropped: the admin decides.
func removeApps(ctx context.Context, s systemSettings, out io.Writer) error {
	dbPath := filepath.Join(s.data, "conductor.db")
	if !fileExists(dbPath) {
		return nil
	}
	db, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	apps, err := db.ListApps(ctx)
	if err != nil {
		return err
	}
	ngx := s.nginx()
	layout := provision.Layout{Srv: s.srv}
	for _, app := range apps {
		if err := conductor.ValidateAppName(app.Name); err != nil {
			return fmt.Errorf("app %q in the state: %w", app.Name, err)
		}
		if err := ngx.RemoveSite(ctx, app.Name); err != nil {
			if fileExists(ngx.SitePath(app.Name)) {
				return err
			}
			fmt.Fprintf(out, "Removed %s; nginx was not reloaded: %v\n", ngx.SitePath(app.Name), err)
		}
		for _, dir := range []string{layout.ProjectDir(app.Name), layout.EnvironmentsDir(app.Name)} {
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("remove %s: %w", dir, err)
			}
		}
		if err := provision.RemoveUser(ctx, app.Name); err != nil {
			return err
		}
		dbs, err := db.AppDatabases(ctx, app.ID)
		if err != nil {
			return err
		}
		for _, d := range dbs {
			fmt.Fprintf(out, "App %s has a %s database (%s), not dropped: drop database and user %q by hand if you no longer need them\n", app.Name, d.Kind, d.Alias, d.Name)
		}
		fmt.Fprintf(out, "Removed app %s\n", app.Name)
	}
	// The route lookup goes with the last site: it names a script in the
	// state dir, which goes too.
	if err := ngx.RemoveRoutesConf(ctx); err != nil {
		return err
	}
	// Watcher files are all Conductor's, but check each one's header
	// anyway: the include dir could be shared.
	files, err := filepath.Glob(filepath.Join(s.circusInclude, "*.ini"))
	if err != nil {
		return err
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if bytes.HasPrefix(raw, []byte("# Generated by Conductor")) {
			if err := os.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}

// stateEntries are what Conductor keeps in its data dir.
var stateEntries = []string{"conductor.db", "conductor.db-wal", "conductor.db-shm", "ssh_host_ed25519_key",
	"repos", "nats", "nats.token", "nats-tls", "certs", "hooks", "bin", "circus", "nginx", "instance-id", manifestName}

// removeState deletes the data dir's contents and the log files.
func removeState(s systemSettings, paths installPaths, created map[string]bool, out io.Writer) error {
	for _, name := range stateEntries {
		if err := os.RemoveAll(filepath.Join(s.data, name)); err != nil {
			return err
		}
	}
	if created[s.data] {
		if err := os.RemoveAll(s.data); err != nil {
			return err
		}
	}
	logs, err := filepath.Glob(filepath.Join(paths.logDir, "*.log*"))
	if err != nil {
		return err
	}
	for _, l := range logs {
		base := filepath.Base(l)
		if slices.ContainsFunc([]string{"conductor.log", "circusd.log", "worker-"}, func(p string) bool { return strings.HasPrefix(base, p) }) {
			if err := os.Remove(l); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(out, "Removed the state in %s and the logs in %s\n", s.data, paths.logDir)
	return nil
}
