package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// strictLoad sends GET /health to an app through a front nginx with clients
// that never retry: some open a new connection per request, one keeps a
// connection alive and counts a reset or an unannounced close as a failure
// (it redials only after a response that said Connection: close).
type strictLoad struct {
	ok    atomic.Int64
	mu    sync.Mutex
	fails []string
	stop  context.CancelFunc
	done  sync.WaitGroup
}

func startStrictLoad(addr, app string, fresh int) *strictLoad {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	l := &strictLoad{stop: cancel}
	req := "GET /health HTTP/1.1\r\nHost: " + app + ".localhost\r\n"
	// roundTrip sends one request on c and reads its response.
	roundTrip := func(c net.Conn, br *bufio.Reader, closeConn bool) (*http.Response, error) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		r := req
		if closeConn {
			r += "Connection: close\r\n"
		}
		if _, err := io.WriteString(c, r+"\r\n"); err != nil {
			return nil, err
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return resp, nil
	}
	for range fresh {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			for ctx.Err() == nil {
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					l.fail("new connection: " + err.Error())
					continue
				}
				_, err = roundTrip(c, bufio.NewReader(c), true)
				c.Close()
				if err != nil {
					l.fail("new connection: " + err.Error())
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	l.done.Add(1)
	go func() {
		defer l.done.Done()
		var c net.Conn
		var br *bufio.Reader
		defer func() {
			if c != nil {
				c.Close()
			}
		}()
		for ctx.Err() == nil {
			if c == nil {
				var err error
				if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
					l.fail("keep-alive dial: " + err.Error())
					c = nil
					continue
				}
				br = bufio.NewReader(c)
			}
			resp, err := roundTrip(c, br, false)
			if err != nil {
				l.fail("keep-alive: " + err.Error())
				c.Close()
				c = nil
				continue
			}
			l.ok.Add(1)
			if resp.Close { // announced: not a failure
				c.Close()
				c = nil
			}
		}
	}()
	return l
}

func (l *strictLoad) fail(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails = append(l.fails, time.Now().Format("15:04:05.000")+" "+msg)
}

// served waits until n more requests have succeeded.
func (l *strictLoad) served(t *testing.T, n int64) {
	t.Helper()
	want := l.ok.Load() + n
	waitFor(t, fmt.Sprintf("%d more requests served", n), func() bool { return l.ok.Load() >= want })
}

func (l *strictLoad) finish(t *testing.T, what string) {
	t.Helper()
	l.stop()
	l.done.Wait()
	t.Logf("%s: %d requests served, %d failed", what, l.ok.Load(), len(l.fails))
	if len(l.fails) > 0 {
		t.Errorf("%s: %d requests failed; first ones:\n%s", what, len(l.fails), strings.Join(l.fails[:min(len(l.fails), 10)], "\n"))
	}
}

// pidIn reads a pid file.
func pidIn(t *testing.T, path string) int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}

