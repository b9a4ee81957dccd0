package doctor

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/sqlite"
)

// TestDBBackups reads a real state: a failed last backup and a schedule
// behind are warnings; a later success clears the first.
func TestDBBackups(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(data, "conductor.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want(t, DBBackups(ctx, data), OK, "0 apps with backups")
	app := &conductor.App{Name: "shop", DBKind: conductor.DBSQLite, Ports: [2]int{9001, 9002}, SecretKey: "k", Host: "local"}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	add := func(status, msg string) {
		b := &conductor.DBBackup{AppID: app.ID, Alias: "default", Kind: conductor.DBSQLite, Host: "local", Started: time.Now(), Status: conductor.BackupRunning}
		if err := db.AddDBBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
		b.Status, b.Error = status, msg
		if err := db.FinishDBBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	add(conductor.BackupFailed, "sqlite3: disk I/O error")
	want(t, DBBackups(ctx, data), Warn, "shop: the last backup of default", "disk I/O error", "db:backups")
	add(conductor.BackupSucceeded, "")
	want(t, DBBackups(ctx, data), OK, "1 app with backups")
	if err := db.SetDBBackupSchedule(ctx, &conductor.DBBackupSchedule{AppID: app.ID, Alias: "default", Schedule: "@hourly", Keep: 3, Created: time.Now().Add(-5 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	want(t, DBBackups(ctx, data), OK) // the success above is recent
	if err := db.SetDBBackupSchedule(ctx, &conductor.DBBackupSchedule{AppID: app.ID, Alias: "metrics", Schedule: "@hourly", Keep: 3, Created: time.Now().Add(-5 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	want(t, DBBackups(ctx, data), Warn, "schedule of metrics (@hourly) is behind: no backup has succeeded")
}
