package nginx

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRouteSwitchKeepsConnections: a real nginx serves an app's release;
// WriteSite of the next release (another port and static dir, same hosts)
// switches it without a reload: a kept-alive client connection carries
// on and its next request reaches the new release, app and static files,
// and nginx's workers are the same processes.
func TestRouteSwitchKeepsConnections(t *testing.T) {
	n, dir, ctx := startNginx(t)

	servers := map[string]*http.Server{}
	release := func(name string) Site {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if len(body) > 0 {
				fmt.Fprintf(w, "app %s got %q", name, body)
				return
			}
			fmt.Fprintf(w, "app %s", name)
		})}
		servers[name] = srv
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		static := filepath.Join(dir, name, "staticfiles")
		if err := os.MkdirAll(static, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(static, "site.css"), []byte("css "+name), 0o644); err != nil {
			t.Fatal(err)
		}
		return Site{App: "hello", Release: name, Hosts: []string{"hello.localhost"}, Port: l.Addr().(*net.TCPAddr).Port, StaticDir: static}
	}
	r1, r2 := release("r1"), release("r2")

	if err := n.WriteSite(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitServing(ctx, "hello.localhost", "r1", 15*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(n.Dir, "error.log"))
		t.Fatalf("%v\n%s", err, log)
	}
	workers := workerPids(n.masterPid())
	var hits atomic.Int64

	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (body, rel string, reused bool) {
		t.Helper()
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, "http://"+n.Listen+path, nil)
		req.Host = "hello.localhost"
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b), resp.Header.Get("X-Conductor-Release"), reused
	}
	if body, rel, _ := get("/"); body != "app r1" || rel != "r1" {
		t.Fatalf("before the switch: %q from release %q", body, rel)
	}

	if err := n.WriteSite(ctx, r2); err != nil {
		t.Fatal(err)
	}
	if body, rel, reused := get("/"); body != "app r2" || rel != "r2" || !reused {
		t.Errorf("after the switch: %q from release %q on a kept-alive connection: %v; want app r2 on the same connection", body, rel, reused)
	}
	if body, _, reused := get("/static/site.css"); body != "css r2" || !reused {
		t.Errorf("static file after the switch: %q (kept-alive connection: %v), want r2's", body, reused)
	}
	if err := n.WaitServing(ctx, "hello.localhost", "r2", 5*time.Second); err != nil {
		t.Error(err)
	}
	if after := workerPids(n.masterPid()); fmt.Sprint(after) != fmt.Sprint(workers) {
		t.Errorf("nginx's workers changed from %v to %v: the switch reloaded nginx", workers, after)
	}

	// An upload whose body is still arriving when the route switches and
	// the old release stops: nginx read the route before the body (its
	// 100 Continue says so), finds the old port closed, and sends the
	// request, never sent before, to the route as it is now.
	r3 := release("r3")
	conn, err := net.Dial("tcp", n.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(conn, "POST /upload HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
	rd := bufio.NewReader(conn)
	if line, err := rd.ReadString('\n'); err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("upload: %q %v, want 100 Continue", line, err)
	}
	if err := n.WriteSite(ctx, r3); err != nil {
		t.Fatal(err)
	}
	servers["r2"].Close() // the old release stops: its port refuses
	fmt.Fprint(conn, "hello")
	all, _ := io.ReadAll(rd)
	conn.Close() // else nginx's lingering close holds its worker 5 s
	if !strings.Contains(string(all), "200 OK") || !strings.Contains(string(all), `app r3 got "hello"`) {
		t.Errorf("an upload across the switch got:\n%s\nwant 200 from r3 with the body", all)
	}

	// A request that was sent and then failed is never sent again.
	r4 := release("r4")
	servers["r4"].Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		panic(http.ErrAbortHandler) // the connection drops without an answer
	})
	if err := n.WriteSite(ctx, r4); err != nil {
		t.Fatal(err)
	}
	req0, _ := http.NewRequest(http.MethodPost, "http://"+n.Listen+"/pay", strings.NewReader("once"))
	req0.Host = "hello.localhost"
	resp0, err := client.Do(req0)
	if err != nil {
		t.Fatal(err)
	}
	resp0.Body.Close()
	if resp0.StatusCode != http.StatusBadGateway || hits.Load() != 1 {
		t.Errorf("a POST the app dropped: %d after %d tries, want 502 after exactly 1", resp0.StatusCode, hits.Load())
	}
	r3.Hosts = r4.Hosts

	// A change of the site itself (a new host) reloads nginx, and the
	// wait holds until the new workers serve it.
	r3.Hosts = append(r3.Hosts, "www.hello.localhost")
	if err := n.WriteSite(ctx, r3); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitServing(ctx, "www.hello.localhost", "r3", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+n.Listen+"/", nil)
	req.Host = "www.hello.localhost"
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "app r3") {
		t.Errorf("the new host answers %q, want app r3", b)
	}

	// Without its route a site answers 502, never another app.
	if err := os.Remove(n.RoutePath("hello")); err != nil {
		t.Fatal(err)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://"+n.Listen+"/", nil)
	req.Host = "hello.localhost"
	if resp, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("a site without its route answers %d, want 502", resp.StatusCode)
	}
}

func TestServedRelease(t *testing.T) {
	n := &Nginx{Dir: t.TempDir()}
	if err := os.MkdirAll(n.sitesDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := n.writeScript(); err != nil {
		t.Fatal(err)
	}
	if got := n.ServedRelease("shop"); got != "" {
		t.Errorf("no site: %q", got)
	}
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(n.SitePath("shop"), "# Generated by Conductor for app shop, release r0. Do not edit.\nserver { proxy_pass http://127.0.0.1:9000; }\n")
	if got := n.ServedRelease("shop"); got != "?" {
		t.Errorf("a site of an older Conductor (no route): %q, want ?", got)
	}
	conf, err := n.siteConf(Site{App: "shop", Release: "r1", Hosts: []string{"shop.localhost"}, Port: 9000, StaticDir: "/s"})
	if err != nil {
		t.Fatal(err)
	}
	write(n.SitePath("shop"), string(conf))
	if got := n.ServedRelease("shop"); got != "?" {
		t.Errorf("a site without its route file: %q, want ?", got)
	}
	write(n.RoutePath("shop"), `{"release":"20261202T105025-d2c3aa8d","upstream":"127.0.0.1:9000","static":"/s/"}`)
	if got := n.ServedRelease("shop"); got != "20261202T105025-d2c3aa8d" {
		t.Errorf("ServedRelease = %q", got)
	}
	write(n.RoutePath("shop"), `{"release":`)
	if got := n.ServedRelease("shop"); got != "?" {
		t.Errorf("a broken route: %q, want ?", got)
	}
}
