// Package traffic reads the JSON access log Conductor's nginx writes for
// the apps' server blocks (log_format conductor_traffic, package nginx) and
// keeps, per app, one bucket per minute for the last hour: requests, 5xx
// answers and a latency histogram with fixed bounds, from which Series
// computes percentiles.
package traffic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"
)

// Keep is how far back the buckets go.
const Keep = time.Hour

// Bounds are the upper bounds of the latency histogram's buckets (the last
// bucket is everything above): Prometheus's default buckets, extended to
// the 120 s nginx waits for an app.
var Bounds = []time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
	30 * time.Second, 60 * time.Second, 120 * time.Second,
}

// Request is one line of the log.
type Request struct {
	Time     time.Time
	App      string
	Host     string
	Method   string
	Status   int
	Duration time.Duration // nginx's $request_time: first byte read to last byte sent
	Bytes    int64
}

// line is the log's JSON shape (nginx.conf.tmpl's conductor_traffic).
type line struct {
	Time        *float64 `json:"time"`
	App         string   `json:"app"`
	Host        string   `json:"host"`
	Method      string   `json:"method"`
	Status      *int     `json:"status"`
	RequestTime *float64 `json:"request_time"`
	Bytes       int64    `json:"bytes"`
}

// Parse reads one log line. A line without an app (the default server),
// time, status or request time is an error.
func Parse(b []byte) (Request, error) {
	var l line
	if err := json.Unmarshal(b, &l); err != nil {
		return Request{}, fmt.Errorf("traffic log line: %w", err)
	}
	switch {
	case l.Time == nil || *l.Time <= 0 || math.IsInf(*l.Time, 0):
		return Request{}, errors.New("traffic log line: no time")
	case l.Status == nil || *l.Status < 100 || *l.Status > 999:
		return Request{}, errors.New("traffic log line: no status")
	case l.RequestTime == nil || *l.RequestTime < 0 || math.IsInf(*l.RequestTime, 0):
		return Request{}, errors.New("traffic log line: no request_time")
	case l.App == "":
		return Request{}, errors.New("traffic log line: no app")
	}
	sec, frac := math.Modf(*l.Time)
	return Request{
		Time:     time.Unix(int64(sec), int64(math.Round(frac*1e3))*int64(time.Millisecond)),
		App:      l.App,
		Host:     l.Host,
		Method:   l.Method,
		Status:   *l.Status,
		Duration: time.Duration(math.Round(*l.RequestTime * float64(time.Second))),
		Bytes:    l.Bytes,
	}, nil
}

// bucket is one app's minute.
type bucket struct {
	minute    int64 // Unix time / 60; 0: empty
	requests  int
	errors5xx int
	latency   [15]int // len(Bounds)+1
}

// appStats is one app's ring of minutes.
type appStats struct {
	ring [60]bucket
	last int64 // the newest minute seen
}

// Stats holds every app's last hour. The zero value is ready.
type Stats struct {
	// Now is the clock (nil: time.Now); tests set it.
	Now func() time.Time

	mu   sync.Mutex
	apps map[string]*appStats
	bad  int
}

func (s *Stats) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Add counts one request in its app's minute; a request older than Keep
// (or from the future, beyond a minute of clock skew) is ignored.
func (s *Stats) Add(r Request) {
	now := s.now()
	if r.Time.Before(now.Add(-Keep)) || r.Time.After(now.Add(time.Minute)) {
		return
	}
	minute := r.Time.Unix() / 60
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.apps == nil {
		s.apps = map[string]*appStats{}
	}
	a := s.apps[r.App]
	if a == nil {
		a = &appStats{}
		s.apps[r.App] = a
	}
	b := &a.ring[minute%60]
	if b.minute != minute {
		*b = bucket{minute: minute}
	}
	b.requests++
	if r.Status >= 500 && r.Status <= 599 {
		b.errors5xx++
	}
	b.latency[LatencyBucket(r.Duration)]++
	a.last = max(a.last, minute)
}

// Bad counts a line that could not be read.
func (s *Stats) Bad() {
	s.mu.Lock()
	s.bad++
	s.mu.Unlock()
}

// BadLines is how many lines could not be read.
func (s *Stats) BadLines() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bad
}

// Forget drops apps with no request within Keep, so a destroyed app's
// buckets do not stay forever.
func (s *Stats) Forget() {
	old := s.now().Add(-Keep).Unix() / 60
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, a := range s.apps {
		if a.last < old {
			delete(s.apps, name)
		}
	}
}

// Apps lists the apps with requests in the last hour, sorted.
func (s *Stats) Apps() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.apps))
	for n := range s.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LatencyBucket is the index of the histogram bucket d falls in.
func LatencyBucket(d time.Duration) int {
	return sort.Search(len(Bounds), func(i int) bool { return d <= Bounds[i] })
}

// Point is one step of a Series: the requests that started in [Time,
// Time+step), the 5xx among them, and latency percentiles (0 without
// requests).
type Point struct {
	Time          time.Time
	Requests      int
	Errors5xx     int
	P50, P95, P99 time.Duration
}

// Series returns app's traffic over the last window in steps of step,
// oldest first, the last point ending with the current minute. step must
// be a whole number of minutes and window a multiple of it, at most Keep.
// An app with no traffic gets points of zeros.
func (s *Stats) Series(ctx context.Context, app string, window, step time.Duration) ([]Point, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if step < time.Minute || step%time.Minute != 0 {
		return nil, fmt.Errorf("traffic: step %s is not a whole number of minutes", step)
	}
	if window < step || window > Keep || window%step != 0 {
		return nil, fmt.Errorf("traffic: window %s must be a multiple of the step %s, at most %s", window, step, Keep)
	}
	stepMin := int64(step / time.Minute)
	n := int(window / step)
	end := s.now().Unix()/60 + 1 // the minute after the current one
	start := end - int64(n)*stepMin
	points := make([]Point, n)
	hists := make([][15]int, n)
	s.mu.Lock()
	a := s.apps[app]
	for i := range points {
		points[i].Time = time.Unix((start+int64(i)*stepMin)*60, 0)
		if a == nil {
			continue
		}
		for m := start + int64(i)*stepMin; m < start+int64(i+1)*stepMin; m++ {
			b := &a.ring[((m%60)+60)%60]
			if b.minute != m {
				continue
			}
			points[i].Requests += b.requests
			points[i].Errors5xx += b.errors5xx
			for k, c := range b.latency {
				hists[i][k] += c
			}
		}
	}
	s.mu.Unlock()
	for i := range points {
		points[i].P50 = Percentile(hists[i][:], 0.50)
		points[i].P95 = Percentile(hists[i][:], 0.95)
		points[i].P99 = Percentile(hists[i][:], 0.99)
	}
	return points, nil
}

// Percentile estimates the q-quantile (0 < q ≤ 1) of a histogram over
// Bounds, interpolating linearly inside the bucket it falls in, as
// Prometheus's histogram_quantile does; one in the open last bucket is its
// lower bound. 0 for an empty histogram.
func Percentile(hist []int, q float64) time.Duration {
	total := 0
	for _, c := range hist {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	cum := 0
	for i, c := range hist {
		if c == 0 || float64(cum+c) < rank {
			cum += c
			continue
		}
		lo := time.Duration(0)
		if i > 0 {
			lo = Bounds[i-1]
		}
		if i >= len(Bounds) {
			return lo
		}
		hi := Bounds[i]
		frac := (rank - float64(cum)) / float64(c)
		return lo + time.Duration(frac*float64(hi-lo))
	}
	return Bounds[len(Bounds)-1]
}
