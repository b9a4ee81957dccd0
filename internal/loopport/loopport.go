// Package loopport hands out free loopback ports from a fixed range, for
// tests that start servers. A range below the kernel's ephemeral one
// (32768 and up on Linux) matters when tests run in parallel: a port
// picked by listening on port 0 comes from the ephemeral range, and a
// client connection of another test can take it as its local port
// between the pick and the server's bind.
package loopport

import (
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"sync"
)

// Range is a range of ports, From to To inclusive, handed out in turn
// from a random start (another process using the same range starts
// elsewhere), each checked free when handed out.
type Range struct {
	From, To int

	mu   sync.Mutex
	next int
}

// Addr returns "127.0.0.1:<port>" for the range's next free port.
func (r *Range) Addr() (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.To - r.From + 1
	if r.next == 0 {
		r.next = r.From + mrand.IntN(n)
	}
	for range n {
		r.next++
		if r.next > r.To {
			r.next = r.From
		}
		addr := fmt.Sprintf("127.0.0.1:%d", r.next)
		if l, err := net.Listen("tcp", addr); err == nil {
			l.Close()
			return addr, nil
		}
	}
	return "", fmt.Errorf("no free loopback port from %d to %d", r.From, r.To)
}

// Port is Addr's port.
func (r *Range) Port() (int, error) {
	addr, err := r.Addr()
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}
