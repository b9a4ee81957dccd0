package procnet

import (
	"net"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestDiagAgreesWithProc: sock_diag and /proc/net/tcp name the same
// listening and established sockets, IPv4 and IPv6, with the same inodes,
// and sockets' answer comes from sock_diag (not its /proc fallback).
func TestDiagAgreesWithProc(t *testing.T) {
	var ports []int
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr == "[::1]:0" {
				continue // no IPv6 here
			}
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if _, err := diagSockets(unix.AF_INET, stateListen); err != nil {
		t.Fatalf("sock_diag is not usable here: %v", err)
	}
	for _, port := range ports {
		for _, state := range []uint8{stateListen, stateEstablished} {
			diag, err := sockets(port, state)
			if err != nil {
				t.Fatal(err)
			}
			proc, err := procSockets(port, state)
			if err != nil {
				t.Fatal(err)
			}
			less := func(a, b Socket) int { return int(a.Inode) - int(b.Inode) }
			slices.SortFunc(diag, less)
			slices.SortFunc(proc, less)
			if len(diag) != 1 || !slices.Equal(diag, proc) {
				t.Errorf("port %d, state %d: sock_diag %v, /proc %v (want the same one socket)", port, state, diag, proc)
			}
		}
	}
}

// BenchmarkSockets: one look for a port's listeners, by sock_diag and by
// /proc/net/tcp, with whatever this host holds (run it beside many
// TIME_WAIT connections to see the difference).
func BenchmarkSockets(b *testing.B) {
	b.Run("sock_diag", func(b *testing.B) {
		for b.Loop() {
			if _, err := sockets(1, stateListen); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proc", func(b *testing.B) {
		for b.Loop() {
			if _, err := procSockets(1, stateListen); err != nil {
				b.Fatal(err)
			}
		}
	})
}
