package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load sends GET /health to an app through a front nginx from a few
// clients that never retry, until stopped, bounded in count and time, and
// records every failure and every release (X-Conductor-Release) it saw.
// All clients but one open a new connection per request; the last keeps
// its connection alive and counts a reset or an unannounced close as a
// failure (it redials only after a response that said Connection: close).
// Go's http.Client would silently resend a GET whose kept-alive connection
// broke: these speak HTTP on the socket themselves.
//
// One failure is kept apart, in dropped: the kept-alive connection closed
// with a request sent on it and not one byte of an answer. That is what an
// nginx worker retiring after a reload does (it closes each kept-alive
// connection after its current response, although that response said
// keep-alive); HTTP lets a client resend such a request (RFC 9112 §9.3.1)
// and browsers do. Every other failure is in fails.
type load struct {
	ok      atomic.Int64
	mu      sync.Mutex
	fails   []string
	dropped []string
	seen    map[string]int
	stop    context.CancelFunc
	done    sync.WaitGroup
}

func startLoad(in *Instance, app string, clients int, maxDuration time.Duration, maxReqs int64) *load {
	return startLoadAt(in.HTTPAddr, app, clients, maxDuration, maxReqs)
}

func startLoadAt(addr, app string, clients int, maxDuration time.Duration, maxReqs int64) *load {
	ctx, cancel := context.WithTimeout(context.Background(), maxDuration)
	l := &load{seen: map[string]int{}, stop: cancel}
	var sent atomic.Int64
	more := func() bool { return ctx.Err() == nil && sent.Add(1) <= maxReqs }
	req := "GET /health HTTP/1.1\r\nHost: " + app + ".localhost\r\n"
	// roundTrip sends one request on c and reads its response; unanswered
	// says the connection ended before any byte of an answer.
	roundTrip := func(c net.Conn, br *bufio.Reader, closeConn bool) (resp *http.Response, unanswered bool, err error) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := req
		if closeConn {
			r += "Connection: close\r\n"
		}
		if _, err := io.WriteString(c, r+"\r\n"); err != nil {
			return nil, true, err
		}
		if _, err := br.Peek(1); err != nil {
			return nil, true, err
		}
		resp, err = http.ReadResponse(br, nil)
		if err != nil {
			return nil, false, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, false, err
		}
		if resp.StatusCode != 200 {
			return nil, false, fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		l.ok.Add(1)
		l.mu.Lock()
		l.seen[resp.Header.Get("X-Conductor-Release")]++
		l.mu.Unlock()
		return resp, false, nil
	}
	for range max(clients-1, 1) {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for more() {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					l.fail(ctx, "new connection: "+err.Error())
					continue
				}
				_, _, err = roundTrip(c, bufio.NewReader(c), true)
				c.Close()
				if err != nil {
					l.fail(ctx, "new connection: "+err.Error())
				}
			}
		}()
	}
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		var c net.Conn
		var br *bufio.Reader
		reused := false // c has answered a request before
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		for more() {
			if c == nil {
				var err error
				if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
					l.fail(ctx, "keep-alive dial: "+err.Error())
					c = nil
					continue
				}
				br, reused = bufio.NewReader(c), false
			}
			resp, unanswered, err := roundTrip(c, br, false)
			if err != nil {
				if unanswered && reused {
					l.drop(ctx, "keep-alive: "+err.Error())
				} else {
					l.fail(ctx, "keep-alive: "+err.Error())
				}
				c.Close()
				c = nil
				continue
			}
			reused = true
			if resp.Close { // announced: not a failure
				c.Close()
				c = nil
			}
		}
	}()
	return l
}

// fail records a failed request; one cut off by the load's end is not.
func (l *load) fail(ctx context.Context, msg string) {
	if ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails = append(l.fails, time.Now().Format("15:04:05.000")+" "+msg)
}

// drop records a request the server closed its kept-alive connection on
// without answering (see load).
func (l *load) drop(ctx context.Context, msg string) {
	if ctx.Err() != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropped = append(l.dropped, time.Now().Format("15:04:05.000")+" "+msg)
}

// finish stops the load and waits for its clients.
func (l *load) finish() {
	l.stop()
	l.done.Wait()
}

// served waits until n more requests have succeeded.
func (l *load) served(t *testing.T, n int64) {
	t.Helper()
	want := l.ok.Load() + n
	waitFor(t, fmt.Sprintf("%d more requests served", n), func() bool { return l.ok.Load() >= want })
}

// check finishes the load and fails the test if any request failed.
// dropsAllowed says whether nginx reloaded meanwhile: only then may a
// kept-alive connection be closed under a request (see load); they are
// counted and said.
func (l *load) check(t *testing.T, what string, dropsAllowed bool) {
	t.Helper()
	l.finish()
	t.Logf("%s: %d requests served, %d failed, %d unanswered on a kept-alive connection nginx closed", what, l.ok.Load(), len(l.fails), len(l.dropped))
	if len(l.fails) > 0 {
		t.Errorf("%s: %d requests failed; first ones:\n%s", what, len(l.fails), strings.Join(l.fails[:min(len(l.fails), 10)], "\n"))
	}
	if len(l.dropped) > 0 && !dropsAllowed {
		t.Errorf("%s: %d requests unanswered on a kept-alive connection, with no nginx reload; first ones:\n%s", what, len(l.dropped), strings.Join(l.dropped[:min(len(l.dropped), 10)], "\n"))
	}
}

// TestZeroDowntime deploys an app 10 times and changes its config 5 times
// under steady load: no request may fail, and every release must serve.
func TestZeroDowntime(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	work := in.WorkTree("hello")
	if r := in.Push(work, "steady", "main"); r.Code != 0 {
		t.Fatalf("first push: %s", r)
	}
	l := startLoad(in, "steady", 4, 10*time.Minute, 200000)
	time.Sleep(500 * time.Millisecond)
	for i := 2; i <= 11; i++ {
		setVersion(t, work, fmt.Sprintf("v%d", i))
		in.Commit(work, fmt.Sprintf("v%d", i))
		if r := in.Push(work, "steady", "main"); r.Code != 0 {
			t.Fatalf("push v%d: %s", i, r)
		}
		if _, body, _ := in.Get("steady", "/"); !strings.Contains(body, fmt.Sprintf("Hello from Conductor v%d<", i)) {
			t.Errorf("after push v%d GET / = %q", i, body)
		}
		if i%2 == 0 {
			if r := in.SSH(in.AdminKey, fmt.Sprintf("config:set steady ROUND=%d", i)); r.Code != 0 {
				t.Fatalf("config:set: %s", r)
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	l.check(t, "deploys under load", false) // a deploy switches the route: no reload
	t.Logf("%d releases seen", len(l.seen))
	// 1 initial + 10 pushes + 5 config changes = 16 releases, each served.
	if len(l.seen) < 16 {
		t.Errorf("load saw %d releases, want 16: %v", len(l.seen), l.seen)
	}
	if l.ok.Load() < 100 {
		t.Errorf("only %d requests succeeded: the load did not run", l.ok.Load())
	}
}
