package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

// TestCronEntriesAndRuns: an app's entries are its current release's
// (recorded by AddRelease), runs are recorded and finished, the last run
// of an entry skips skipped ones, and a host's unfinished runs are failed.
func TestCronEntriesAndRuns(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "timed", 9000, 9001)
	release := func(id string, cron ...conductor.CronEntry) {
		t.Helper()
		if err := db.CreateDeploy(ctx, &conductor.Deploy{ID: id, AppID: app.ID, Rev: "r", Ref: "refs/heads/main", Pusher: "a", Status: conductor.DeployRunning}); err != nil {
			t.Fatal(err)
		}
		if err := db.AddRelease(ctx, &conductor.Release{ID: id, AppID: app.ID, Rev: "r", Port: 9000, Dir: "/d/" + id, Cron: cron}); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := db.CronEntries(ctx, app.ID); err != nil || len(got) != 0 {
		t.Fatalf("no release: %v %v", got, err)
	}
	release("d1", conductor.CronEntry{ID: "b", Command: "echo b", Schedule: "@daily", Timeout: time.Minute},
		conductor.CronEntry{ID: "a", Command: "echo a", Schedule: "*/5 * * * *", Timeout: time.Hour})
	got, err := db.CronEntries(ctx, app.ID)
	if err != nil || len(got) != 2 || got[0].ID != "b" || got[0].Timeout != time.Minute || got[1].Schedule != "*/5 * * * *" {
		t.Fatalf("d1's entries: %+v %v", got, err)
	}
	release("d2", conductor.CronEntry{ID: "c", Command: "echo c", Schedule: "@hourly", Timeout: time.Hour})
	if got, _ := db.CronEntries(ctx, app.ID); len(got) != 1 || got[0].ID != "c" {
		t.Fatalf("d2's entries: %+v", got)
	}

	start := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	r1 := &conductor.CronRun{AppID: app.ID, Entry: "c", Release: "d2", Trigger: conductor.CronTriggerSchedule, Status: conductor.CronRunning, StartedAt: start}
	if err := db.AddCronRun(ctx, r1); err != nil || r1.ID == 0 {
		t.Fatal(r1.ID, err)
	}
	skip := &conductor.CronRun{AppID: app.ID, Entry: "c", Release: "d2", Trigger: conductor.CronTriggerSchedule, Status: conductor.CronSkipped,
		StartedAt: start.Add(time.Hour), FinishedAt: start.Add(time.Hour), Error: "still going"}
	if err := db.AddCronRun(ctx, skip); err != nil {
		t.Fatal(err)
	}
	if last, _ := db.LastCronRuns(ctx, app.ID); last["c"] == nil || last["c"].ID != r1.ID || last["c"].Status != conductor.CronRunning {
		t.Fatalf("last run while running: %+v", last["c"])
	}
	r1.Status, r1.ExitCode, r1.FinishedAt, r1.Duration = conductor.CronFailed, 3, start.Add(90*time.Minute), 90*time.Minute
	if err := db.FinishCronRun(ctx, r1); err != nil {
		t.Fatal(err)
	}
	last, _ := db.LastCronRuns(ctx, app.ID)
	if l := last["c"]; l == nil || l.Status != conductor.CronFailed || l.ExitCode != 3 || l.Duration != 90*time.Minute || !l.StartedAt.Equal(start) {
		t.Fatalf("last run: %+v", l)
	}
	runs, _ := db.ListCronRuns(ctx, app.ID, 10)
	if len(runs) != 2 || runs[0].Status != conductor.CronSkipped || runs[0].Error != "still going" {
		t.Fatalf("runs: %+v", runs)
	}
	r3 := &conductor.CronRun{AppID: app.ID, Entry: "c", Release: "d2", Trigger: conductor.CronTriggerManual, Status: conductor.CronRunning}
	if err := db.AddCronRun(ctx, r3); err != nil {
		t.Fatal(err)
	}
	if n, err := db.FailUnfinishedCronRuns(ctx, "elsewhere", "x"); err != nil || n != 0 {
		t.Fatalf("another host's: %d %v", n, err)
	}
	if n, err := db.FailUnfinishedCronRuns(ctx, app.Host, "restarted"); err != nil || n != 1 {
		t.Fatalf("fail unfinished: %d %v", n, err)
	}
	if runs, _ := db.ListCronRuns(ctx, app.ID, 1); runs[0].Status != conductor.CronFailed || runs[0].Error != "restarted" {
		t.Fatalf("unfinished run: %+v", runs[0])
	}
	if err := db.DeleteApp(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
}
