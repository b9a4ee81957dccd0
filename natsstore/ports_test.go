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

// TestMoveAppPortOverNATS: a worker moves an app's taken port through the
// conductor's state, which skips ports other apps hold.
func TestMoveAppPortOverNATS(t *testing.T) {
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
	serverConn, err := nats.Connect(ns.ClientURL(), nats.Token(token), nats.RootCAs(caFile))
	if err != nil {
		t.Fatal(err)
	}
	defer serverConn.Close()
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	if err := natsstore.Serve(serveCtx, serverConn, db); err != nil {
		t.Fatal(err)
	}
	workerConn, err := nats.Connect(ns.ClientURL(), nats.Token(token), nats.RootCAs(caFile))
	if err != nil {
		t.Fatal(err)
	}
	defer workerConn.Close()
	c := &natsstore.Client{NC: workerConn, Timeout: 5 * time.Second}

	shop := &conductor.App{Name: "shop", DBKind: conductor.DBSQLite, Host: "h1", Ports: [2]int{20000, 20001}, SecretKey: "a"}
	blog := &conductor.App{Name: "blog", DBKind: conductor.DBSQLite, Host: "h1", Ports: [2]int{20002, 20003}, SecretKey: "b"}
	for _, a := range []*conductor.App{shop, blog} {
		if err := db.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	p, err := c.MoveAppPort(ctx, shop.ID, 20001, []int{20002, 20004})
	if err != nil || p != 20004 {
		t.Fatalf("MoveAppPort over NATS = %d, %v; want 20004", p, err)
	}
	if got, err := c.FindApp(ctx, "shop"); err != nil || got.Ports != [2]int{20000, 20004} {
		t.Errorf("shop's ports after the move: %v, %v", got, err)
	}
	if _, err := c.MoveAppPort(ctx, shop.ID, 20000, []int{20002, 20003}); conductor.ErrorCode(err) != conductor.ECONFLICT {
		t.Errorf("MoveAppPort to taken ports: %v, want ECONFLICT", err)
	}
}
