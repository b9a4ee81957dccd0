package gitserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/hasadna/conductor"
)

// Scheduled database backups run from the main host's conductor serve,
// which has the state: at each schedule's time it asks the app's host's
// agent for the backup (as db:backup does), so a worker host's app is
// backed up by its own host. A backup still running when the next is due
// is not started twice; a run missed while Conductor was down is taken
// once at start-up.

// backupScheduler's zero value is ready.
type backupScheduler struct {
	mu      sync.Mutex
	wake    chan struct{}
	running map[string]bool // app id/alias of backups in flight
	// restoring holds the apps with a db:restore in flight: a second one
	// would take the app out of maintenance under the first.
	restoring map[int64]bool
}

// startRestore marks a restore of the app as running, or tells that one is.
func (b *backupScheduler) startRestore(appID int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.restoring[appID] {
		return false
	}
	if b.restoring == nil {
		b.restoring = map[int64]bool{}
	}
	b.restoring[appID] = true
	return true
}

func (b *backupScheduler) endRestore(appID int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.restoring, appID)
}

func (b *backupScheduler) wakeChan() chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wake == nil {
		b.wake = make(chan struct{}, 1)
	}
	return b.wake
}

// wakeScheduler has the scheduler look at the schedules again (one was
// set or removed).
func (s *Server) wakeScheduler() {
	select {
	case s.backupSched.wakeChan() <- struct{}{}:
	default:
	}
}

// RunBackupSchedules takes the scheduled database backups until ctx ends.
func (s *Server) RunBackupSchedules(ctx context.Context) {
	st, err := s.backupStore()
	if err != nil {
		slog.Warn("no scheduled database backups", "err", err)
		return
	}
	wake := s.backupSched.wakeChan()
	for {
		next := s.runDueBackups(ctx, st, time.Now())
		// At most a minute between looks: a clock change, or a backup
		// that ended, is seen soon.
		wait := min(time.Until(next), time.Minute)
		t := time.NewTimer(max(wait, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// runDueBackups starts the backups that are due and returns when the next
// one is.
func (s *Server) runDueBackups(ctx context.Context, st conductor.DBBackupStore, now time.Time) time.Time {
	next := now.Add(time.Minute)
	scheds, err := st.DBBackupSchedules(ctx, 0)
	if err != nil {
		slog.Error("list backup schedules", "err", err)
		return next
	}
	last := map[int64][]*conductor.DBBackup{}
	for _, sc := range scheds {
		spec, err := cron.ParseStandard(sc.Schedule)
		if err != nil {
			slog.Error("backup schedule does not parse", "app_id", sc.AppID, "alias", sc.Alias, "err", err)
			continue
		}
		backups, ok := last[sc.AppID]
		if !ok {
			if backups, err = st.DBBackups(ctx, sc.AppID); err != nil {
				slog.Error("list backups", "app_id", sc.AppID, "err", err)
				continue
			}
			last[sc.AppID] = backups
		}
		// Due: the schedule's first time after its last scheduled run (or
		// after it was set) has come.
		from := sc.Created
		for _, b := range backups {
			if b.Alias == sc.Alias && b.Scheduled {
				from = b.Started
				break
			}
		}
		due := spec.Next(from)
		if due.After(now) {
			if due.Before(next) {
				next = due
			}
			continue
		}
		s.startScheduledBackup(ctx, st, sc)
		if n := spec.Next(now); n.Before(next) {
			next = n
		}
	}
	return next
}

func (s *Server) startScheduledBackup(ctx context.Context, st conductor.DBBackupStore, sc *conductor.DBBackupSchedule) {
	key := scheduleKey(sc)
	b := &s.backupSched
	b.mu.Lock()
	if b.running == nil {
		b.running = map[string]bool{}
	}
	if b.running[key] {
		b.mu.Unlock()
		return // the previous one is still going: no pile-up
	}
	b.running[key] = true
	b.mu.Unlock()
	go func() {
		defer func() {
			b.mu.Lock()
			delete(b.running, key)
			b.mu.Unlock()
			s.wakeScheduler()
		}()
		app, err := s.appByID(ctx, sc.AppID)
		if err != nil {
			slog.Error("scheduled backup: find the app", "app_id", sc.AppID, "err", err)
			return
		}
		if _, err := s.backupDB(ctx, app, sc.Alias, true); err != nil {
			slog.Error("scheduled backup", "app", app.Name, "alias", sc.Alias, "err", err)
			return
		}
		s.pruneBackups(ctx, st, app, sc)
	}()
}

func scheduleKey(sc *conductor.DBBackupSchedule) string {
	return fmt.Sprintf("%d/%s", sc.AppID, sc.Alias)
}

// appByID finds an app by its id (the schedules have ids: a destroyed
// app's go with it).
func (s *Server) appByID(ctx context.Context, id int64) (*conductor.App, error) {
	apps, err := s.store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		if a.ID == id {
			return a, nil
		}
	}
	return nil, conductor.Errorf(conductor.ENOTFOUND, "no app %d", id)
}

// pruneBackups keeps the newest sc.Keep scheduled backups of the alias
// that succeeded, and as many failed ones; db:backup's are never pruned.
func (s *Server) pruneBackups(ctx context.Context, st conductor.DBBackupStore, app *conductor.App, sc *conductor.DBBackupSchedule) {
	backups, err := st.DBBackups(ctx, app.ID)
	if err != nil {
		slog.Error("prune backups: list", "app", app.Name, "err", err)
		return
	}
	kept := map[string]int{}
	for _, b := range backups { // newest first
		if !b.Scheduled || b.Alias != sc.Alias || b.Status == conductor.BackupRunning {
			continue
		}
		kept[b.Status]++
		if kept[b.Status] <= sc.Keep {
			continue
		}
		if b.File != "" {
			if b.Host != app.Host {
				continue // a file on a host the app left: kept, and listed
			}
			// The off-host copy goes too: --keep bounds both.
			var remotes []string
			if b.Remote != "" {
				remotes = []string{b.Remote}
			}
			if err := s.cfg.Agents.DBBackupRemove(ctx, app, []string{b.File}, remotes); err != nil {
				slog.Error("prune backups: remove the file", "app", app.Name, "backup", b.ID, "err", err)
				continue
			}
		}
		if err := st.DeleteDBBackup(ctx, app.ID, b.ID); err != nil {
			slog.Error("prune backups: forget", "app", app.Name, "backup", b.ID, "err", err)
		}
	}
}
