package gitserver

import (
	"sync"
	"time"
)

// handshakeGate lets at most n connections work on their handshake (key
// exchange and authentication, most of a short command's CPU) at once, in
// the order they arrived. Without it, a burst of connections all share the
// CPU and finish late together, in whatever order Go's scheduler favours;
// with it, earlier connections finish first, and the slowest commands under
// load are about 20% faster (docs/benchmarks.md). The order comes from the
// channel: a full buffered channel hands a freed place to the sender that
// has waited longest.
//
// Two bounds keep the gate from becoming a way to stall others: a
// connection waits at most maxWait for a turn (then it goes ahead without
// one), and holds its turn at most maxHold (a slow or silent client's turn
// ends by itself; it may still finish its handshake, until the handshake
// timeout).
type handshakeGate struct {
	turns            chan struct{}
	maxWait, maxHold time.Duration
}

// newHandshakeGate returns a gate for n handshakes at once, or nil (no
// gate) when n <= 0.
func newHandshakeGate(n int) *handshakeGate {
	if n <= 0 {
		return nil
	}
	return &handshakeGate{turns: make(chan struct{}, n), maxWait: time.Second, maxHold: 50 * time.Millisecond}
}

// wait blocks until it is this connection's turn or maxWait has passed.
// The returned func ends the turn; calling it again does nothing.
func (g *handshakeGate) wait() (end func()) {
	if g == nil {
		return func() {}
	}
	select {
	case g.turns <- struct{}{}: // a free turn, and nobody waiting for it
	default:
		t := time.NewTimer(g.maxWait)
		defer t.Stop()
		select {
		case g.turns <- struct{}{}:
		case <-t.C:
			return func() {}
		}
	}
	release := sync.OnceFunc(func() { <-g.turns })
	hold := time.AfterFunc(g.maxHold, release)
	return func() {
		hold.Stop()
		release()
	}
}
