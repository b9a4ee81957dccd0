package natsstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/natsstore"
	"github.com/hasadna/conductor/queue"
	"github.com/hasadna/conductor/sqlite"
)

// A worker's builder reads, sets and clears maintenance mode over NATS
// (db:restore on a worker's host) as on SQLite.
func TestMaintenanceOverNATS(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	const token = "natsstore-test-token-0123456789"
	tlsConf, caFile, err := queue.ServerTLS(filepath.Join(dir, queue.TLSDir), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := queue.StartServer("127.0.0.1:0", filepath.Join(dir, "nats"), token, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "conductor.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	nc, err := nats.Connect(ns.ClientURL(), nats.Token(token), nats.RootCAs(caFile))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	if err := natsstore.Serve(serveCtx, nc, db); err != nil {
		t.Fatal(err)
	}
	c := &natsstore.Client{NC: nc, Timeout: time.Second}
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
