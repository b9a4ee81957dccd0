package gitserver

import (
	"strings"
	"testing"
)

// TestSessionLimiter checks both caps and that a released slot is reusable
// (and released only once).
func TestSessionLimiter(t *testing.T) {
	l := newSessionLimiter(3, 2)
	a1, err := l.acquire("a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.acquire("a"); err == nil || !strings.Contains(err.Error(), "too many sessions for this key (limit 2)") {
		t.Fatalf("third session of a key: err = %v", err)
	}
	if _, err := l.acquire("b"); err != nil {
		t.Fatalf("another key under the total limit: %v", err)
	}
	if _, err := l.acquire("c"); err == nil || !strings.Contains(err.Error(), "too many sessions on this server (limit 3)") {
		t.Fatalf("session over the total: err = %v", err)
	}
	a1()
	a1() // a second release must not free a second slot
	if _, err := l.acquire("c"); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, err := l.acquire("d"); err == nil {
		t.Fatal("a double release freed two slots")
	}

	unlimited := newSessionLimiter(0, 0)
	for range 1000 {
		if _, err := unlimited.acquire("a"); err != nil {
			t.Fatalf("no limits: %v", err)
		}
	}
}
