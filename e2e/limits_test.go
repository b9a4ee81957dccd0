package e2e

import (
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// holdSession starts a silent, never-ending command (`logs <app> -f` on an
// app with no logs) on its own connection and waits until the server has
// admitted it (its log line). Closing the client ends it.
func (in *Instance) holdSession(key, app string, admitted int) *gossh.Client {
	in.t.Helper()
	client := in.dialSSH(key)
	sess, err := client.NewSession()
	if err != nil {
		in.t.Fatal(err)
	}
	if err := sess.Start("logs " + app + " -f"); err != nil {
		in.t.Fatal(err)
	}
	waitFor(in.t, "the held session to be admitted", func() bool {
		return strings.Count(in.logs.String(), "command=\"logs "+app+" -f\"") >= admitted
	})
	return client
}

// TestSSHLimits: session caps per key and overall, the handshake timeout,
// many idle connections not locking out a real client, and the push size
// cap.
func TestSSHLimits(t *testing.T) {
	t.Parallel()
	in := StartInstance(t, "--ssh-max-sessions", "3", "--ssh-max-sessions-per-key", "2",
		"--ssh-handshake-timeout", "2s", "--max-push-size", "300000")
	admin := in.AdminKey
	dev := in.NewKey("dev")
	must(t, "keys:add dev", in.SSHIn(admin, "keys:add dev", readFile(t, dev+".pub")))
	must(t, "apps:create hold", in.SSH(admin, "apps:create hold"))
	must(t, "access:grant", in.SSH(admin, "access:grant hold dev"))

	t.Run("sessions", func(t *testing.T) {
		a1 := in.holdSession(admin, "hold", 1)
		defer a1.Close()
		a2 := in.holdSession(admin, "hold", 2)
		defer a2.Close()
		start := time.Now()
		refused(t, "third admin session", in.SSH(admin, "whoami"), "too many sessions for this key (limit 2)")
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("the refusal took %s: it should be immediate, not a wait", took)
		}
		// Another key still has room under the total of 3, then the total is full.
		d1 := in.holdSession(dev, "hold", 3)
		defer d1.Close()
		refused(t, "fourth session", in.SSH(dev, "whoami"), "too many sessions on this server (limit 3)")

		// A session that ends gives its slot back.
		a1.Close()
		waitFor(t, "a slot to free up", func() bool { return in.SSH(admin, "whoami").Code == 0 })
	})

	t.Run("handshake timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", in.SSHAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		// The server sends its version line, then must drop us.
		_, err = io.ReadAll(c)
		took := time.Since(start)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("a silent client was still connected after %s", took)
		}
		if took < 1500*time.Millisecond || took > 8*time.Second {
			t.Errorf("a silent client was dropped after %s, want about 2s", took)
		}
	})

	t.Run("slow loris", func(t *testing.T) {
		var idle []net.Conn
		defer func() {
			for _, c := range idle {
				c.Close()
			}
		}()
		for range 200 {
			c, err := net.Dial("tcp", in.SSHAddr)
			if err != nil {
				t.Fatalf("idle connection %d: %v", len(idle), err)
			}
			idle = append(idle, c)
		}
		start := time.Now()
		r := in.SSH(admin, "whoami")
		if r.Code != 0 || !strings.Contains(r.Stdout, "admin") {
			t.Fatalf("whoami with 200 idle connections open: %s", r)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("whoami took %s with 200 idle connections open", took)
		}
		// And the server drops them all once their handshake time is up.
		deadline := time.Now().Add(15 * time.Second)
		for i, c := range idle {
			_ = c.SetReadDeadline(deadline)
			if _, err := io.Copy(io.Discard, c); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("idle connection %d still open after the handshake timeout", i)
				}
			}
		}
	})

	t.Run("push size", func(t *testing.T) {
		work := in.WorkTree("hello")
		blob := make([]byte, 1<<20) // random: git cannot compress it under the cap
		if _, err := rand.Read(blob); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, "blob.bin"), blob, 0o644); err != nil {
			t.Fatal(err)
		}
		in.Commit(work, "big")
		r := in.Push(work, "big", "main")
		if r.Code == 0 || !strings.Contains(r.Stderr, "pack exceeds maximum allowed size") {
			t.Fatalf("a 1 MiB push under a 300000-byte cap: %s", r)
		}
		if out := must(t, "deploys big", in.SSH(admin, "deploys big --json")); strings.TrimSpace(out) != "[]" {
			t.Errorf("the refused push deployed something: %s", out)
		}
		repo := filepath.Join(in.Data, "repos", "big.git")
		if out, err := exec.Command("git", "--git-dir", repo, "for-each-ref").CombinedOutput(); err != nil || len(out) != 0 {
			t.Errorf("the refused push stored refs: %v %s", err, out)
		}
		// A push under the cap (a small branch, which is stored, not
		// deployed) goes through: the cap is not refusing everything.
		small := filepath.Join(in.Dir, "small")
		in.mustGit(in.Dir, "init", "-q", "-b", "notes", small)
		if err := os.WriteFile(filepath.Join(small, "README"), []byte("small\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		in.Commit(small, "small")
		if r := in.Push(small, "big", "notes"); r.Code != 0 {
			t.Fatalf("a small push was refused: %s", r)
		}
	})
}

// TestSSHLimitsTimeouts: an idle connection is dropped after the idle
// timeout; a busy one lives past it but not past the max timeout.
func TestSSHLimitsTimeouts(t *testing.T) {
	t.Parallel()
	in := StartInstance(t, "--ssh-idle-timeout", "3s", "--ssh-max-timeout", "8s")
	must(t, "apps:create hold-timeouts", in.SSH(in.AdminKey, "apps:create hold-timeouts"))

	held := func(keepalive bool) time.Duration {
		start := time.Now()
		client := in.holdSession(in.AdminKey, "hold-timeouts", 0)
		defer client.Close()
		done := make(chan struct{})
		go func() { _ = client.Wait(); close(done) }()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		// One timer for the whole wait: a time.After in the select would
		// start again on every tick and never fire.
		timeout := time.NewTimer(30 * time.Second)
		defer timeout.Stop()
		for {
			select {
			case <-done:
				return time.Since(start)
			case <-tick.C:
				if keepalive {
					_, _, _ = client.SendRequest("keepalive@openssh.com", true, nil)
				}
			case <-timeout.C:
				t.Fatal("connection still open after 30s")
			}
		}
	}
	if took := held(false); took < 2*time.Second || took > 7*time.Second {
		t.Errorf("a silent connection was dropped after %s, want about 3s (idle timeout)", took)
	}
	if took := held(true); took < 6*time.Second || took > 14*time.Second {
		t.Errorf("a busy connection was dropped after %s, want about 8s (max timeout)", took)
	}
}
