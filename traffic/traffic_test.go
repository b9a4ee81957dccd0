package traffic

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Lines as nginx writes them with log_format conductor_traffic.
const (
	ok200   = `{"time":1764683400.123,"app":"shop","host":"shop.example.org","method":"GET","status":200,"request_time":0.004,"upstream_response_time":"0.004","bytes":612}`
	err502  = `{"time":1764683401.500,"app":"shop","host":"shop.example.org","method":"POST","status":502,"request_time":0.000,"upstream_response_time":"0.000","bytes":157}`
	static  = `{"time":1764683402.000,"app":"shop","host":"www.shop.org","method":"GET","status":304,"request_time":0.000,"upstream_response_time":"","bytes":0}`
	escaped = `{"time":1764683403.000,"app":"shop","host":"shop.example.org\u0022x","method":"G\\ET","status":404,"request_time":1.250,"upstream_response_time":"0.500, 0.750","bytes":9}`
)

func TestParse(t *testing.T) {
	r, err := Parse([]byte(ok200))
	if err != nil {
		t.Fatal(err)
	}
	want := Request{Time: time.Unix(1764683400, 123e6), App: "shop", Host: "shop.example.org", Method: "GET", Status: 200, Duration: 4 * time.Millisecond, Bytes: 612}
	if r != want {
		t.Fatalf("Parse = %+v, want %+v", r, want)
	}
	for _, l := range []string{err502, static, escaped} {
		if _, err := Parse([]byte(l)); err != nil {
			t.Errorf("Parse(%s): %v", l, err)
		}
	}
	r, _ = Parse([]byte(escaped))
	if r.Host != `shop.example.org"x` || r.Duration != 1250*time.Millisecond {
		t.Errorf("escaped line read as %+v", r)
	}
	for _, bad := range []string{
		``, `not json`, `{"time":1,"app":"a","status":200}`, // no request_time
		`{"app":"a","status":200,"request_time":0.1}`,                  // no time
		`{"time":1764683400,"app":"","status":200,"request_time":0.1}`, // the default server
		`{"time":1764683400,"app":"a","status":"-","request_time":0.1}`,
		`{"time":1764683400,"app":"a","status":200,"request_time":-1}`,
		`{"time":1764683400.1,"app":"a","status":200,"request_time":0.1`, // cut
	} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) = nil error, want one", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	hist := make([]int, len(Bounds)+1)
	if got := Percentile(hist, 0.5); got != 0 {
		t.Fatalf("empty histogram: %s", got)
	}
	// 100 requests: 90 in (0, 5ms], 9 in (100ms, 250ms], 1 above 120 s.
	hist[0], hist[LatencyBucket(200*time.Millisecond)], hist[len(Bounds)] = 90, 9, 1
	for _, tt := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 5 * time.Millisecond * 50 / 90}, // rank 50 of 90 in the first bucket
		{0.9, 5 * time.Millisecond},           // the first bucket's top
		{0.95, 100*time.Millisecond + 150*time.Millisecond*5/9},
		{0.99, 250 * time.Millisecond}, // rank 99: the second bucket's top
		{1, 120 * time.Second},         // the open bucket: its lower bound
	} {
		got := Percentile(hist, tt.q)
		if diff := got - tt.want; diff < -time.Microsecond || diff > time.Microsecond {
			t.Errorf("Percentile(%v) = %s, want %s", tt.q, got, tt.want)
		}
	}
	if LatencyBucket(0) != 0 || LatencyBucket(5*time.Millisecond) != 0 || LatencyBucket(5*time.Millisecond+1) != 1 || LatencyBucket(time.Hour) != len(Bounds) {
		t.Error("LatencyBucket puts the bounds in the wrong buckets")
	}
}

