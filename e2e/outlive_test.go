package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

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
	t.Parallel()
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
		l := startLoadAt(in.HTTPAddr, "outlive", 4, 10*time.Minute, 1<<62)
		l.served(t, 50)
		mark := len(in.logs.String())
		stop.do()
		l.served(t, 200) // served while conductor is down
		in.Start()
		l.served(t, 200)
		l.check(t, "serve "+stop.name+" and restart", false)
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
	if r := in.SSH(in.AdminKey, "apps:create remote-outlive --host w1"); r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}
	remote := in.WorkTree("hello")
	if r := in.Push(remote, "remote-outlive", "main"); r.Code != 0 {
		t.Fatalf("push to w1: %s", r)
	}
	wCircus := pidIn(t, filepath.Join(w.Data, "circus", "circusd.pid"))
	l := startLoadAt(w.HTTPAddr, "remote-outlive", 4, 10*time.Minute, 1<<62)
	l.served(t, 50)
	w.Kill()
	l.served(t, 200)
	mark := len(w.out.String())
	w.Start()
	waitFor(t, "the worker to serve again", func() bool {
		return strings.Contains(w.out.String()[mark:], "worker is serving")
	})
	l.served(t, 200)
	l.check(t, "worker SIGKILL and restart", false)
	if got := pidIn(t, filepath.Join(w.Data, "circus", "circusd.pid")); got != wCircus {
		t.Errorf("the worker's circusd is pid %d, was %d: not adopted", got, wCircus)
	}
	setVersion(t, remote, "v2")
	in.Commit(remote, "v2")
	if r := in.Push(remote, "remote-outlive", "main"); r.Code != 0 {
		t.Fatalf("push to w1 after its worker restarted: %s", r)
	}
	if _, body := w.Get("remote-outlive", "/"); !strings.Contains(body, "Hello from Conductor v2<") {
		t.Errorf("remote-outlive after the push: %q", body)
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
