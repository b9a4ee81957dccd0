package gitserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"path/filepath"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/sqlite"
)

// BenchmarkCommandNewConnection: one `apps` command on a new SSH connection,
// client and server in this process (go test -bench . -cpuprofile to see
// where a command's CPU goes; bench/ssh.sh measures it end to end).
func BenchmarkCommandNewConnection(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "c.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := gossh.NewSignerFromKey(hostPriv)
	_, userPriv, _ := ed25519.GenerateKey(rand.Reader)
	userKey, _ := gossh.NewSignerFromKey(userPriv)
	if _, _, err := db.AddUserKey(ctx, "boss", true, gossh.FingerprintSHA256(userKey.PublicKey()),
		string(gossh.MarshalAuthorizedKey(userKey.PublicKey()))); err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{
		Addr: l.Addr().String(), HostKey: hostKey, ReposDir: filepath.Join(b.TempDir(), "repos"), Domain: "localhost",
		HTTPAddr: "127.0.0.1:8080", Host: "local", Ports: provision.PortRange{From: 41000, To: 41999},
		Limits: Limits{},
	}, db, testQueue(b))
	go func() { _ = s.Serve(l) }()
	defer s.Shutdown(ctx)
	cfg := &gossh.ClientConfig{User: "git", Auth: []gossh.AuthMethod{gossh.PublicKeys(userKey)},
		HostKeyCallback: gossh.FixedHostKey(hostKey.PublicKey())}
	b.ResetTimer()
	for b.Loop() {
		c, err := gossh.Dial("tcp", l.Addr().String(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		sess, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		if out, err := sess.CombinedOutput("apps"); err != nil {
			b.Fatalf("apps: %v %s", err, out)
		}
		c.Close()
	}
}
