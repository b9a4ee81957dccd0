package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListenDashboardKeepsPort: with port 0 the dashboard takes the port
// of its last start when free (nginx's site stays the same, no reload),
// and another when that one is taken.
func TestListenDashboardKeepsPort(t *testing.T) {
	last := filepath.Join(t.TempDir(), "dashboard.addr")
	l1, err := listenDashboard("127.0.0.1:0", last)
	if err != nil {
		t.Fatal(err)
	}
	first := l1.Addr().String()
	l1.Close()
	l2, err := listenDashboard("127.0.0.1:0", last)
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.Addr().String(); got != first {
		t.Errorf("second start listens on %s, want the first's %s", got, first)
	}
	// Taken (l2 still holds it): another port, remembered for next time.
	l3, err := listenDashboard("127.0.0.1:0", last)
	if err != nil {
		t.Fatal(err)
	}
	defer l3.Close()
	if l3.Addr().String() == first {
		t.Errorf("listened on the taken port %s", first)
	}
	l2.Close()
	l4, err := listenDashboard("127.0.0.1:0", last)
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	if l4.Addr().String() == first {
		t.Errorf("went back to %s: the file should name the last port, %s", first, l3.Addr())
	}
	// An explicit port is used as given, and the file is left alone.
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	l5, err := listenDashboard(addr, last)
	if err != nil {
		t.Fatal(err)
	}
	defer l5.Close()
	if l5.Addr().String() != addr {
		t.Errorf("explicit %s: listens on %s", addr, l5.Addr())
	}
	if raw, _ := os.ReadFile(last); strings.TrimSpace(string(raw)) != l4.Addr().String() {
		t.Errorf("the file says %q after an explicit address, want %s", raw, l4.Addr())
	}
}
