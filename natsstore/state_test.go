package natsstore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hasadna/conductor/natsstore"
	"github.com/hasadna/conductor/queue"
	"github.com/hasadna/conductor/sqlite"
)

// startState serves a new SQLite state over a real embedded NATS server
// (TLS and a token, as the conductor runs it) and returns the database, a
// worker's client of it, and stop, which ends the serving (as a conductor
// going down would). The rest ends with the test.
func startState(t *testing.T) (db *sqlite.DB, c *natsstore.Client, stop func()) {
	t.Helper()
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
	t.Cleanup(ns.Shutdown)
	if db, err = sqlite.Open(ctx, filepath.Join(dir, "conductor.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	connect := func() *nats.Conn {
		nc, err := nats.Connect(ns.ClientURL(), nats.Token(token), nats.RootCAs(caFile))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	serveCtx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	if err := natsstore.Serve(serveCtx, connect(), db); err != nil {
		t.Fatal(err)
	}
	return db, &natsstore.Client{NC: connect(), Timeout: 5 * time.Second}, stop
}
