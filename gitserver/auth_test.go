package gitserver

import (
	"context"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// TestRemovedKeyOpensNoNewSession: every session looks its key up again
// (through the store's key cache, which a removal empties), so a key
// removed while a connection is open opens no new session on it, and no new
// connection.
func TestRemovedKeyOpensNoNewSession(t *testing.T) {
	ctx := context.Background()
	ts := startSSHTestServer(t)
	boss, dev := ts.addKey("boss", true), ts.addKey("dev", false)
	dial := func(k gossh.Signer) *gossh.Client {
		c, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(k))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	run := func(c *gossh.Client, cmd string) (string, error) {
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		out, err := sess.CombinedOutput(cmd)
		return string(out), err
	}

	devConn := dial(dev)
	defer devConn.Close()
	if out, err := run(devConn, "whoami"); err != nil || !strings.Contains(out, "dev") {
		t.Fatalf("dev's first session: %v %q", err, out)
	}
	// Both sessions of boss's connection run as boss, the second one looked
	// up afresh.
	bossConn := dial(boss)
	defer bossConn.Close()
	for i := range 2 {
		if out, err := run(bossConn, "whoami"); err != nil || !strings.Contains(out, "boss") || !strings.Contains(out, "admin") {
			t.Fatalf("boss's session %d: %v %q", i+1, err, out)
		}
	}
	if _, err := ts.db.RemoveKey(ctx, gossh.FingerprintSHA256(dev.PublicKey())); err != nil {
		t.Fatal(err)
	}
	out, err := run(devConn, "whoami")
	if err == nil || !strings.Contains(out, "unknown key") {
		t.Fatalf("a new session after the key was removed: err = %v, output %q; want refused with \"unknown key\"", err, out)
	}
	if _, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(dev)); err == nil {
		t.Fatal("a new connection with the removed key was accepted")
	}
}
