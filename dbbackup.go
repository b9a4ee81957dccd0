package conductor

import (
	"context"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// Statuses of a DBBackup.
const (
	BackupRunning   = "running"
	BackupSucceeded = "succeeded"
	BackupFailed    = "failed"
)

// DBBackup is one db:backup of one of an app's databases (an alias): a file
// in the root-only backups directory of the app's host.
type DBBackup struct {
	ID        int64         `json:"id"`
	AppID     int64         `json:"-"`
	Alias     string        `json:"alias"`
	Kind      string        `json:"kind"` // DBSQLite, DBPostgres or DBMySQL
	Host      string        `json:"host"` // where the file is
	File      string        `json:"file"` // its name in that host's backups directory
	Size      int64         `json:"size"`
	SHA256    string        `json:"sha256"`
	Started   time.Time     `json:"started"`
	Duration  time.Duration `json:"duration_ns"`
	Status    string        `json:"status"`
	Error     string        `json:"error,omitempty"`
	Scheduled bool          `json:"scheduled"`
	// The off-host copy (the host's --backup-s3-url): RemoteStatus is ""
	// when the host has no target, else RemoteUploading, RemoteUploaded
	// or RemoteFailed (RemoteError says why); Remote is the object's key.
	Remote       string `json:"remote,omitempty"`
	RemoteStatus string `json:"remote_status,omitempty"`
	RemoteError  string `json:"remote_error,omitempty"`
	// Where the backup is now, as db:backups found it: LocationLocal,
	// LocationRemote (the local file is gone), LocationBoth, LocationGone,
	// or "" when its host could not be asked.
	Location string `json:"location,omitempty"`
}

// Statuses of a backup's off-host copy.
const (
	RemoteUploading = "uploading"
	RemoteUploaded  = "uploaded"
	RemoteFailed    = "failed"
)

// Locations of a backup (DBBackup.Location).
const (
	LocationLocal  = "local"
	LocationRemote = "remote-only"
	LocationBoth   = "local+remote"
	LocationGone   = "gone"
)

// DBBackupSchedule is db:backups:schedule of one alias: a cron expression
// and how many succeeded backups to keep.
type DBBackupSchedule struct {
	AppID    int64     `json:"-"`
	Alias    string    `json:"alias"`
	Schedule string    `json:"schedule"`
	Keep     int       `json:"keep"`
	Created  time.Time `json:"created"`
}

// DBBackupStore records per-app database backups and their schedules. It
// is apart from Store because only the main host's SSH server and its
// scheduler use it (the work itself is the app's host's agent's). The
// sqlite package implements it.
type DBBackupStore interface {
	// AddDBBackup records a backup as started (b.Status BackupRunning)
	// and sets b.ID.
	AddDBBackup(ctx context.Context, b *DBBackup) error
	// FinishDBBackup records how b ended (its Status, Error, File, Size,
	// SHA256, Duration).
	FinishDBBackup(ctx context.Context, b *DBBackup) error
	// DBBackups lists an app's backups, newest first.
	DBBackups(ctx context.Context, appID int64) ([]*DBBackup, error)
	// FindDBBackup returns one of an app's backups (ENOTFOUND otherwise).
	FindDBBackup(ctx context.Context, appID, id int64) (*DBBackup, error)
	// SetDBBackupRemote records the state of b's off-host copy (its
	// Remote, RemoteStatus and RemoteError).
	SetDBBackupRemote(ctx context.Context, b *DBBackup) error
	// DeleteDBBackup forgets a backup whose file is gone.
	DeleteDBBackup(ctx context.Context, appID, id int64) error
	// SetDBBackupSchedule adds or replaces an alias's schedule.
	SetDBBackupSchedule(ctx context.Context, s *DBBackupSchedule) error
	// DeleteDBBackupSchedule removes it (no error when there is none).
	DeleteDBBackupSchedule(ctx context.Context, appID int64, alias string) error
	// DBBackupSchedules lists the schedules of an app (appID > 0) or of
	// every app (0).
	DBBackupSchedules(ctx context.Context, appID int64) ([]*DBBackupSchedule, error)
}

// DBBackupScheduleStatus is a schedule with its last success and next run.
type DBBackupScheduleStatus struct {
	*DBBackupSchedule
	LastSuccess *time.Time `json:"last_success,omitempty"`
	Next        time.Time  `json:"next"`
	Stale       bool       `json:"stale"`
}

// DBBackupProblems lists what needs attention: the last backup of an alias
// failed, or a schedule's last success is older than twice its period.
func DBBackupProblems(now time.Time, backups []*DBBackup, scheds []*DBBackupSchedule) ([]DBBackupScheduleStatus, []string) {
	problems := []string{}
	seen := map[string]bool{}
	lastOK := map[string]time.Time{}
	for _, b := range backups { // newest first
		if b.Status == BackupSucceeded {
			if _, ok := lastOK[b.Alias]; !ok {
				lastOK[b.Alias] = b.Started
			}
		}
		if seen[b.Alias] || b.Status == BackupRunning {
			continue
		}
		seen[b.Alias] = true
		if b.Status == BackupFailed {
			problems = append(problems, fmt.Sprintf("the last backup of %s (%d, %s) failed: %s", b.Alias, b.ID, b.Started.Format(time.RFC3339), b.Error))
		}
		if b.Status == BackupSucceeded && b.RemoteStatus == RemoteFailed {
			problems = append(problems, fmt.Sprintf("the off-host copy of the last backup of %s (%d, %s) failed: %s", b.Alias, b.ID, b.Started.Format(time.RFC3339), b.RemoteError))
		}
	}
	out := []DBBackupScheduleStatus{}
	for _, sc := range scheds {
		ss := DBBackupScheduleStatus{DBBackupSchedule: sc}
		spec, err := cron.ParseStandard(sc.Schedule)
		if err != nil {
			problems = append(problems, fmt.Sprintf("the schedule of %s (%q) does not parse: %v", sc.Alias, sc.Schedule, err))
			out = append(out, ss)
			continue
		}
		ss.Next = spec.Next(now)
		since := sc.Created
		if t, ok := lastOK[sc.Alias]; ok {
			ss.LastSuccess = &t
			since = t
		}
		if now.Sub(since) > 2*SchedulePeriod(spec, now) {
			ss.Stale = true
			what := "no backup has succeeded since it was set on " + sc.Created.Format(time.RFC3339)
			if ss.LastSuccess != nil {
				what = "the last successful backup is from " + ss.LastSuccess.Format(time.RFC3339)
			}
			problems = append(problems, fmt.Sprintf("the schedule of %s (%s) is behind: %s", sc.Alias, sc.Schedule, what))
		}
		out = append(out, ss)
	}
	return out, problems
}

// SchedulePeriod is the time between two runs of a schedule after now.
func SchedulePeriod(spec cron.Schedule, now time.Time) time.Duration {
	t1 := spec.Next(now)
	return spec.Next(t1).Sub(t1)
}
