package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/notify"
)

// Per-app database backups. The state (which backups exist, the
// schedules) is the main host's SQLite; the dumps, restores and files are
// the app's host's, done by its agent (agent/dbbackup.go), so they work
// the same for apps on worker hosts.

// backupStore is the state's backup records: the SQLite store conductor
// serve gives the server implements it.
func (s *Server) backupStore() (conductor.DBBackupStore, error) {
	st, ok := s.store.(conductor.DBBackupStore)
	if !ok || s.cfg.Agents == nil {
		return nil, conductor.Errorf(conductor.EUNAVAILABLE, "this server keeps no database backups")
	}
	return st, nil
}

// dbKind is the kind of an app's database of that alias.
func (s *Server) dbKind(ctx context.Context, app *conductor.App, alias string) (string, error) {
	if alias == conductor.DefaultAlias {
		return app.DBKind, nil
	}
	if s.cfg.Databases == nil || s.cfg.Databases.Store == nil {
		return "", conductor.Errorf(conductor.ENOTFOUND, "%s has no database %s", app.Name, alias)
	}
	db, err := s.cfg.Databases.Store.FindAppDatabase(ctx, app.ID, alias)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		return "", conductor.Errorf(conductor.ENOTFOUND, "%s has no database %s (see db %s)", app.Name, alias, app.Name)
	} else if err != nil {
		return "", err
	}
	return db.Kind, nil
}

// backupExt names a backup file after what it holds.
func backupExt(kind string) string {
	switch kind {
	case conductor.DBPostgres:
		return "pgdump"
	case conductor.DBMySQL:
		return "sql"
	}
	return "sqlite3"
}

// backupDB takes a backup of one of the app's databases on its host and
// records it, failed or not.
func (s *Server) backupDB(ctx context.Context, app *conductor.App, alias string, scheduled bool) (*conductor.DBBackup, error) {
	st, err := s.backupStore()
	if err != nil {
		return nil, err
	}
	kind, err := s.dbKind(ctx, app, alias)
	if err != nil {
		return nil, err
	}
	b := &conductor.DBBackup{AppID: app.ID, Alias: alias, Kind: kind, Host: app.Host, Started: time.Now().UTC(),
		Status: conductor.BackupRunning, Scheduled: scheduled}
	if err := st.AddDBBackup(ctx, b); err != nil {
		return nil, err
	}
	// The name is Conductor's own: id, alias (validated) and time.
	b.File = fmt.Sprintf("%d-%s-%s.%s", b.ID, alias, b.Started.Format("20060102T150405Z"), backupExt(kind))
	res, err := s.cfg.Agents.DBBackup(ctx, app, alias, b.File)
	b.Duration = time.Since(b.Started)
	if err != nil {
		b.Status, b.Error, b.File = conductor.BackupFailed, err.Error(), ""
	} else {
		b.Status, b.Size, b.SHA256 = conductor.BackupSucceeded, res.Size, res.SHA256
	}
	// Recorded even when the session has gone.
	if ferr := st.FinishDBBackup(context.WithoutCancel(ctx), b); ferr != nil {
		return b, errors.Join(err, ferr)
	}
	if err != nil {
		s.backupFailed(ctx, app, b)
		// The agent's errors come back as *conductor.Error: their message
		// is the user's to see (see db:backups), with this line before it.
		return b, conductor.Errorf(conductor.ErrorCode(err), "backup %d of %s's %s database failed: %s", b.ID, app.Name, alias, conductor.ErrorMessage(err))
	}
	if res.Offsite != "" {
		s.uploadBackup(ctx, st, app, b, res.Offsite)
	}
	return b, nil
}