// TestAppsOutliveConductor: SIGKILL, SIGTERM and an upgrade of `conductor
// serve` and SIGKILL of a `conductor worker` leave nginx, circusd and the apps
// serving (0 failed requests from clients that never retry), and the next
// start adopts the same circusd and nginx; a push works after each.
func TestAppsOutliveConductor(t *testing.T) {
	natsAddr := freeAddr(t)
	in := StartInstance(t, "--nats-addr", natsAddr)
	work := in.WorkTree("hello")
	if r := in.Push(work, "outlive", "main"); r.Code != 0 {
		t.Fatalf("push: %s", r)
	}
	circusPid := filepath.Join(in.Data, "circus", "circusd.pid")
	nginxPid := filepath.Join(in.Data, "nginx", "nginx.pid")
	circusd, nginx := pidIn(t, circusPid), pidIn(t, nginxPid)

	// An upgrade: serve stops and a new binary starts (a copy of this one
	// with bytes appended: another file, another content).
	upgraded := filepath.Join(in.Dir, "conductor-upgraded")
	self, err := os.ReadFile(conductorBin)
	if err != nil {
		t.Fatal(err)
	}
	newBin := append(self, []byte("\nupgraded\n")...)
	if err := os.WriteFile(upgraded, newBin, 0o755); err != nil {
		t.Fatal(err)
	}
	upgrade := func() { in.Stop(); in.Bin = upgraded }

	for _, stop := range []struct {
		name string
		do   func()
	}{{"SIGKILL", in.Kill}, {"SIGTERM", in.Stop}, {"upgrade", upgrade}} {
		l := startStrictLoad(in.HTTPAddr, "outlive", 3)
		l.served(t, 50)
		mark := len(in.logs.String())
		stop.do()
		l.served(t, 200) // served while conductor is down
		in.Start()
		l.served(t, 200)
		l.finish(t, "serve "+stop.name+" and restart")
		if got := pidIn(t, circusPid); got != circusd {
			t.Errorf("after %s: circusd is pid %d, was %d: not adopted", stop.name, got, circusd)
		}
		if got := pidIn(t, nginxPid); got != nginx {
			t.Errorf("after %s: nginx is pid %d, was %d: not adopted", stop.name, got, nginx)
		}
		if log := in.logs.String()[mark:]; !strings.Contains(log, "adopted the running circusd and nginx") {
			t.Errorf("after %s: serve's log does not say it adopted circusd and nginx:\n%s", stop.name, log)
		}
		if stop.name == "upgrade" {
			// circus starts new app processes from the new binary.
			if got, err := os.ReadFile(filepath.Join(in.Data, "bin", "conductor")); err != nil || !bytes.Equal(got, newBin) {
				t.Errorf("after the upgrade, data/bin/conductor is not the new binary (%v)", err)
			}
		}
		version := "after-" + strings.ToLower(stop.name)
		setVersion(t, work, version)
		in.Commit(work, version)
		if r := in.Push(work, "outlive", "main"); r.Code != 0 {
			t.Fatalf("push after %s: %s", stop.name, r)
		}
		if _, body, _ := in.Get("outlive", "/"); !strings.Contains(body, "Hello from Conductor "+version+"<") {
			t.Errorf("after the push following %s: GET / = %q", stop.name, body)
		}
	}

	// A worker: SIGKILL and restart.
	w := in.StartWorker(t, "nats://"+natsAddr, filepath.Join(in.Data, "nats.token"), filepath.Join(in.Data, "nats-tls", "ca.pem"), "w1")
	in.waitHosts(t, "local", "w1")
	if r := in.SSH(in.AdminKey, "apps:create remote --host w1"); r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}
	remote := in.WorkTree("hello")
	if r := in.Push(remote, "remote", "main"); r.Code != 0 {
		t.Fatalf("push to w1: %s", r)
	}
	wCircus := pidIn(t, filepath.Join(w.Data, "circus", "circusd.pid"))
	l := startStrictLoad(w.HTTPAddr, "remote", 3)
	l.served(t, 50)
	w.Kill()
	l.served(t, 200)
	mark := len(w.out.String())
	w.Start()
	waitFor(t, "the worker to serve again", func() bool {
		return strings.Contains(w.out.String()[mark:], "worker is serving")
	})
	l.served(t, 200)
	l.finish(t, "worker SIGKILL and restart")
	if got := pidIn(t, filepath.Join(w.Data, "circus", "circusd.pid")); got != wCircus {
		t.Errorf("the worker's circusd is pid %d, was %d: not adopted", got, wCircus)
	}
	setVersion(t, remote, "v2")
	in.Commit(remote, "v2")
	if r := in.Push(remote, "remote", "main"); r.Code != 0 {
		t.Fatalf("push to w1 after its worker restarted: %s", r)
	}
	if _, body := w.Get("remote", "/"); !strings.Contains(body, "Hello from Conductor v2<") {
		t.Errorf("remote after the push: %q", body)
	}

	// stop-all stops what serve leaves running.
	in.Stop()
	if out, err := exec.Command(conductorBin, "stop-all", "--data", in.Data).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "stopped circusd") || !strings.Contains(string(out), "stopped nginx") {
		t.Fatalf("stop-all: %v\n%s", err, out)
	}
	if code, _, _ := in.Get("outlive", "/"); code != 0 {
		t.Errorf("nginx still answers after stop-all (%d)", code)
	}
	in.Start()
	waitFor(t, "the app served after stop-all and a start", func() bool {
		_, body, _ := in.Get("outlive", "/")
		return strings.Contains(body, "Hello from Conductor after-upgrade<")
	})
}