func TestSeries(t *testing.T) {
	now := time.Date(2026, 12, 2, 14, 30, 20, 0, time.UTC)
	s := &Stats{Now: func() time.Time { return now }}
	add := func(ago time.Duration, status int, d time.Duration) {
		s.Add(Request{Time: now.Add(-ago), App: "shop", Status: status, Duration: d})
	}
	for range 8 {
		add(0, 200, 3*time.Millisecond) // this minute
	}
	add(5*time.Second, 500, 300*time.Millisecond)
	add(10*time.Second, 503, 300*time.Millisecond)
	add(2*time.Minute, 200, 40*time.Millisecond)
	add(59*time.Minute, 404, time.Millisecond)
	add(61*time.Minute, 200, time.Millisecond) // older than an hour: dropped
	s.Add(Request{Time: now, App: "other", Status: 500, Duration: time.Second})

	pts, err := s.Series(context.Background(), "shop", 5*time.Minute, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 5 {
		t.Fatalf("%d points, want 5", len(pts))
	}
	last := pts[4]
	if !last.Time.Equal(time.Date(2026, 12, 2, 14, 30, 0, 0, time.UTC)) || last.Requests != 10 || last.Errors5xx != 2 {
		t.Fatalf("this minute: %+v", last)
	}
	if last.P50 > 5*time.Millisecond || last.P95 < 250*time.Millisecond || last.P95 > 500*time.Millisecond {
		t.Errorf("this minute's percentiles: %+v", last)
	}
	if pts[2].Requests != 1 || pts[2].Errors5xx != 0 || pts[2].P50 <= 25*time.Millisecond || pts[2].P50 > 50*time.Millisecond {
		t.Errorf("two minutes ago: %+v", pts[2])
	}
	if pts[0].Requests != 0 || pts[0].P99 != 0 {
		t.Errorf("four minutes ago: %+v", pts[0])
	}

	hour, err := s.Series(context.Background(), "shop", time.Hour, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, p := range hour {
		total += p.Requests
	}
	if len(hour) != 6 || total != 12 || hour[0].Requests != 1 {
		t.Errorf("the hour in 10-minute steps: %d points, %d requests (%+v)", len(hour), total, hour)
	}

	none, err := s.Series(context.Background(), "nothing", time.Hour, time.Minute)
	if err != nil || len(none) != 60 || none[59].Requests != 0 {
		t.Errorf("an app without traffic: %d points, %v", len(none), err)
	}

	for _, bad := range [][2]time.Duration{{time.Hour, 30 * time.Second}, {2 * time.Hour, time.Minute}, {7 * time.Minute, 2 * time.Minute}, {0, time.Minute}} {
		if _, err := s.Series(context.Background(), "shop", bad[0], bad[1]); err == nil {
			t.Errorf("Series(window %s, step %s) = nil error", bad[0], bad[1])
		}
	}

	// Over an hour later, the ring slots hold new minutes only.
	now = now.Add(time.Hour + time.Minute)
	add(0, 200, time.Millisecond)
	pts, _ = s.Series(context.Background(), "shop", time.Hour, time.Minute)
	total = 0
	for _, p := range pts {
		total += p.Requests
	}
	if total != 1 {
		t.Errorf("an hour later: %d requests in the last hour, want 1", total)
	}
	s.Forget()
	if got := s.Apps(); len(got) != 1 || got[0] != "shop" {
		t.Errorf("Apps after Forget = %v, want [shop]", got)
	}
}

// observed collects what a Tailer observes.
type observed struct {
	mu   sync.Mutex
	reqs []Request
}

func (o *observed) add(r Request) { o.mu.Lock(); o.reqs = append(o.reqs, r); o.mu.Unlock() }
func (o *observed) n() int        { o.mu.Lock(); defer o.mu.Unlock(); return len(o.reqs) }

func logLine(status int) string {
	return fmt.Sprintf(`{"time":%.3f,"app":"shop","host":"shop.example.org","method":"GET","status":%d,"request_time":0.010,"upstream_response_time":"0.010","bytes":1}`+"\n",
		float64(time.Now().UnixMilli())/1000, status)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond (the tailer polls the file) for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func requests(s *Stats) int {
	pts, _ := s.Series(context.Background(), "shop", time.Hour, time.Hour)
	return pts[0].Requests
}

// TestTailer: lines before the start fill the buckets but are not
// observed; a partial line waits for its end; bad lines are counted; a
// rotation (rename + new file) and a truncation are followed; a second
// tailer (a restart) observes only what comes after it.
func TestTailer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traffic.log")
	appendFile(t, path, logLine(200)+logLine(500))
	s := &Stats{}
	var o observed
	tl := &Tailer{Path: path, Stats: s, Observe: o.add, Poll: 5 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()

	waitFor(t, "the backfill", func() bool { return requests(s) == 2 })
	if o.n() != 0 {
		t.Fatalf("the backfill was observed: %d requests", o.n())
	}

	l := logLine(404)
	appendFile(t, path, l[:20])
	appendFile(t, path, "garbage\n")
	appendFile(t, path, l) // the garbage ended the first part: one bad line
	waitFor(t, "a new line", func() bool { return o.n() == 1 })
	if s.BadLines() != 1 {
		t.Errorf("BadLines = %d, want 1", s.BadLines())
	}

	// Rotation as nginx.RotateLogs does it; nginx writes the old file
	// until it reopens its logs.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path+".1", logLine(200))
	appendFile(t, path, logLine(503))
	waitFor(t, "both files' lines", func() bool { return o.n() == 3 })

	// Truncation (copytruncate).
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	// A poll sees the file shorter than what was read and reads it again
	// from its top. (A file that grows back past that before a poll is
	// read from the old offset: rotate by renaming, as RotateLogs does.)
	p := tl.polls.Load()
	waitFor(t, "two polls", func() bool { return tl.polls.Load() >= p+2 })
	appendFile(t, path, logLine(201))
	waitFor(t, "a line after the truncation", func() bool { return o.n() == 4 })
	cancel()
	<-done
	if got := requests(s); got != 6 {
		t.Errorf("%d requests in the buckets, want 6", got)
	}

	// A restart: the new tailer backfills, observes nothing old.
	s2 := &Stats{}
	var o2 observed
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	tl2 := &Tailer{Path: path, Stats: s2, Observe: o2.add, Poll: 5 * time.Millisecond}
	go func() { _ = tl2.Run(ctx2) }()
	waitFor(t, "the restart's backfill", func() bool { return requests(s2) == 1 })
	appendFile(t, path, logLine(200))
	waitFor(t, "a line after the restart", func() bool { return o2.n() == 1 })
	if o.n() != 4 {
		t.Errorf("the first tailer observed %d after stopping", o.n())
	}
}
