package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

func TestDBBackups(t *testing.T) {
	ctx := context.Background()
	db, path := openTest(t)
	app := &conductor.App{Name: "shop", DBKind: conductor.DBPostgres, Ports: [2]int{9001, 9002}, SecretKey: "k", Host: "w1"}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	var ids []int64
	for i, status := range []string{conductor.BackupSucceeded, conductor.BackupFailed} {
		b := &conductor.DBBackup{AppID: app.ID, Alias: "default", Kind: conductor.DBPostgres, Host: app.Host,
			Started: started.Add(time.Duration(i) * time.Hour), Status: conductor.BackupRunning, Scheduled: i == 1}
		if err := db.AddDBBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
		b.Status, b.File, b.Size, b.SHA256, b.Duration = status, "f.pgdump", 42, "abc", 1500*time.Millisecond
		if status == conductor.BackupFailed {
			b.File, b.Error = "", "pg_dump: boom"
		}
		if err := db.FinishDBBackup(ctx, b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.ID)
	}
	list, err := db.DBBackups(ctx, app.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("DBBackups = %v, %v", list, err)
	}
	if got := list[0]; got.ID != ids[1] || got.Status != conductor.BackupFailed || got.Error != "pg_dump: boom" || !got.Scheduled || !got.Started.Equal(started.Add(time.Hour)) {
		t.Errorf("newest backup: %+v", got)
	}
	got, err := db.FindDBBackup(ctx, app.ID, ids[0])
	if err != nil || got.File != "f.pgdump" || got.Size != 42 || got.SHA256 != "abc" || got.Duration != 1500*time.Millisecond || got.Host != "w1" || got.Scheduled {
		t.Errorf("FindDBBackup = %+v, %v", got, err)
	}
	_, err = db.FindDBBackup(ctx, app.ID+1, ids[0])
	wantCode(t, "another app's backup", err, conductor.ENOTFOUND)

	s := &conductor.DBBackupSchedule{AppID: app.ID, Alias: "default", Schedule: "@daily", Keep: 14, Created: started}
	if err := db.SetDBBackupSchedule(ctx, s); err != nil {
		t.Fatal(err)
	}
	s.Schedule, s.Keep = "@hourly", 3
	if err := db.SetDBBackupSchedule(ctx, s); err != nil {
		t.Fatal(err)
	}
	scheds, err := db.DBBackupSchedules(ctx, 0)
	if err != nil || len(scheds) != 1 || scheds[0].Schedule != "@hourly" || scheds[0].Keep != 3 {
		t.Fatalf("DBBackupSchedules = %+v, %v", scheds, err)
	}
	all, err := ReadDBBackups(ctx, path)
	if err != nil || len(all) != 1 || all[0].App != "shop" || len(all[0].Backups) != 2 || len(all[0].Schedules) != 1 {
		t.Errorf("ReadDBBackups = %+v, %v", all, err)
	}
	if err := db.DeleteDBBackup(ctx, app.ID, ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteDBBackupSchedule(ctx, app.ID, "default"); err != nil {
		t.Fatal(err)
	}
	list, _ = db.DBBackups(ctx, app.ID)
	scheds, _ = db.DBBackupSchedules(ctx, app.ID)
	if len(list) != 1 || len(scheds) != 0 {
		t.Errorf("after deletes: %d backups, %d schedules", len(list), len(scheds))
	}
	// apps:destroy forgets them (ON DELETE CASCADE).
	if _, err := db.db.ExecContext(ctx, `DELETE FROM apps WHERE id = ?`, app.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := db.DBBackups(ctx, app.ID); len(list) != 0 {
		t.Errorf("a destroyed app's backups are still recorded: %+v", list)
	}
}