// uploadBackup has the app's host copy a backup that succeeded to its
// off-host target (offsite names it) and records how that went. The local
// backup is recorded as succeeded before: a failed upload does not make it
// fail, it is shown by db:backups and doctor and raises backup.failed.
func (s *Server) uploadBackup(ctx context.Context, st conductor.DBBackupStore, app *conductor.App, b *conductor.DBBackup, offsite string) {
	// The upload goes on if the session ends (the agent bounds it).
	ctx = context.WithoutCancel(ctx)
	b.RemoteStatus = conductor.RemoteUploading
	if err := st.SetDBBackupRemote(ctx, b); err != nil {
		slog.Error("record an upload", "app", app.Name, "backup", b.ID, "err", err)
	}
	key, err := s.cfg.Agents.DBBackupUpload(ctx, app, b)
	if err != nil {
		b.RemoteStatus, b.RemoteError = conductor.RemoteFailed, "copy to "+offsite+" failed: "+conductor.ErrorMessage(err)
	} else {
		b.RemoteStatus, b.Remote = conductor.RemoteUploaded, key
	}
	if err := st.SetDBBackupRemote(ctx, b); err != nil {
		slog.Error("record an upload", "app", app.Name, "backup", b.ID, "err", err)
	}
	if b.RemoteStatus == conductor.RemoteFailed {
		slog.Error("off-host copy of a database backup failed", "app", app.Name, "alias", b.Alias, "backup", b.ID, "err", b.RemoteError)
		s.cfg.Notify.Emit(notify.BackupEvent(app.Name, b.Host, b.Alias, b.ID, b.Scheduled, b.Duration, b.RemoteError))
	}
}

// offsiteLine tells how a backup's off-host copy went, for db:backup.
func offsiteLine(b *conductor.DBBackup) string {
	switch b.RemoteStatus {
	case conductor.RemoteUploaded:
		return "Copied off-host: object " + b.Remote
	case conductor.RemoteFailed:
		return "WARNING: the backup is kept on the host, but its " + b.RemoteError
	}
	return ""
}

// locateBackups sets the Location of the app's backups that succeeded, as
// its host sees them: the local file there, the object in its off-host
// target. It returns the app's objects there that no backup of the state
// names (uploaded after the state was restored from an older archive, or
// by another Conductor with the same prefix), and a warning when the host
// could not tell.
func (s *Server) locateBackups(ctx context.Context, app *conductor.App, backups []*conductor.DBBackup) (untracked []string, warning string) {
	var files []string
	for _, b := range backups {
		if b.Status == conductor.BackupSucceeded && b.Host == app.Host && b.File != "" {
			files = append(files, b.File)
		}
	}
	where, err := s.cfg.Agents.DBBackupWhere(ctx, app, files)
	if err != nil {
		return nil, fmt.Sprintf("host %s did not say where the backups are: %s", app.Host, conductor.ErrorMessage(err))
	}
	local, remote := map[string]bool{}, map[string]bool{}
	for _, f := range where.Local {
		local[f] = true
	}
	for _, k := range where.Remote {
		remote[k] = true
	}
	listed := where.Offsite != "" && where.RemoteError == ""
	for _, b := range backups {
		if b.Status != conductor.BackupSucceeded || b.Host != app.Host || b.File == "" {
			continue
		}
		onRemote := b.Remote != "" && remote[b.Remote]
		if !listed {
			// Not listed: as the upload left it.
			onRemote = b.RemoteStatus == conductor.RemoteUploaded
		}
		switch {
		case local[b.File] && onRemote:
			b.Location = conductor.LocationBoth
		case local[b.File]:
			b.Location = conductor.LocationLocal
		case onRemote:
			b.Location = conductor.LocationRemote
		default:
			b.Location = conductor.LocationGone
		}
	}
	if where.RemoteError != "" {
		return nil, "the off-host target could not be listed: " + firstErrLine(where.RemoteError)
	}
	known := map[string]bool{}
	for _, b := range backups {
		known[b.Remote] = true
	}
	untracked = []string{}
	for _, k := range where.Remote {
		if !known[k] {
			untracked = append(untracked, k)
		}
	}
	return untracked, ""
}

