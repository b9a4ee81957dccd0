package natsstore_test

import (
	"context"
	"testing"

	"github.com/hasadna/conductor"
)

// TestMoveAppPortOverNATS: a worker moves an app's taken port through the
// conductor's state, which skips ports other apps hold.
func TestMoveAppPortOverNATS(t *testing.T) {
	ctx := context.Background()
	db, c, _ := startState(t)

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
