package notify

import (
	"testing"
	"time"
)

func TestCrashCounter(t *testing.T) {
	c := &CrashCounter{Restarts: 5, Window: 10 * time.Minute}
	t0 := time.Unix(1700000000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	if c.Observe("blog-web", []int{10, 11}, at(0)) {
		t.Fatal("the baseline was an incident")
	}
	// ps:scale 2 -> 4: new pids, no restart.
	c.Observe("blog-web", []int{10, 11, 12, 13}, at(5))
	if n := c.Recent("blog-web"); n != 0 {
		t.Fatalf("scaling up counted %d restarts", n)
	}
	// One process dies and is replaced, five times: not yet more than 5.
	// Every other look falls between the death and circus's respawn.
	pids := []int{10, 11, 12, 13}
	for i := range 5 {
		c.Observe("blog-web", pids[1:], at(8+i*5))
		pids[0] = 100 + i
		if c.Observe("blog-web", pids, at(10+i*5)) {
			t.Fatalf("incident after %d restarts", i+1)
		}
	}
	pids[0] = 200
	if !c.Observe("blog-web", pids, at(40)) {
		t.Fatal("no incident after 6 restarts in a minute")
	}
	pids[0] = 201
	if c.Observe("blog-web", pids, at(45)) {
		t.Fatal("a second report of the same incident")
	}
	// Quiet for a whole window ends the incident; a new burst is a new one.
	c.Observe("blog-web", pids, at(45+601))
	for i := range 6 {
		pids[1] = 300 + i
		if c.Observe("blog-web", pids, at(700+i)) != (i == 5) {
			t.Fatalf("second incident: restart %d", i+1)
		}
	}
	// A watcher not observed in a round is forgotten.
	c.Forget()
	c.Observe("shop-web", []int{1}, at(800))
	c.Forget()
	if _, ok := c.watchers["blog-web"]; ok {
		t.Error("a gone watcher is still counted")
	}
}

// TestCrashCounterRestarted: Restarted is told each look's restarts (a
// replaced pid), not a scale-up's new processes nor the first look.
func TestCrashCounterRestarted(t *testing.T) {
	got := map[string]int{}
	c := &CrashCounter{Restarts: 5, Window: time.Minute, Restarted: func(w string, n int) { got[w] += n }}
	now := time.Now()
	c.Observe("shop_web_1", []int{10, 11}, now)     // baseline
	c.Observe("shop_web_1", []int{10, 12}, now)     // 11 replaced
	c.Observe("shop_web_1", []int{13, 14}, now)     // both replaced
	c.Observe("shop_web_1", []int{13, 14, 15}, now) // ps:scale up: no restart
	c.Observe("shop_worker_1", []int{20}, now)
	if got["shop_web_1"] != 3 || got["shop_worker_1"] != 0 {
		t.Errorf("Restarted counted %v, want 3 for web and none for worker", got)
	}
}
