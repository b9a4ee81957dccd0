// Command loadgen is the HTTP load of bench/rollout.sh: N workers send GETs
// with a given Host header to a front nginx on the loopback interface, one
// after the other (closed loop), until SIGTERM or SIGINT, -max-duration or
// -max-requests, whichever comes first. It then prints a JSON summary on
// stdout: requests sent, succeeded (status 200) and failed (any other status
// or a transport error), the failures themselves (the first ones), how many
// responses each X-Conductor-Release value had, and latencies.
//
//	loadgen -addr 127.0.0.1:8080 -host hello.localhost -path /health -workers 4
//
// A stop never cancels a request in flight: workers stop starting new ones
// and the summary waits for the last responses (each bounded by -timeout), so
// every request counted is a request that completed or failed on its own.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	addr        string
	host        string
	path        string
	workers     int
	maxRequests int64
	maxDuration time.Duration
	timeout     time.Duration
	rate        float64
	keepAlive   bool
	keepFails   int
}

// failure is one failed request.
type failure struct {
	At      string  `json:"at"`        // wall clock, UTC
	Elapsed float64 `json:"elapsed_s"` // since the load started
	Error   string  `json:"error"`     // "status 502: <body start>" or the transport error
}

// seen is when a release answered a request first and last: the end of
// the request, in Unix seconds.
type seen struct {
	First float64 `json:"first"`
	Last  float64 `json:"last"`
}

// slow is one of the slowest requests.
type slow struct {
	Start   float64 `json:"start"` // Unix seconds
	MS      float64 `json:"ms"`
	Outcome string  `json:"outcome"` // the release that answered, or the failure
	d       time.Duration
}

// keepSlowest is how many of the slowest requests each worker remembers.
const keepSlowest = 10

// addSlow keeps the keepSlowest slowest of list and r, slowest first.
func addSlow(list []slow, r slow) []slow {
	if len(list) == keepSlowest && r.d <= list[len(list)-1].d {
		return list
	}
	i, _ := slices.BinarySearchFunc(list, r, func(a, b slow) int { return int(b.d - a.d) })
	list = slices.Insert(list, i, r)
	return list[:min(len(list), keepSlowest)]
}