// backupFailed is called once for every backup that failed (b.Error says
// why), taken by db:backup or by a schedule, after it was recorded: the
// one place that tells someone (the backup.failed notification).
func (s *Server) backupFailed(_ context.Context, app *conductor.App, b *conductor.DBBackup) {
	slog.Error("database backup failed", "app", app.Name, "alias", b.Alias, "backup", b.ID, "scheduled", b.Scheduled, "err", b.Error)
	s.cfg.Notify.Emit(notify.BackupEvent(app.Name, b.Host, b.Alias, b.ID, b.Scheduled, b.Duration, b.Error))
}

func (s *Server) dbBackupCommand() *cobra.Command {
	var alias string
	cmd := &cobra.Command{
		Use:   "db:backup <app>",
		Short: "Back up one of an app's databases on its host (see db:backups)",
		Long: "Back up one of an app's databases (--alias, default \"default\") into a root-only directory\n" +
			"of the app's host: a consistent online snapshot of SQLite, pg_dump -Fc of PostgreSQL,\n" +
			"mariadb-dump --single-transaction of MariaDB. The app keeps running.",
		Args: exactArgs(1, "db:backup <app> [--alias NAME]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if err := conductor.ValidateDatabaseAlias(alias); err != nil {
				return err
			}
			auditFromContext(ctx).Detail = "--alias " + alias
			b, err := s.backupDB(ctx, app, alias, false)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Backup %d of %s's %s database (%s): %s in %s\n",
				b.ID, app.Name, alias, b.Kind, formatSize(b.Size), b.Duration.Round(time.Millisecond))
			if line := offsiteLine(b); line != "" {
				fmt.Fprintln(cmd.OutOrStdout(), line)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&alias, "alias", conductor.DefaultAlias, "Django database alias")
	return cmd
}

// dbBackupsList is db:backups --json.
type dbBackupsList struct {
	Backups   []*conductor.DBBackup              `json:"backups"`
	Schedules []conductor.DBBackupScheduleStatus `json:"schedules"`
	Problems  []string                           `json:"problems"`
	// Untracked are the app's objects in the off-host target that no
	// backup of the state names (db:restore cannot use them; download
	// them with an S3 client).
	Untracked []string `json:"untracked_remote,omitempty"`
}

