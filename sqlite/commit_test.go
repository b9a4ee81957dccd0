package sqlite

import (
	"context"
	"testing"

	"github.com/hasadna/conductor"
)

// TestAddReleaseIsTheCommitPoint: recording a release also marks its deploy
// succeeded (no longer unfinished for a restarted builder) and, for a
// rollback, sets the app's config vars, in the one transaction; a failed
// record changes neither.
func TestAddReleaseIsTheCommitPoint(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "hello", 9000, 9001)
	if err := db.SetConfig(ctx, app.ID, map[string]string{"FLAVOR": "new", "EXTRA": "1"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"d1", "d2"} {
		if err := db.CreateDeploy(ctx, &conductor.Deploy{ID: id, AppID: app.ID, Rev: "r", Ref: "refs/heads/main", Pusher: "alice", Status: conductor.DeployRunning}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddRelease(ctx, &conductor.Release{ID: "d1", AppID: app.ID, Rev: "r", Port: 9000, Dir: "/srv/d1",
		Config: map[string]string{"FLAVOR": "old"}, RestoreConfig: true}); err != nil {
		t.Fatal(err)
	}
	status := func(id string) string {
		ds, err := db.ListDeploys(ctx, app.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.ID == id {
				return d.Status
			}
		}
		return ""
	}
	if s := status("d1"); s != conductor.DeploySucceeded {
		t.Errorf("deploy d1 is %s after its release was recorded", s)
	}
	if cfg, _ := db.Config(ctx, app.ID); len(cfg) != 1 || cfg["FLAVOR"] != "old" {
		t.Errorf("config after recording a rollback = %v, want the release's", cfg)
	}
	// The restarted builder fails only the deploy that did not commit.
	ids, err := db.FailUnfinishedDeploys(ctx, app.Host, "interrupted")
	if err != nil || len(ids) != 1 || ids[0] != "d2" {
		t.Errorf("FailUnfinishedDeploys = %v, %v; want [d2]", ids, err)
	}
	// A failing record (duplicate id) leaves the deploy and config alone.
	if err := db.CreateDeploy(ctx, &conductor.Deploy{ID: "d3", AppID: app.ID, Rev: "r", Ref: "refs/heads/main", Pusher: "alice", Status: conductor.DeployRunning}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddRelease(ctx, &conductor.Release{ID: "d1", AppID: app.ID, Rev: "r", Port: 9001, Dir: "/x",
		Config: map[string]string{"FLAVOR": "dup"}, RestoreConfig: true}); err == nil {
		t.Fatal("AddRelease with a duplicate id succeeded")
	}
	if cfg, _ := db.Config(ctx, app.ID); cfg["FLAVOR"] != "old" {
		t.Errorf("a failed record changed the config: %v", cfg)
	}
	if s := status("d3"); s != conductor.DeployRunning {
		t.Errorf("a failed record changed another deploy: %s", s)
	}
}