// summary is what loadgen prints.
type summary struct {
	Target       string             `json:"target"`
	Host         string             `json:"host"`
	Workers      int                `json:"workers"`
	Rate         float64            `json:"rate_limit_per_s"` // 0: unlimited
	KeepAlive    bool               `json:"keep_alive"`
	Started      string             `json:"started"`
	DurationS    float64            `json:"duration_s"`
	StoppedBy    string             `json:"stopped_by"` // signal, max-duration, max-requests
	Requests     int64              `json:"requests"`
	OK           int64              `json:"ok"`
	Failed       int64              `json:"failed"`
	FailedByKind map[string]int64   `json:"failed_by_kind"`
	Failures     []failure          `json:"failures"` // the first -keep-failures
	Retried      int64              `json:"retried"`  // requests the HTTP client sent again on a new connection
	NewConns     int64              `json:"new_connections"`
	PerSecond    float64            `json:"requests_per_s"`
	Releases     map[string]int64   `json:"releases"`      // X-Conductor-Release of each 200 -> count
	ReleaseOrder []string           `json:"release_order"` // in the order first seen
	ReleasesSeen int                `json:"releases_seen"` // distinct values, "(none)" included
	LatencyMS    map[string]float64 `json:"latency_ms"`    // p50, p90, p99, p999, max over all requests
	Seen         map[string]seen    `json:"release_seen"`  // when each release answered first and last
	Slowest      []slow             `json:"slowest"`       // the slowest requests, slowest first
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "", "front nginx address, host:port on the loopback interface (required)")
	flag.StringVar(&o.host, "host", "", "Host header, e.g. myapp.localhost (required)")
	flag.StringVar(&o.path, "path", "/", "path to GET")
	flag.IntVar(&o.workers, "workers", 4, "concurrent workers, each with one request in flight")
	flag.Int64Var(&o.maxRequests, "max-requests", 1_000_000, "stop after this many requests")
	flag.DurationVar(&o.maxDuration, "max-duration", 10*time.Minute, "stop after this long")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	flag.Float64Var(&o.rate, "rate", 0, "requests per second over all workers (0: as fast as the server answers)")
	flag.BoolVar(&o.keepAlive, "keep-alive", true, "reuse connections (false: a new TCP connection per request)")
	flag.IntVar(&o.keepFails, "keep-failures", 50, "failures listed in the summary (all are counted)")
	flag.Parse()
	if err := check(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s := run(ctx, o)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// check validates the options; the target must be on the loopback interface.
func check(o options) error {
	if o.addr == "" || o.host == "" {
		return errors.New("-addr and -host are required")
	}
	if o.workers < 1 || o.maxRequests < 1 || o.maxDuration <= 0 || o.timeout <= 0 || o.rate < 0 || o.keepFails < 0 {
		return errors.New("-workers, -max-requests, -max-duration and -timeout must be positive, -rate and -keep-failures not negative")
	}
	if len(o.path) == 0 || o.path[0] != '/' {
		return fmt.Errorf("-path %q must start with /", o.path)
	}
	h, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	ips, err := net.LookupIP(h)
	if err != nil {
		return fmt.Errorf("-addr: %w", err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("-addr %s: %s is not a loopback address; loadgen only loads this machine", o.addr, ip)
		}
	}
	return nil
}

// recorder collects the results of all workers.
type recorder struct {
	start     time.Time
	keepFails int

	mu       sync.Mutex
	failed   int64
	byKind   map[string]int64
	failures []failure
	releases map[string]int64
	order    []string
	seen     map[string]seen
}

func (r *recorder) fail(kind, msg string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
	r.byKind[kind]++
	if len(r.failures) < r.keepFails {
		r.failures = append(r.failures, failure{
			At:      now.UTC().Format("15:04:05.000"),
			Elapsed: round3(now.Sub(r.start).Seconds()),
			Error:   msg,
		})
	}
}

func (r *recorder) served(release string, at time.Time) {
	t := float64(at.UnixMicro()) / 1e6
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.releases[release] == 0 {
		r.order = append(r.order, release)
		r.seen[release] = seen{First: t, Last: t}
	}
	r.releases[release]++
	if s := r.seen[release]; t > s.Last {
		s.Last = t
		r.seen[release] = s
	}
}

func run(ctx context.Context, o options) summary {
	rec := &recorder{start: time.Now(), keepFails: o.keepFails, byKind: map[string]int64{}, releases: map[string]int64{}, seen: map[string]seen{}}
	transport := &http.Transport{
		Proxy:               nil, // never an HTTP proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: o.workers,
		DisableKeepAlives:   !o.keepAlive,
	}
	client := &http.Client{
		Timeout:   o.timeout,
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is a non-200 answer, not followed
		},
	}
	url := "http://" + o.addr + o.path

	// A stop (signal or deadline) only stops new requests from starting.
	deadline := rec.start.Add(o.maxDuration)
	var sent, ok, retried, newConns atomic.Int64
	var quit, hitMax atomic.Bool
	go func() { <-ctx.Done(); quit.Store(true) }()

	// -rate: request k (over all workers) starts no earlier than start+k/rate.
	var slot atomic.Int64
	pace := func() bool {
		if o.rate == 0 {
			return true
		}
		at := rec.start.Add(time.Duration(float64(slot.Add(1)-1) / o.rate * float64(time.Second)))
		for d := time.Until(at); d > 0; d = time.Until(at) {
			if quit.Load() || time.Now().After(deadline) {
				return false
			}
			time.Sleep(min(d, 50*time.Millisecond))
		}
		return true
	}

	latencies := make([][]time.Duration, o.workers)
	slowest := make([][]slow, o.workers)
	var wg sync.WaitGroup
	for w := range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if quit.Load() || time.Now().After(deadline) {
					return
				}
				if !pace() {
					return
				}
				if n := sent.Add(1); n > o.maxRequests {
					sent.Add(-1)
					hitMax.Store(true)
					return
				}
				// The client sends a request again, on a new connection, when a
				// reused one was closed before any response byte: a retried
				// request gets more than one connection.
				var conns atomic.Int32
				trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
					conns.Add(1)
					if !i.Reused {
						newConns.Add(1)
					}
				}}
				// Not the signal's context: a stop lets this request finish.
				req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, url, nil)
				if err != nil {
					rec.fail("request", err.Error())
					return
				}
				req.Host = o.host
				t0 := time.Now()
				resp, err := client.Do(req)
				if conns.Load() > 1 {
					retried.Add(1)
				}
				var outcome string
				if err != nil {
					outcome = err.Error()
					rec.fail("transport", outcome)
				} else {
					body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
					resp.Body.Close()
					switch {
					case err != nil:
						outcome = "reading the body: " + err.Error()
						rec.fail("transport", outcome)
					case resp.StatusCode != http.StatusOK:
						outcome = fmt.Sprintf("status %d: %.120q", resp.StatusCode, body)
						rec.fail(fmt.Sprintf("status %d", resp.StatusCode), outcome)
					default:
						ok.Add(1)
						outcome = resp.Header.Get("X-Conductor-Release")
						if outcome == "" {
							outcome = "(none)"
						}
						rec.served(outcome, time.Now())
					}
				}
				d := time.Since(t0)
				latencies[w] = append(latencies[w], d)
				slowest[w] = addSlow(slowest[w], slow{Start: float64(t0.UnixMicro()) / 1e6, MS: ms(d), Outcome: outcome, d: d})
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(rec.start)
	why := "max-duration"
	switch {
	case quit.Load():
		why = "signal"
	case hitMax.Load():
		why = "max-requests"
	}
	transport.CloseIdleConnections()

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	slices.Sort(all)
	lat := map[string]float64{}
	if len(all) > 0 {
		for _, p := range []struct {
			name string
			q    float64
		}{{"p50", 0.50}, {"p90", 0.90}, {"p99", 0.99}, {"p999", 0.999}} {
			lat[p.name] = ms(all[min(len(all)-1, int(p.q*float64(len(all))))])
		}
		lat["max"] = ms(all[len(all)-1])
	}

	var slowList []slow
	for _, l := range slowest {
		for _, r := range l {
			slowList = addSlow(slowList, r)
		}
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	order := slices.Clone(rec.order)
	return summary{
		Target:       url,
		Host:         o.host,
		Workers:      o.workers,
		Rate:         o.rate,
		KeepAlive:    o.keepAlive,
		Started:      rec.start.UTC().Format(time.RFC3339Nano),
		DurationS:    round3(elapsed.Seconds()),
		StoppedBy:    why,
		Requests:     sent.Load(),
		OK:           ok.Load(),
		Failed:       rec.failed,
		FailedByKind: rec.byKind,
		Failures:     append([]failure{}, rec.failures...),
		Retried:      retried.Load(),
		NewConns:     newConns.Load(),
		PerSecond:    round3(float64(sent.Load()) / elapsed.Seconds()),
		Releases:     rec.releases,
		ReleaseOrder: order,
		ReleasesSeen: len(order),
		LatencyMS:    lat,
		Seen:         rec.seen,
		Slowest:      slowList,
	}
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
