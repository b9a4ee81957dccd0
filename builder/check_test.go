package builder

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/pybuild"
)

// getter asks a real server the way runCheck does, not following redirects.
func getter(url string) func(context.Context, time.Duration) (int, []byte, error) {
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return func(ctx context.Context, timeout time.Duration) (int, []byte, error) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, body, err
	}
}

func never() bool { return false }

// TestProbeKeepsTheLastAnswerAtTheDeadline: a release that answers 500
// until the check's deadline is reported as answering 500, not as the
// timeout of the last request, which the deadline cut short.
func TestProbeKeepsTheLastAnswerAtTheDeadline(t *testing.T) {
	c := pybuild.Healthcheck{Name: "ready", Path: "/", Timeout: time.Second, Wait: 10 * time.Millisecond}
	get := func(ctx context.Context, timeout time.Duration) (int, []byte, error) {
		if timeout < c.Timeout { // the deadline's remainder: the request times out
			<-time.After(timeout)
			return 0, nil, fmt.Errorf("Get \"http://127.0.0.1/\": %w", context.DeadlineExceeded)
		}
		return http.StatusInternalServerError, []byte("boom"), nil
	}
	_, err := probe(context.Background(), c, get, never, 2*time.Second, time.Now().Add(c.Timeout+200*time.Millisecond))
	if err == nil || !strings.Contains(conductor.ErrorMessage(err), "last answer: answered 500") {
		t.Fatalf("probe = %v, want the last answer to be the 500", err)
	}
}

func TestProbe(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		switch r.URL.Path {
		case "/redirect":
			http.Redirect(w, r, "https://elsewhere.invalid/", http.StatusMovedPermanently)
		case "/warming":
			if n < 3 {
				http.Error(w, "starting", http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, "ok")
		case "/slow":
			time.Sleep(2 * time.Second)
		default:
			_, _ = io.WriteString(w, "all good")
		}
	}))
	defer srv.Close()
	check := func(path string) pybuild.Healthcheck {
		return pybuild.Healthcheck{Name: "ready", Path: path, Attempts: 3, Timeout: time.Second, Wait: 0}
	}
	for _, tt := range []struct {
		name    string
		c       pybuild.Healthcheck
		hits    int32 // requests made, 0 to skip
		errPart string
	}{
		{name: "default passes a redirect without following it", c: withPath(pybuild.DefaultHealthcheck, "/redirect"), hits: 1},
		{name: "content found", c: withContent(check("/"), "good"), hits: 1},
		{name: "content missing", c: withContent(check("/"), "bad"), hits: 3,
			errPart: `health check "ready" (GET /) of the new release failed after 3 attempts (last answer: answered 200 without "bad")`},
		{name: "passes on the third attempt", c: withContent(check("/warming"), "ok"), hits: 3},
		{name: "redirect is not 2xx when content is wanted", c: withContent(check("/redirect"), "x"), errPart: "answered 301, not 2xx"},
		{name: "timeouts are attempts", c: pybuild.Healthcheck{Name: "slow", Path: "/slow", Attempts: 2, Timeout: 100 * time.Millisecond},
			errPart: "failed after 2 attempts (last answer: Get"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hits.Store(0)
			status, err := probe(context.Background(), tt.c, getter(srv.URL+tt.c.Path), never, 10*time.Second, time.Now().Add(10*time.Second))
			if tt.errPart != "" {
				if err == nil || !strings.Contains(conductor.ErrorMessage(err), tt.errPart) {
					t.Fatalf("probe = %d, %v; want an error containing %q", status, err, tt.errPart)
				}
			} else if err != nil {
				t.Fatalf("probe: %v", err)
			}
			if tt.hits != 0 && hits.Load() != tt.hits {
				t.Errorf("%d requests, want %d", hits.Load(), tt.hits)
			}
		})
	}
}

// A refused connection is the process still starting: it is not an
// attempt, and the check passes once the process listens.
func TestProbeWaitsForTheListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	refused := make(chan struct{}, 100)
	get := getter("http://" + addr + "/health")
	counting := func(ctx context.Context, timeout time.Duration) (int, []byte, error) {
		status, body, err := get(ctx, timeout)
		if err != nil {
			refused <- struct{}{}
		}
		return status, body, err
	}
	started := make(chan *http.Server, 1)
	go func() {
		for range 5 { // five refusals, more than the check's attempts
			<-refused
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Error(err)
			started <- nil
			return
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
		started <- srv
		_ = srv.Serve(ln)
	}()
	c := pybuild.Healthcheck{Name: "ready", Path: "/health", Content: "ok", Attempts: 2, Timeout: time.Second}
	status, err := probe(context.Background(), c, counting, never, 10*time.Second, time.Now().Add(10*time.Second))
	if srv := <-started; srv != nil {
		defer srv.Close()
	}
	if err != nil || status != 200 {
		t.Fatalf("probe = %d, %v; want 200 once the process listens", status, err)
	}
}

func TestProbeBounds(t *testing.T) {
	refused := func(context.Context, time.Duration) (int, []byte, error) {
		return 0, nil, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
	}
	start := time.Now()
	_, err := probe(context.Background(), pybuild.DefaultHealthcheck, refused, never, 300*time.Millisecond, time.Now().Add(300*time.Millisecond))
	if err == nil || !strings.Contains(conductor.ErrorMessage(err), "health check of the new release failed: no pass within 300ms (last answer: connection refused)") {
		t.Errorf("past the deadline: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the deadline of 300ms took %s", took)
	}
	_, err = probe(context.Background(), pybuild.DefaultHealthcheck, refused, func() bool { return true }, time.Minute, time.Now().Add(time.Minute))
	if err == nil || !strings.Contains(conductor.ErrorMessage(err), "its processes keep exiting") {
		t.Errorf("crashing: %v", err)
	}
}

func withPath(c pybuild.Healthcheck, p string) pybuild.Healthcheck    { c.Path = p; return c }
func withContent(c pybuild.Healthcheck, s string) pybuild.Healthcheck { c.Content = s; return c }
