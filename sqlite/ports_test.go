package sqlite

import (
	"context"
	"testing"

	"github.com/hasadna/conductor"
)

// TestMoveAppPort: the app's port moves to the first candidate no app
// holds (in either column of the pair), and nothing moves when all are taken.
func TestMoveAppPort(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	hello := &conductor.App{Name: "hello", DBKind: "sqlite", Ports: [2]int{9000, 9001}, SecretKey: "a"}
	blog := &conductor.App{Name: "blog", DBKind: "sqlite", Ports: [2]int{9002, 9003}, SecretKey: "b"}
	for _, a := range []*conductor.App{hello, blog} {
		if err := db.CreateApp(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	// 9002 is blog's port_a: hello's port_b may not take it either.
	p, err := db.MoveAppPort(ctx, hello.ID, 9001, []int{9000, 9002, 9003, 9004, 9005})
	if err != nil || p != 9004 {
		t.Fatalf("MoveAppPort = %d, %v; want 9004", p, err)
	}
	got, err := db.FindApp(ctx, "hello")
	if err != nil || got.Ports != [2]int{9000, 9004} {
		t.Fatalf("hello's ports after the move: %v, %v", got.Ports, err)
	}
	_, err = db.MoveAppPort(ctx, hello.ID, 9000, []int{9002, 9003, 9004})
	wantCode(t, "MoveAppPort to taken ports", err, conductor.ECONFLICT)
	_, err = db.MoveAppPort(ctx, hello.ID, 9001, []int{9010})
	wantCode(t, "MoveAppPort from a port the app does not have", err, conductor.ENOTFOUND)
	if got, _ := db.FindApp(ctx, "hello"); got.Ports != [2]int{9000, 9004} {
		t.Errorf("a refused move changed the ports: %v", got.Ports)
	}
}
