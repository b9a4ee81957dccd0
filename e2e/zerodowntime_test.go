package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// load sends GETs through the front nginx with the app's Host header from
// a few goroutines until stopped, bounded in count and time, and records
// every failure and every version it saw.
type load struct {
	in      *Instance
	app     string
	ok      atomic.Int64
	mu      sync.Mutex
	fails   []string
	seen    map[string]int
	stop    context.CancelFunc
	done    sync.WaitGroup
	maxReqs int64
}

func startLoad(in *Instance, app string, workers int, maxDuration time.Duration, maxReqs int64) *load {
	ctx, cancel := context.WithTimeout(context.Background(), maxDuration)
	l := &load{in: in, app: app, seen: map[string]int{}, stop: cancel, maxReqs: maxReqs}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	var sent atomic.Int64
	for w := 0; w < workers; w++ {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for ctx.Err() == nil && sent.Add(1) <= maxReqs {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.HTTPAddr+"/health", nil)
				req.Host = app + ".localhost"
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						l.fail(err.Error())
					}
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					l.fail(fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body))))
					continue
				}
				l.ok.Add(1)
				l.mu.Lock()
				l.seen[resp.Header.Get("X-Conductor-Release")]++
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails = append(l.fails, time.Now().Format("15:04:05.000")+" "+msg)
}

func (l *load) finish() {
	l.stop()
	l.done.Wait()
}

// TestZeroDowntime deploys an app 10 times and changes its config 5 times
// under steady load: no request may fail, and every release must serve.
func TestZeroDowntime(t *testing.T) {
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
	l.finish()
	t.Logf("%d requests served, %d failed, %d releases seen", l.ok.Load(), len(l.fails), len(l.seen))
	if len(l.fails) > 0 {
		t.Errorf("%d requests failed during deploys; first ones:\n%s", len(l.fails), strings.Join(l.fails[:min(len(l.fails), 10)], "\n"))
	}
	// 1 initial + 10 pushes + 5 config changes = 16 releases, each served.
	if len(l.seen) < 16 {
		t.Errorf("load saw %d releases, want 16: %v", len(l.seen), l.seen)
	}
	if l.ok.Load() < 100 {
		t.Errorf("only %d requests succeeded: the load did not run", l.ok.Load())
	}
}
