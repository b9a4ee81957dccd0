package hooks

import (
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseRefUpdates(t *testing.T) {
	const (
		a = "1111111111111111111111111111111111111111"
		b = "2222222222222222222222222222222222222222"
		z = zeroRev
	)
	tests := []struct {
		name    string
		in      string
		want    []RefUpdate
		errPart string
	}{
		{"empty", "", nil, ""},
		{"one", a + " " + b + " refs/heads/main\n", []RefUpdate{{a, b, "refs/heads/main"}}, ""},
		{
			"several with nested branch",
			z + " " + a + " refs/heads/feature/x\n" +
				a + " " + b + " refs/heads/main\n" +
				b + " " + z + " refs/tags/v1.0\n" +
				a + " " + b + " refs/heads/feature/deep/er/branch\n",
			[]RefUpdate{
				{z, a, "refs/heads/feature/x"},
				{a, b, "refs/heads/main"},
				{b, z, "refs/tags/v1.0"},
				{a, b, "refs/heads/feature/deep/er/branch"},
			},
			"",
		},
		{"no trailing newline", a + " " + b + " refs/heads/feature/x", []RefUpdate{{a, b, "refs/heads/feature/x"}}, ""},
		{"CRLF and extra spaces", a + "  " + b + "\trefs/heads/main \r\n", []RefUpdate{{a, b, "refs/heads/main"}}, ""},
		{"two fields", a + " " + b + "\n", nil, "malformed ref update"},
		{"four fields", a + " " + b + " refs/heads/main extra\n", nil, "malformed ref update"},
		{"blank line", a + " " + b + " refs/heads/main\n\n", nil, "malformed ref update"},
		{"garbage after good lines", a + " " + b + " refs/heads/main\nhello\n", nil, "malformed ref update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRefUpdates(strings.NewReader(tt.in))
			if tt.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("ParseRefUpdates = %v, %v; want an error containing %q", got, err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRefUpdates: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseRefUpdates = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseRefUpdatesManyLines(t *testing.T) {
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		sb.WriteString(zeroRev + " 1111111111111111111111111111111111111111 refs/heads/branch/" + strings.Repeat("x", i%50) + "\n")
	}
	got, err := ParseRefUpdates(strings.NewReader(sb.String()))
	if err != nil || len(got) != 1000 {
		t.Fatalf("ParseRefUpdates(1000 lines) = %d updates, %v", len(got), err)
	}
	if got[999].Ref != "refs/heads/branch/"+strings.Repeat("x", 999%50) {
		t.Errorf("last ref = %q", got[999].Ref)
	}
}

func TestNewJobID(t *testing.T) {
	re := regexp.MustCompile(`^(\d{8}T\d{6})-[0-9a-f]{8}$`)
	seen := map[string]bool{}
	before := time.Now().UTC().Add(-time.Second)
	for i := 0; i < 500; i++ {
		id := NewJobID()
		m := re.FindStringSubmatch(id)
		if m == nil {
			t.Fatalf("NewJobID() = %q, want YYYYMMDDTHHMMSS-xxxxxxxx", id)
		}
		ts, err := time.Parse("20060102T150405", m[1])
		if err != nil {
			t.Fatalf("NewJobID() = %q: bad timestamp: %v", id, err)
		}
		if ts.Before(before.Truncate(time.Second)) || ts.After(time.Now().UTC().Add(time.Second)) {
			t.Fatalf("NewJobID() = %q: timestamp %v is not now (UTC)", id, ts)
		}
		if seen[id] {
			t.Fatalf("NewJobID() repeated %q after %d calls", id, i)
		}
		seen[id] = true
	}
	// Job ids sort by creation time.
	a := NewJobID()
	time.Sleep(1100 * time.Millisecond)
	if b := NewJobID(); !(a < b) {
		t.Errorf("NewJobID() %q made later does not sort after %q", b, a)
	}
}

func TestShortRev(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1234567890abcdef", "12345678"},
		{"12345678", "12345678"},
		{"abc", "abc"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := shortRev(tt.in); got != tt.want {
			t.Errorf("shortRev(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
