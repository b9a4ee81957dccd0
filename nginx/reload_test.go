package nginx

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestWaitReloaded: after a reload that adds a site, a worker the reload
// replaced keeps taking connections until it handles the master's quit,
// and answers them as if the site did not exist, though a new worker
// already serves it. The old worker is held stopped to make that window
// long: WaitRelease waits while it lasts (WaitReloaded), and once it
// returns, every new connection gets the new site. Without that wait, a
// worker host's first deploy could end and its app answer "no app is
// served at this host name" (an e2e failure in CI).
func TestWaitReloaded(t *testing.T) {
	n, dir, ctx := startNginx(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app at %s", r.Host)
	})}
	go srv.Serve(l)
	defer srv.Close()
	static := filepath.Join(dir, "staticfiles")
	if err := os.MkdirAll(static, 0o755); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(host string) string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.Listen+"/", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}

	for i := range 2 {
		old := workerPids(n.masterPid())
		if len(old) == 0 {
			t.Fatal("nginx has no workers")
		}
		for pid := range old {
			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
		}
		resume := func() {
			for pid := range old {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
		host := fmt.Sprintf("app%d.localhost", i)
		site := Site{App: fmt.Sprintf("app%d", i), Release: "r1", Hosts: []string{host}, Port: l.Addr().(*net.TCPAddr).Port, StaticDir: static}
		if err := n.WriteSite(ctx, site); err != nil {
			resume()
			t.Fatal(err)
		}
		// The new worker answers, the stopped one still takes connections.
		err := n.WaitRelease(ctx, host, "r1", 5*time.Second)
		resume()
		if err == nil || !strings.Contains(err.Error(), "still take connections") {
			t.Fatalf("round %d: WaitRelease with the replaced worker stopped: %v, want it to wait for that worker", i, err)
		}
		if err := n.WaitRelease(ctx, host, "r1", 15*time.Second); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		var wg sync.WaitGroup
		answers := make([]string, 20)
		for j := range answers {
			wg.Add(1)
			go func() { defer wg.Done(); answers[j] = get(host) }()
		}
		wg.Wait()
		for j, a := range answers {
			if a != "app at "+host {
				t.Errorf("round %d, connection %d after WaitReloaded: %q, want the new site's app", i, j, a)
			}
		}
	}
}

// TestWaitReloadedLeavesHeldRequests: a worker a reload replaced while it
// serves a request stops taking connections at once but lives on until the
// request ends. WaitRelease returns while that request is held (it waits
// for the worker's title, not its exit: a long download must not hold a
// push), and the request then ends well.
func TestWaitReloadedLeavesHeldRequests(t *testing.T) {
	n, dir, ctx := startNginx(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-release
		}
		fmt.Fprint(w, "ok")
	})}
	go srv.Serve(l)
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	static := filepath.Join(dir, "staticfiles")
	if err := os.MkdirAll(static, 0o755); err != nil {
		t.Fatal(err)
	}
	site := func(app string) Site {
		return Site{App: app, Release: "r1", Hosts: []string{app + ".localhost"}, Port: l.Addr().(*net.TCPAddr).Port, StaticDir: static}
	}
	if err := n.WriteSite(ctx, site("first")); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitServing(ctx, "first.localhost", "r1", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	old := workerPids(n.masterPid())
	held := make(chan string, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.Listen+"/slow", nil)
		req.Host = "first.localhost"
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			held <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		held <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	<-arrived // an old worker now holds the request

	if err := n.WriteSite(ctx, site("second")); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitRelease(ctx, "second.localhost", "r1", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	live := workerPids(n.masterPid())
	stillThere := 0
	for pid := range old {
		if live[pid] {
			stillThere++
		}
	}
	if stillThere == 0 {
		t.Fatal("the worker holding the request exited before WaitRelease returned: the test shows nothing")
	}
	select {
	case r := <-held:
		t.Fatalf("the held request ended before it was released: %s", r)
	default:
	}
	close(release)
	if r := <-held; r != "200 ok" {
		t.Errorf("the request held across the reload: %q, want 200 ok", r)
	}
}
