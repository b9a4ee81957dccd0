package gitserver

import (
	"testing"

	gossh "golang.org/x/crypto/ssh"
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
