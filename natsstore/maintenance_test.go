package natsstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

// A worker's builder reads, sets and clears maintenance mode over NATS
// (db:restore on a worker's host) as on SQLite.
func TestMaintenanceOverNATS(t *testing.T) {
	ctx := context.Background()
	db, c, _ := startState(t)
	c.Timeout = time.Second
	app := &conductor.App{Name: "shop", DBKind: conductor.DBSQLite, Host: "h1", Ports: [2]int{20000, 20001}, SecretKey: "s"}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Maintenance(ctx, app.ID); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Fatalf("Maintenance while off = %v, want ENOTFOUND", err)
	}
	if err := c.SetMaintenance(ctx, &conductor.Maintenance{AppID: app.ID, Message: "back soon", RetryAfter: 30, By: "alice"}); err != nil {
		t.Fatal(err)
	}
	m, err := db.Maintenance(ctx, app.ID)
	if err != nil || m.Message != "back soon" || m.RetryAfter != 30 || m.By != "alice" || m.Since.IsZero() {
		t.Fatalf("after SetMaintenance over NATS: %+v, %v", m, err)
	}
	if m, err := c.Maintenance(ctx, app.ID); err != nil || m.Message != "back soon" {
		t.Fatalf("Maintenance over NATS = %+v, %v", m, err)
	}
	if err := c.ClearMaintenance(ctx, app.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Maintenance(ctx, app.ID); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Fatalf("after ClearMaintenance: %v, want ENOTFOUND", err)
	}
	if err := c.ClearMaintenance(ctx, app.ID); err != nil {
		t.Errorf("ClearMaintenance while off: %v", err)
	}
}
