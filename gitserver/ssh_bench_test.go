package gitserver

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor"
)

// BenchmarkCommandNewConnection: one `apps` command on a new SSH connection,
// client and server in this process (go test -bench . -cpuprofile to see
// where a command's CPU goes; bench/ssh.sh measures it end to end).
func BenchmarkCommandNewConnection(b *testing.B) {
	ts := startSSHTestServer(b)
	cfg := ts.clientConfig(ts.addKey("boss", true))
	b.ResetTimer()
	for b.Loop() {
		c, err := gossh.Dial("tcp", ts.addr, cfg)
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

// BenchmarkCommandOutput: `apps` listing 100 apps, each run in a new
// session on one established connection, so what is measured is the
// command and its output (a line per app) rather than the key exchange.
func BenchmarkCommandOutput(b *testing.B) {
	ts := startSSHTestServer(b)
	ctx := context.Background()
	for i := range 100 {
		app := &conductor.App{Name: fmt.Sprintf("app-%d", i), DBKind: conductor.DBSQLite, Ports: [2]int{41000 + 2*i, 41001 + 2*i}, SecretKey: "k"}
		if err := ts.db.CreateApp(ctx, app); err != nil {
			b.Fatal(err)
		}
	}
	c, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(ts.addKey("boss", true)))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for b.Loop() {
		sess, err := c.NewSession()
		if err != nil {
			b.Fatal(err)
		}
		out, err := sess.CombinedOutput("apps")
		if err != nil || bytes.Count(out, []byte("\n")) != 100 {
			b.Fatalf("apps: %v, %d lines", err, bytes.Count(out, []byte("\n")))
		}
	}
}
