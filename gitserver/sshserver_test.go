package gitserver

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/sqlite"
)

// sshTestServer is a real Server on a loopback port over a fresh SQLite
// state, for tests and benchmarks that talk to it with Go's SSH client.
type sshTestServer struct {
	tb      testing.TB
	db      *sqlite.DB
	addr    string
	hostKey gossh.Signer
}

// startSSHTestServer starts a server whose Config opts may change (its
// Limits, say) before it is built.
func startSSHTestServer(tb testing.TB, opts ...func(*Config)) *sshTestServer {
	return startSSHProbeServer(tb, nil, opts...)
}

// startSSHProbeServer is startSSHTestServer with probe, when not nil, in
// place of the commands, behind the same middlewares.
func startSSHProbeServer(tb testing.TB, probe ssh.Handler, opts ...func(*Config)) *sshTestServer {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "c.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ := gossh.NewSignerFromKey(hostPriv)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	cfg := Config{
		Addr: l.Addr().String(), HostKey: hostKey, ReposDir: filepath.Join(tb.TempDir(), "repos"), Domain: "localhost",
		HTTPAddr: "127.0.0.1:8080", Host: "local", Ports: provision.PortRange{From: 41000, To: 41999},
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	s := New(cfg, db, testQueue(tb))
	if probe != nil {
		s.ssh.Handler = s.middlewares(probe)
	}
	go func() { _ = s.Serve(l) }()
	tb.Cleanup(func() {
		// A test that failed may leave a session hung: do not wait for it.
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if s.Shutdown(ctx) != nil {
			_ = s.ssh.Close()
		}
	})
	return &sshTestServer{tb: tb, db: db, addr: l.Addr().String(), hostKey: hostKey}
}

// addKey registers a new ed25519 key for the user (created if needed).
func (ts *sshTestServer) addKey(name string, admin bool) gossh.Signer {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	k, _ := gossh.NewSignerFromKey(priv)
	if _, _, err := ts.db.AddUserKey(context.Background(), name, admin, gossh.FingerprintSHA256(k.PublicKey()),
		string(gossh.MarshalAuthorizedKey(k.PublicKey()))); err != nil {
		ts.tb.Fatal(err)
	}
	return k
}

// clientConfig logs in as git with k and trusts only the server's host key.
func (ts *sshTestServer) clientConfig(k gossh.Signer) *gossh.ClientConfig {
	return &gossh.ClientConfig{User: "git", Auth: []gossh.AuthMethod{gossh.PublicKeys(k)},
		HostKeyCallback: gossh.FixedHostKey(ts.hostKey.PublicKey())}
}
