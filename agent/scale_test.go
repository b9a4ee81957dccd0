package agent

import (
	"context"
	"encoding/json"
	"testing"
)

// scaledProcesses records Scale calls (pure logic: which watcher a scale
// request reaches).
type scaledProcesses struct {
	watchers []string
	scaled   map[string]int
}

func (p *scaledProcesses) Watchers() ([]string, error) { return p.watchers, nil }
func (p *scaledProcesses) Status(context.Context) (map[string]string, error) {
	return nil, nil
}
func (p *scaledProcesses) Pids(context.Context, string) ([]int, error) { return nil, nil }
func (p *scaledProcesses) Scale(_ context.Context, name string, n int) error {
	p.scaled[name] = n
	return nil
}
func (p *scaledProcesses) Remove(context.Context, string) error { return nil }

func TestScaleReachesTheRunningWatcher(t *testing.T) {
	for _, c := range []struct {
		watchers []string
		ask      string
		want     string
	}{
		{[]string{"shop_web_20000", "shop_worker_20000"}, "shop_worker_20000", "shop_worker_20000"},
		// A release deployed before names had ports.
		{[]string{"shop_web_20000", "shop_worker"}, "shop_worker_20000", "shop_worker"},
		{[]string{"shop_web_20000"}, "shop_web_20000", "shop_web_20000"},
	} {
		p := &scaledProcesses{watchers: c.watchers, scaled: map[string]int{}}
		h := &Host{Processes: p}
		req, _ := json.Marshal(scaleRequest{App: "shop", Watcher: c.ask, N: 2})
		if _, err := h.scale(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		if p.scaled[c.want] != 2 || len(p.scaled) != 1 {
			t.Errorf("scale of %s with %v reached %v, want %s", c.ask, c.watchers, p.scaled, c.want)
		}
	}
	h := &Host{Processes: &scaledProcesses{scaled: map[string]int{}}}
	req, _ := json.Marshal(scaleRequest{App: "shop", Watcher: "other_worker_20000", N: 1})
	if _, err := h.scale(context.Background(), req); err == nil {
		t.Error("a scale of another app's watcher was accepted")
	}
}
