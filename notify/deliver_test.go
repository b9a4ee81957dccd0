package notify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hasadna/conductor/notify"
	"github.com/hasadna/conductor/sqlite"
)

// TestPrivateAddressesRefused: by default a delivery never reaches a
// loopback receiver (a developer's webhook must not probe the internal
// network), and the refusal is what the delivery records.
func TestPrivateAddressesRefused(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var hits atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer recv.Close()
	sub := &notify.Subscription{URL: recv.URL + "/x", Events: notify.Events, Format: notify.FormatJSON, Secret: "s", CreatedBy: "admin"}
	if err := db.AddSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	for _, allow := range []bool{false, true} {
		n := notify.New(ctx, db, notify.Options{AllowPrivate: allow})
		res, err := n.SendTest(ctx, sub, "admin")
		if err != nil {
			t.Fatal(err)
		}
		if refused := strings.Contains(res.Error, "not public"); refused == allow {
			t.Errorf("allow private %v: result %+v", allow, res)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("the receiver got %d requests, want 1 (the allowed one)", hits.Load())
	}
	ds, err := db.ListDeliveries(ctx, sub.ID, 10)
	if err != nil || len(ds) != 2 || ds[1].Status != notify.StatusFailed || ds[0].Status != notify.StatusDelivered {
		t.Fatalf("deliveries %+v, %v", ds, err)
	}
}

// TestDeliveriesPruned: a subscription keeps its newest 100 deliveries.
func TestDeliveriesPruned(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sub := &notify.Subscription{URL: "https://example.com/x", Events: notify.Events, Format: notify.FormatJSON, Secret: "s", CreatedBy: "admin"}
	if err := db.AddSubscription(ctx, sub); err != nil {
		t.Fatal(err)
	}
	var last int64
	for range 130 {
		d := &notify.Delivery{SubscriptionID: sub.ID, Event: notify.DeployFailed, Status: notify.StatusFailed, Body: []byte("{}")}
		if err := db.AddDelivery(ctx, d); err != nil {
			t.Fatal(err)
		}
		last = d.ID
	}
	ds, err := db.ListDeliveries(ctx, sub.ID, 1000)
	if err != nil || len(ds) > 101 || len(ds) < 100 || ds[0].ID != last {
		t.Fatalf("after 130 deliveries %d are kept (newest %d, want %d): %v", len(ds), ds[0].ID, last, err)
	}
}
