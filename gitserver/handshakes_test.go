package gitserver

import (
	"testing"
	"time"
)

// TestHandshakeGate checks the gate's three rules: no more than n turns at
// once (a freed turn goes to a waiter), a waiter goes ahead without a turn
// after maxWait, and a turn ends by itself after maxHold.
func TestHandshakeGate(t *testing.T) {
	if newHandshakeGate(0) != nil || newHandshakeGate(-1) != nil {
		t.Fatal("n <= 0 must mean no gate")
	}
	var none *handshakeGate
	none.wait()() // no gate: never blocks

	g := newHandshakeGate(2)
	g.maxWait, g.maxHold = time.Hour, time.Hour
	end1, end2 := g.wait(), g.wait()
	third := make(chan func())
	go func() { third <- g.wait() }()
	select {
	case <-third:
		t.Fatal("a third handshake got a turn while 2 were taken")
	case <-time.After(100 * time.Millisecond):
	}
	end1()
	end1() // a second end must not free a second turn
	var end3 func()
	select {
	case end3 = <-third:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not get the freed turn")
	}
	if n := len(g.turns); n != 2 {
		t.Fatalf("%d turns taken, want 2 (one ended twice counts once)", n)
	}
	end2()
	end3()
	if n := len(g.turns); n != 0 {
		t.Fatalf("%d turns taken after all ended, want 0", n)
	}

	// maxWait: with the only turn held, a waiter goes ahead after maxWait,
	// without taking a turn.
	g = newHandshakeGate(1)
	g.maxWait, g.maxHold = 50*time.Millisecond, time.Hour
	held := g.wait()
	done := make(chan func())
	go func() { done <- g.wait() }()
	select {
	case end := <-done:
		end() // ends nothing: it had no turn
		if n := len(g.turns); n != 1 {
			t.Fatalf("%d turns taken, want 1 (the waiter went ahead without one)", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiter was held past maxWait")
	}
	held()

	// maxHold: a turn that is never ended frees itself.
	g = newHandshakeGate(1)
	g.maxWait, g.maxHold = time.Hour, 50*time.Millisecond
	_ = g.wait() // a silent client: never ends its turn
	go func() { done <- g.wait() }()
	select {
	case end := <-done:
		end()
	case <-time.After(10 * time.Second):
		t.Fatal("a turn was not freed after maxHold")
	}
}
