package provision

import (
	"context"
	"math/rand/v2"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/sqlite"
)

func TestRandomString(t *testing.T) {
	for _, n := range []int{0, 1, 16, 50, 500} {
		s := RandomString(n)
		if len(s) != n {
			t.Errorf("len(RandomString(%d)) = %d", n, len(s))
		}
		for i, c := range s {
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
				t.Errorf("RandomString(%d)[%d] = %q, not in [A-Za-z0-9]", n, i, c)
			}
		}
	}
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		s := RandomString(50)
		if seen[s] {
			t.Fatalf("RandomString(50) repeated %q", s)
		}
		seen[s] = true
	}
	// 5000 characters use the whole alphabet (the chance of missing one
	// of 62 is below 1e-30).
	all := RandomString(5000)
	for _, c := range alnum {
		if !strings.ContainsRune(all, c) {
			t.Errorf("RandomString(5000) never produced %q", c)
		}
	}
}

// freeBlock finds n consecutive ports that nothing listens on.
func freeBlock(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 200; try++ {
		base := 20000 + rand.IntN(10000)
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = portFree(p)
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no block of %d free ports found", n)
	return 0
}

func listen(t *testing.T, port int) {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on %d: %v", port, err)
	}
	t.Cleanup(func() { l.Close() })
}

func TestAllocatePorts(t *testing.T) {
	b := freeBlock(t, 8)
	tests := []struct {
		name  string
		used  []int // offsets from b
		bound []int // offsets bound by a listener during the call
		from  int
		to    int
		want  [2]int // offsets; {-1,-1} means an ECONFLICT error
	}{
		{"lowest two", nil, nil, 0, 7, [2]int{0, 1}},
		{"skip used", []int{0, 1, 3}, nil, 0, 7, [2]int{2, 4}},
		{"skip bound", nil, []int{0, 2}, 0, 7, [2]int{1, 3}},
		{"skip used and bound", []int{0, 2}, []int{1, 3}, 0, 7, [2]int{4, 5}},
		{"used outside the range", []int{-5, 100}, nil, 0, 7, [2]int{0, 1}},
		{"last two", []int{0, 1, 2}, []int{3, 4, 5}, 0, 7, [2]int{6, 7}},
		{"exactly two", nil, nil, 3, 4, [2]int{3, 4}},
		{"exhausted by used", []int{0, 1, 2}, nil, 0, 3, [2]int{-1, -1}},
		{"exhausted by bound", nil, []int{1, 2}, 1, 3, [2]int{-1, -1}},
		{"one port range", nil, nil, 5, 5, [2]int{-1, -1}},
		{"empty range", nil, nil, 5, 4, [2]int{-1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var used []int
			for _, o := range tt.used {
				used = append(used, b+o)
			}
			var listeners []net.Listener
			for _, o := range tt.bound {
				l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b+o)))
				if err != nil {
					t.Fatalf("bind %d: %v", b+o, err)
				}
				listeners = append(listeners, l)
			}
			defer func() {
				for _, l := range listeners {
					l.Close()
				}
			}()
			got, err := allocatePorts(used, PortRange{From: b + tt.from, To: b + tt.to})
			if tt.want[0] == -1 {
				if code := conductor.ErrorCode(err); code != conductor.ECONFLICT {
					t.Fatalf("allocatePorts = %v, %v (code %q); want ECONFLICT", got, err, code)
				}
				if !strings.Contains(conductor.ErrorMessage(err), "no free ports") {
					t.Errorf("message %q", conductor.ErrorMessage(err))
				}
				return
			}
			want := [2]int{b + tt.want[0], b + tt.want[1]}
			if err != nil || got != want {
				t.Fatalf("allocatePorts = %v, %v; want %v", got, err, want)
			}
		})
	}
}

func TestNewApp(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	b := freeBlock(t, 8)
	listen(t, b+1) // something else listens there
	ports := PortRange{From: b, To: b + 5}

	bad := []struct {
		name, db, code string
	}{
		{"Bad", "sqlite", conductor.EINVALID},
		{"root", "sqlite", conductor.EINVALID},
		{"../x", "sqlite", conductor.EINVALID},
		{"ok", "oracle", conductor.EINVALID},
		{"ok", "", conductor.EINVALID},
	}
	for _, tt := range bad {
		if _, err := NewApp(ctx, store, tt.name, tt.db, "local", ports); conductor.ErrorCode(err) != tt.code {
			t.Errorf("NewApp(%q, %q) error = %v, want code %s", tt.name, tt.db, err, tt.code)
		}
	}
	if apps, _ := store.ListApps(ctx); len(apps) != 0 {
		t.Fatalf("refused apps were recorded: %v", apps)
	}

	first, err := NewApp(ctx, store, "first", conductor.DBSQLite, "local", ports)
	if err != nil {
		t.Fatal(err)
	}
	if first.Ports != [2]int{b, b + 2} {
		t.Errorf("first app ports = %v, want %v (b+1 is bound)", first.Ports, [2]int{b, b + 2})
	}
	if len(first.SecretKey) != 50 || first.DBKind != conductor.DBSQLite || first.ID == 0 {
		t.Errorf("first app = %+v", first)
	}
	second, err := NewApp(ctx, store, "second", conductor.DBSQLite, "local", ports)
	if err != nil {
		t.Fatal(err)
	}
	if second.Ports != [2]int{b + 3, b + 4} {
		t.Errorf("second app ports = %v, want %v", second.Ports, [2]int{b + 3, b + 4})
	}
	if second.SecretKey == first.SecretKey {
		t.Error("two apps share a secret key")
	}
	if _, err := NewApp(ctx, store, "first", conductor.DBSQLite, "local", PortRange{From: b + 5, To: b + 7}); conductor.ErrorCode(err) != conductor.ECONFLICT {
		t.Errorf("NewApp(duplicate) error = %v, want ECONFLICT", err)
	}
	if _, err := NewApp(ctx, store, "third", conductor.DBSQLite, "local", ports); conductor.ErrorCode(err) != conductor.ECONFLICT {
		t.Errorf("NewApp with one port left: error = %v, want ECONFLICT", err)
	}
	got, err := store.FindApp(ctx, "second")
	if err != nil || got.Ports != second.Ports || got.SecretKey != second.SecretKey {
		t.Errorf("stored second app = %+v, %v", got, err)
	}
}
