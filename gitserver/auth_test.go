package gitserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/sqlite"
)

// TestRemovedKeyOpensNoNewSession: every session looks its key up again
// (through the store's key cache, which a removal empties), so a key
// removed while a connection is open opens no new session on it, and no new
// connection.
func TestRemovedKeyOpensNoNewSession(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := gossh.NewSignerFromKey(hostPriv)
	signer := func(name string, admin bool) gossh.Signer {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		k, _ := gossh.NewSignerFromKey(priv)
		if _, _, err := db.AddUserKey(ctx, name, admin, gossh.FingerprintSHA256(k.PublicKey()),
			string(gossh.MarshalAuthorizedKey(k.PublicKey()))); err != nil {
			t.Fatal(err)
		}
		return k
	}
	boss, dev := signer("boss", true), signer("dev", false)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{
		Addr: l.Addr().String(), HostKey: hostKey, ReposDir: filepath.Join(t.TempDir(), "repos"), Domain: "localhost",
		HTTPAddr: "127.0.0.1:8080", Host: "local", Ports: provision.PortRange{From: 41000, To: 41999},
	}, db, testQueue(t))
	go func() { _ = s.Serve(l) }()
	defer s.Shutdown(ctx)

	dial := func(k gossh.Signer) *gossh.Client {
		c, err := gossh.Dial("tcp", l.Addr().String(), &gossh.ClientConfig{User: "git",
			Auth: []gossh.AuthMethod{gossh.PublicKeys(k)}, HostKeyCallback: gossh.FixedHostKey(hostKey.PublicKey())})
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
	if _, err := db.RemoveKey(ctx, gossh.FingerprintSHA256(dev.PublicKey())); err != nil {
		t.Fatal(err)
	}
	out, err := run(devConn, "whoami")
	if err == nil || !strings.Contains(out, "unknown key") {
		t.Fatalf("a new session after the key was removed: err = %v, output %q; want refused with \"unknown key\"", err, out)
	}
	if _, err := gossh.Dial("tcp", l.Addr().String(), &gossh.ClientConfig{User: "git",
		Auth: []gossh.AuthMethod{gossh.PublicKeys(dev)}, HostKeyCallback: gossh.FixedHostKey(hostKey.PublicKey())}); err == nil {
		t.Fatal("a new connection with the removed key was accepted")
	}
}
