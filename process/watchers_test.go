package process

import "testing"

func TestParseWatcher(t *testing.T) {
	for _, c := range []struct {
		app, watcher, typ string
		port              int
		ok                bool
	}{
		{"shop", "shop_web_20001", "web", 20001, true},
		{"shop", "shop_worker_20001", "worker", 20001, true},
		{"shop", "shop_q_1_20000", "q_1", 20000, true},
		{"shop", "shop_q_1", "q_1", 0, true},       // a type's watcher named before ports
		{"shop", "shop_worker", "worker", 0, true}, // idem
		{"shop", "shop_redis-server", "redis-server", 0, true},
		{"shop", "shop_w_0123", "w_0123", 0, true}, // not a port as Itoa writes one
		{"shop", "shop2_web_20001", "", 0, false},
		{"shop", "shop_", "", 0, false},
		{"shop", "shop-x_web_1", "", 0, false},
	} {
		typ, port, ok := ParseWatcher(c.app, c.watcher)
		if typ != c.typ || port != c.port || ok != c.ok {
			t.Errorf("ParseWatcher(%q, %q) = %q, %d, %v; want %q, %d, %v", c.app, c.watcher, typ, port, ok, c.typ, c.port, c.ok)
		}
		if c.port != 0 {
			if got := ReleaseWatcher(c.app, c.typ, c.port); got != c.watcher {
				t.Errorf("ReleaseWatcher(%q, %q, %d) = %q", c.app, c.typ, c.port, got)
			}
		}
	}
}