func (s *Server) dbBackupsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "db:backups <app>",
		Short: "List an app's database backups and schedules, with failed and late ones",
		Args:  exactArgs(1, "db:backups <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			st, err := s.backupStore()
			if err != nil {
				return err
			}
			backups, err := st.DBBackups(ctx, app.ID)
			if err != nil {
				return err
			}
			scheds, err := st.DBBackupSchedules(ctx, app.ID)
			if err != nil {
				return err
			}
			statuses, problems := conductor.DBBackupProblems(time.Now(), backups, scheds)
			untracked, warning := s.locateBackups(ctx, app, backups)
			if warning != "" {
				problems = append(problems, warning)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), dbBackupsList{Backups: backups, Schedules: statuses, Problems: problems, Untracked: untracked})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-6s %-12s %-9s %-20s %9s %9s %-10s %-12s %-9s %s\n", "ID", "ALIAS", "KIND", "STARTED", "SIZE", "DURATION", "STATUS", "WHERE", "OFF-HOST", "ERROR")
			for _, b := range backups {
				size := ""
				if b.Status == conductor.BackupSucceeded {
					size = formatSize(b.Size)
				}
				status := b.Status
				if b.Scheduled {
					status += "*"
				}
				where, offHost, errText := b.Location, b.RemoteStatus, b.Error
				if where == "" {
					where = "-"
				}
				if offHost == "" {
					offHost = "-"
				}
				if errText == "" && b.RemoteError != "" {
					errText = "off-host: " + b.RemoteError
				}
				fmt.Fprintf(w, "%-6d %-12s %-9s %-20s %9s %9s %-10s %-12s %-9s %s\n", b.ID, b.Alias, b.Kind, b.Started.Format("2006-01-02 15:04:05Z"),
					size, b.Duration.Round(time.Millisecond), status, where, offHost, firstErrLine(errText))
			}
			for _, sc := range statuses {
				fmt.Fprintf(w, "Schedule of %s: %q, keeping %d; next %s\n", sc.Alias, sc.Schedule, sc.Keep, sc.Next.Format(time.RFC3339))
			}
			if len(untracked) > 0 {
				fmt.Fprintf(w, "Off-host objects of %s that no backup here names (not restorable with db:restore): %s\n", app.Name, strings.Join(untracked, ", "))
			}
			for _, p := range problems {
				fmt.Fprintf(w, "WARNING: %s\n", p)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) dbRestoreCommand() *cobra.Command {
	var confirm bool
	cmd := &cobra.Command{
		Use:   "db:restore <app> <backup-id> --confirm",
		Short: "Restore one of an app's database backups (admin)",
		Long: "Put an app's database back as it was at a backup (see db:backups): the app goes into\n" +
			"maintenance and its processes stop, the backup (checked against its SHA-256) is restored,\n" +
			"and the app comes back. What was written since the backup is lost. A restore that fails\n" +
			"leaves the database as it was (docs/production.md says how, per database kind).",
		Args: exactArgs(2, "db:restore <app> <backup-id> --confirm"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			id, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || id <= 0 {
				return conductor.Errorf(conductor.EINVALID, "invalid backup id %q: see db:backups %s", args[1], app.Name)
			}
			st, err := s.backupStore()
			if err != nil {
				return err
			}
			b, err := st.FindDBBackup(ctx, app.ID, id)
			if err != nil {
				return err
			}
			if b.Status != conductor.BackupSucceeded {
				return conductor.Errorf(conductor.EINVALID, "backup %d %s: only a succeeded backup can be restored", id, b.Status)
			}
			// A backup copied off-host can be restored on the app's
			// new host: its agent fetches the copy.
			if b.Host != app.Host && b.RemoteStatus != conductor.RemoteUploaded {
				return conductor.Errorf(conductor.EINVALID, "backup %d is on host %s, the app is on %s, and it has no off-host copy", id, b.Host, app.Host)
			}
			if !confirm {
				return conductor.Errorf(conductor.EINVALID, "this replaces %s's %s database with backup %d of %s, losing what was written since: confirm with db:restore %s %d --confirm",
					app.Name, b.Alias, id, b.Started.Format(time.RFC3339), app.Name, id)
			}
			return s.restoreDB(ctx, app, b, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&confirm, "confirm", false, "replace the database")
	return cmd
}

// restoreDB restores b with the app in maintenance (unless it was
// already), its processes stopped by its host meanwhile.
func (s *Server) restoreDB(ctx context.Context, app *conductor.App, b *conductor.DBBackup, out io.Writer) error {
	if !s.backupSched.startRestore(app.ID) {
		return conductor.Errorf(conductor.ECONFLICT, "a restore of %s is running: wait for it to end", app.Name)
	}
	defer s.backupSched.endRestore(app.ID)
	_, err := s.store.Maintenance(ctx, app.ID)
	wasOn := err == nil
	if err != nil && conductor.ErrorCode(err) != conductor.ENOTFOUND {
		return err
	}
	if !wasOn {
		m := &conductor.Maintenance{AppID: app.ID, Message: "The database is being restored.", RetryAfter: conductor.DefaultMaintenanceRetry,
			By: "db:restore"}
		if err := s.setMaintenance(ctx, app, m); err != nil {
			return fmt.Errorf("put %s in maintenance for the restore: %w", app.Name, err)
		}
		fmt.Fprintf(out, "%s is in maintenance during the restore\n", app.Name)
		defer func() {
			if err := s.setMaintenance(context.WithoutCancel(ctx), app, nil); err != nil {
				slog.Error("take the app out of maintenance after a restore", "app", app.Name, "err", err)
				fmt.Fprintf(out, "Taking %s out of maintenance failed: %v (run maintenance:off %s)\n", app.Name, err, app.Name)
				return
			}
			fmt.Fprintf(out, "%s is out of maintenance\n", app.Name)
		}()
	}
	start := time.Now()
	if err := s.cfg.Agents.DBRestore(ctx, app, b); err != nil {
		return conductor.Errorf(conductor.ErrorCode(err), "restore of backup %d failed: %s", b.ID, conductor.ErrorMessage(err))
	}
	fmt.Fprintf(out, "Restored backup %d of %s's %s database in %s\n", b.ID, app.Name, b.Alias, time.Since(start).Round(time.Millisecond))
	return nil
}

func (s *Server) dbBackupsScheduleCommand() *cobra.Command {
	var alias string
	var keep int
	var off bool
	cmd := &cobra.Command{
		Use:   "db:backups:schedule <app> SCHEDULE --keep N | --off",
		Short: "Back up an app's database on a cron schedule, keeping the last N (admin)",
		Long: "Back up one of an app's databases (--alias, default \"default\") on a cron schedule, in UTC\n" +
			"(\"@daily\", \"@hourly\", \"30 3 * * *\", \"@every 6h\"), keeping the newest N scheduled backups\n" +
			"that succeeded (--keep, default 14): older scheduled ones are deleted. --off removes it.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			if err := conductor.ValidateDatabaseAlias(alias); err != nil {
				return err
			}
			st, err := s.backupStore()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if off {
				if len(args) != 1 {
					return conductor.Errorf(conductor.EINVALID, "usage: db:backups:schedule %s --off [--alias NAME]", app.Name)
				}
				auditFromContext(ctx).Detail = "--off --alias " + alias
				if err := st.DeleteDBBackupSchedule(ctx, app.ID, alias); err != nil {
					return err
				}
				s.wakeScheduler()
				fmt.Fprintf(out, "No more scheduled backups of %s's %s database (the backups taken stay)\n", app.Name, alias)
				return nil
			}
			if len(args) != 2 {
				return conductor.Errorf(conductor.EINVALID, "usage: db:backups:schedule %s SCHEDULE [--keep N] [--alias NAME], e.g. \"@daily\"", app.Name)
			}
			spec, err := parseBackupSchedule(args[1])
			if err != nil {
				return err
			}
			if keep < 1 || keep > 1000 {
				return conductor.Errorf(conductor.EINVALID, "invalid --keep %d: keep 1 to 1000 backups", keep)
			}
			if _, err := s.dbKind(ctx, app, alias); err != nil {
				return err
			}
			auditFromContext(ctx).Detail = fmt.Sprintf("%q --keep %d --alias %s", args[1], keep, alias)
			if err := st.SetDBBackupSchedule(ctx, &conductor.DBBackupSchedule{AppID: app.ID, Alias: alias, Schedule: args[1], Keep: keep, Created: time.Now().UTC()}); err != nil {
				return err
			}
			s.wakeScheduler()
			fmt.Fprintf(out, "%s's %s database is backed up %s (UTC), keeping %d; next at %s\n", app.Name, alias, args[1], keep, spec.Next(time.Now()).UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&alias, "alias", conductor.DefaultAlias, "Django database alias")
	cmd.Flags().IntVar(&keep, "keep", 14, "scheduled backups to keep")
	cmd.Flags().BoolVar(&off, "off", false, "remove the schedule")
	return cmd
}

// parseBackupSchedule parses a standard cron expression or descriptor,
// refusing one that runs more often than minBackupPeriod.
func parseBackupSchedule(expr string) (cron.Schedule, error) {
	if len(expr) > 100 || strings.ContainsAny(expr, "\n\r\x00") {
		return nil, conductor.Errorf(conductor.EINVALID, "invalid schedule: use a cron expression such as \"@daily\" or \"30 3 * * *\"")
	}
	spec, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, conductor.Errorf(conductor.EINVALID, "invalid schedule %q: %v (e.g. \"@daily\", \"30 3 * * *\")", expr, err)
	}
	if conductor.SchedulePeriod(spec, time.Now()) < minBackupPeriod {
		return nil, conductor.Errorf(conductor.EINVALID, "schedule %q runs more often than every %s", expr, minBackupPeriod)
	}
	return spec, nil
}

// minBackupPeriod bounds how often a schedule may run: the admin's
// choice above that (tests use "@every 1s"; retention bounds the files).
const minBackupPeriod = time.Second

// formatSize prints a byte count for people.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func firstErrLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
