package loopport

import (
	"net"
	"strconv"
	"testing"
)

// TestRange: ports come from the range, in turn, and a port in use is
// skipped.
func TestRange(t *testing.T) {
	r := &Range{From: 4100, To: 4102}
	first, err := r.Port()
	if err != nil {
		t.Fatal(err)
	}
	if first < 4100 || first > 4102 {
		t.Fatalf("port %d outside 4100-4102", first)
	}
	held, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(4100+(first-4100+1)%3))
	if err != nil {
		t.Fatalf("hold the port after %d: %v", first, err)
	}
	defer held.Close()
	second, err := r.Port()
	if err != nil {
		t.Fatal(err)
	}
	if want := 4100 + (first-4100+2)%3; second != want {
		t.Errorf("after %d with the next one held: %d, want %d", first, second, want)
	}
}
