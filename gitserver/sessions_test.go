package gitserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor"
)

// Regression tests for the SSH session hardening (issue 14, parts 5 and
// 6). Each drives a real server with Go's SSH client, as an attacker
// would, and fails on the code before the fix.

// withLimits sets the server's limits.
func withLimits(l Limits) func(*Config) { return func(c *Config) { c.Limits = l } }

// lockedBuffer is a bytes.Buffer safe for a logger and a test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// captureLog sends the server log (slog's default logger) to a buffer for
// the rest of the test.
func captureLog(t *testing.T) *lockedBuffer {
	buf := &lockedBuffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })
	return buf
}

// within runs f, failing the test if it has not returned after d: the bugs
// these tests replay are hangs.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still blocked after %s", what, d)
	}
}

// eventually polls f for up to 5 s.
func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !f(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
	}
}

func (ts *sshTestServer) dial(k gossh.Signer) *gossh.Client {
	ts.tb.Helper()
	c, err := gossh.Dial("tcp", ts.addr, ts.clientConfig(k))
	if err != nil {
		ts.tb.Fatal(err)
	}
	ts.tb.Cleanup(func() { c.Close() })
	return c
}

// runOn runs a command in a new session of c; the error is the session's.
func runOn(t *testing.T, c *gossh.Client, cmd string) (string, error) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer sess.Close()
	var out []byte
	within(t, 10*time.Second, cmd, func() { out, err = sess.CombinedOutput(cmd) })
	return string(out), err
}

// TestWindowChangeBeforeExec: a pty-req and window changes before exec
// used to block gliderlabs' request loop for good (the session never ran,
// and never freed its goroutines or its slot). Each round must run its
// command, and give back the key's only slot.
func TestWindowChangeBeforeExec(t *testing.T) {
	ts := startSSHTestServer(t, withLimits(Limits{MaxSessionsPerKey: 1}))
	c := ts.dial(ts.addKey("boss", true))
	for round := range 3 {
		var out []byte
		var err error
		eventually(t, "the previous session's slot", func() bool {
			sess, e := c.NewSession()
			if e != nil {
				t.Fatal(e)
			}
			defer sess.Close()
			if e := sess.RequestPty("xterm", 40, 80, gossh.TerminalModes{}); e != nil {
				t.Fatal(e)
			}
			for i := range 50 {
				if e := sess.WindowChange(41+i, 81+i); e != nil {
					t.Fatal(e)
				}
			}
			within(t, 5*time.Second, fmt.Sprintf("round %d: whoami after pty-req and window-change", round),
				func() { out, err = sess.CombinedOutput("whoami") })
			return !strings.Contains(string(out), "too many sessions")
		})
		if err != nil || !strings.Contains(string(out), "boss") {
			t.Fatalf("round %d: whoami: %v %q", round, err, out)
		}
	}
}

// TestPtyWindowChangesReachCommand: run still gets the terminal's size
// changes, now that they bypass gliderlabs: the latest one, however many
// came while it was not reading.
func TestPtyWindowChangesReachCommand(t *testing.T) {
	probe := func(sess ssh.Session) {
		pty, windows, ok := withWindows(sess).Pty()
		if !ok {
			fmt.Fprintln(sess, "no pty")
			return
		}
		fmt.Fprintf(sess, "pty %dx%d\n", pty.Window.Width, pty.Window.Height)
		for w := range windows {
			fmt.Fprintf(sess, "window %dx%d\n", w.Width, w.Height)
			if w.Width == 100 {
				return
			}
		}
	}
	ts := startSSHProbeServer(t, probe)
	c := ts.dial(ts.addKey("boss", true))
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm", 40, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	stdout, _ := sess.StdoutPipe()
	if err := sess.Start("probe"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	var first string
	within(t, 5*time.Second, "the probe's first line", func() { first, _ = r.ReadString('\n') })
	if first != "pty 80x40\r\n" {
		t.Fatalf("probe: %q", first)
	}
	for w := 90; w <= 100; w++ {
		if err := sess.WindowChange(30, w); err != nil {
			t.Fatal(err)
		}
	}
	var rest []byte
	within(t, 5*time.Second, "the probe to see the last size", func() { rest, _ = io.ReadAll(r) })
	if !strings.HasSuffix(string(rest), "window 100x30\r\n") {
		t.Errorf("probe saw %q, want it to end with the last size, 100x30", rest)
	}
}

// TestSessionsCountFromOpen: sessions that have not started a command
// (one with a pty and a window change, one with nothing) hold their slots,
// so a third session of the key is refused, with the reason.
func TestSessionsCountFromOpen(t *testing.T) {
	ts := startSSHTestServer(t, withLimits(Limits{MaxSessionsPerKey: 2}))
	k := ts.addKey("boss", true)
	s1, err := ts.dial(k).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.RequestPty("xterm", 40, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	if err := s1.WindowChange(50, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.dial(k).NewSession(); err != nil {
		t.Fatal(err)
	}
	out, err := runOn(t, ts.dial(k), "whoami")
	var exit *gossh.ExitError
	if !errors.As(err, &exit) || exit.ExitStatus() != 1 || !strings.Contains(out, "error: too many sessions for this key (limit 2)") {
		t.Fatalf("a third session while two wait for their command: %v %q; want it refused", err, out)
	}
	s1.Close()
	eventually(t, "a slot freed by a closed session", func() bool {
		out, err := runOn(t, ts.dial(k), "whoami")
		return err == nil && strings.Contains(out, "boss")
	})
}

// TestCommandOutlivingItsChannelKeepsSlot: a command still running after
// its client closed the channel keeps its slot, so closing channels cannot
// pile up commands past the limit.
func TestCommandOutlivingItsChannelKeepsSlot(t *testing.T) {
	started, finish := make(chan struct{}), make(chan struct{})
	var once sync.Once
	probe := func(sess ssh.Session) {
		once.Do(func() { close(started) })
		<-finish // the channel's end does not end this command
	}
	ts := startSSHProbeServer(t, probe, withLimits(Limits{MaxSessionsPerKey: 1}))
	k := ts.addKey("boss", true)
	sess, err := ts.dial(k).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("probe"); err != nil {
		t.Fatal(err)
	}
	<-started
	sess.Close()
	time.Sleep(100 * time.Millisecond) // for the server to see the close
	out, err := runOn(t, ts.dial(k), "probe")
	if err == nil || !strings.Contains(out, "too many sessions for this key (limit 1)") {
		t.Fatalf("a session while a closed session's command runs: %v %q; want it refused", err, out)
	}
	close(finish)
	eventually(t, "the slot back once the command ended", func() bool {
		sess, err := ts.dial(k).NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer sess.Close()
		var errOut bytes.Buffer
		sess.Stderr = &errOut
		_ = sess.Run("probe")
		return !strings.Contains(errOut.String(), "too many sessions")
	})
}

// TestSessionsPerConnection: one connection holds at most
// MaxSessionsPerConn sessions at once; another connection is not affected,
// and a closed session makes room.
func TestSessionsPerConnection(t *testing.T) {
	ts := startSSHTestServer(t, withLimits(Limits{MaxSessionsPerConn: 3}))
	k := ts.addKey("boss", true)
	c := ts.dial(k)
	var open []*gossh.Session
	for range 3 {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	for range 20 {
		if s, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "too many sessions on this connection (limit 3)") {
			if s != nil {
				s.Close()
			}
			t.Fatalf("a fourth session on one connection: err = %v, want it rejected", err)
		}
	}
	if out, err := runOn(t, ts.dial(k), "whoami"); err != nil || !strings.Contains(out, "boss") {
		t.Fatalf("another connection: %v %q", err, out)
	}
	open[0].Close()
	eventually(t, "room for a session after one closed", func() bool {
		out, err := runOn(t, c, "whoami")
		return err == nil && strings.Contains(out, "boss")
	})
}

// TestSessionMustStartCommand: a session that never names its command is
// closed after the handshake timeout, rather than holding its slot until
// the connection's idle timeout.
func TestSessionMustStartCommand(t *testing.T) {
	ts := startSSHTestServer(t, withLimits(Limits{HandshakeTimeout: time.Second}))
	sess, err := ts.dial(ts.addKey("boss", true)).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	stdout, _ := sess.StdoutPipe()
	if err := sess.RequestPty("xterm", 40, 80, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	within(t, 5*time.Second, "a session without a command", func() { _, _ = io.Copy(io.Discard, stdout) })
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Errorf("closed after %s, before the 1 s timeout", took)
	}
}

// TestSessionRequestsRefused: the session requests no command needs are
// refused, auth-agent-req (which gliderlabs accepts) and a signal asking
// for a reply (which gliderlabs never answers) among them, and the session
// still runs its command afterwards.
func TestSessionRequestsRefused(t *testing.T) {
	ts := startSSHTestServer(t)
	sess, err := ts.dial(ts.addKey("boss", true)).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	env := func(k, v string) []byte { return gossh.Marshal(struct{ K, V string }{k, v}) }
	tests := []struct {
		req     string
		payload []byte
		want    bool
	}{
		{"auth-agent-req@openssh.com", nil, false},
		{"x11-req", gossh.Marshal(struct {
			Single        bool
			Proto, Cookie string
			Screen        uint32
		}{false, "MIT-MAGIC-COOKIE-1", "00", 0}), false},
		{"env", env("LD_PRELOAD", "/tmp/evil.so"), false},
		{"env", env("GIT_PROTOCOL", "version=2"), true},
		{"window-change", gossh.Marshal(struct{ W, H, Wp, Hp uint32 }{80, 24, 0, 0}), false}, // no pty
		{"signal", gossh.Marshal(struct{ Sig string }{"INT"}), false},
		{"break", gossh.Marshal(struct{ Ms uint32 }{100}), false},
		{"subsystem", gossh.Marshal(struct{ Name string }{"sftp"}), false},
		{"keepalive@openssh.com", nil, false},
		{"no-such-request@example.com", nil, false},
	}
	for _, tt := range tests {
		var ok bool
		var err error
		within(t, 5*time.Second, tt.req, func() { ok, err = sess.SendRequest(tt.req, true, tt.payload) })
		if err != nil || ok != tt.want {
			t.Errorf("%s %q: ok = %v (%v), want %v", tt.req, tt.payload, ok, err, tt.want)
		}
	}
	var out []byte
	within(t, 5*time.Second, "whoami after the requests", func() { out, err = sess.CombinedOutput("whoami") })
	if err != nil || !strings.Contains(string(out), "boss") {
		t.Fatalf("whoami: %v %q", err, out)
	}
}

// dialFrom connects to the server from a loopback address of its own
// (Linux answers on all of 127.0.0.0/8), a distinct source for the caps.
func dialFrom(t *testing.T, addr, src string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// greeting reads what the server says first: its version line to an
// admitted connection; a refusal, then the end of the connection, to one
// over a cap.
func greeting(t *testing.T, c net.Conn) (admitted bool, said string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("no greeting: %v", err)
	}
	if line != "SSH-2.0-Conductor\r\n" {
		t.Fatalf("greeting %q", line)
	}
	var rest bytes.Buffer
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = io.Copy(&rest, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		_ = c.SetReadDeadline(time.Time{})
		return true, rest.String() // still open: admitted, waiting for our version
	}
	return false, rest.String()
}

// TestUnauthenticatedConnectionCaps floods the server with connections
// that never authenticate, from loopback addresses of their own: the caps
// per source and overall refuse the excess at once, with the reason in an
// SSH disconnect message and in the log; authenticated connections do not
// count; closed ones give their place back.
func TestUnauthenticatedConnectionCaps(t *testing.T) {
	logs := captureLog(t)
	ts := startSSHTestServer(t, withLimits(Limits{MaxUnauthenticated: 6, MaxUnauthenticatedPerSource: 4, HandshakeTimeout: 30 * time.Second}))
	k := ts.addKey("boss", true)
	const perSource = "too many unauthenticated connections from your address (limit 4)"
	const total = "too many unauthenticated connections on this server (limit 6)"

	var idle []net.Conn
	for range 4 {
		c := dialFrom(t, ts.addr, "127.0.0.1")
		if ok, _ := greeting(t, c); !ok {
			t.Fatalf("connection %d from 127.0.0.1 refused under the cap", len(idle)+1)
		}
		idle = append(idle, c)
	}
	if ok, said := greeting(t, dialFrom(t, ts.addr, "127.0.0.1")); ok || !strings.Contains(said, perSource) {
		t.Fatalf("a fifth connection from 127.0.0.1: admitted %v, said %q; want refused with %q", ok, said, perSource)
	}
	// Go's client (and OpenSSH) shows the reason.
	cfg := ts.clientConfig(k)
	if _, err := gossh.Dial("tcp", ts.addr, cfg); err == nil || !strings.Contains(err.Error(), perSource) {
		t.Fatalf("a client from a full source: err = %v, want the reason", err)
	}
	for range 2 {
		c := dialFrom(t, ts.addr, "127.0.0.2")
		if ok, _ := greeting(t, c); !ok {
			t.Fatal("a connection from 127.0.0.2 refused under the caps")
		}
		idle = append(idle, c)
	}
	if ok, said := greeting(t, dialFrom(t, ts.addr, "127.0.0.3")); ok || !strings.Contains(said, total) {
		t.Fatalf("a seventh connection: admitted %v, said %q; want refused with %q", ok, said, total)
	}
	if !strings.Contains(logs.String(), "ssh connection refused before authentication") {
		t.Errorf("no refusal in the log:\n%s", logs)
	}

	// Closed connections give their places back.
	for _, c := range idle {
		c.Close()
	}
	var clients []*gossh.Client
	eventually(t, "a place for a real client", func() bool {
		c, err := gossh.Dial("tcp", ts.addr, cfg)
		if err == nil {
			clients = append(clients, c)
		}
		return err == nil
	})
	// Authenticated connections do not count: more than the per-source cap
	// stay open, and unauthenticated ones still get in.
	for len(clients) < 6 {
		c, err := gossh.Dial("tcp", ts.addr, cfg)
		if err != nil {
			t.Fatalf("authenticated connection %d: %v", len(clients)+1, err)
		}
		clients = append(clients, c)
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	if out, err := runOn(t, clients[5], "whoami"); err != nil || !strings.Contains(out, "boss") {
		t.Fatalf("whoami on the sixth authenticated connection: %v %q", err, out)
	}

	// A flood from one source: exactly the cap gets in, the rest is
	// refused at once.
	var mu sync.Mutex
	admitted, refused := 0, 0
	var wg sync.WaitGroup
	start := time.Now()
	for range 100 {
		wg.Go(func() {
			ok, _ := greeting(t, dialFrom(t, ts.addr, "127.0.0.4"))
			mu.Lock()
			defer mu.Unlock()
			if ok {
				admitted++
			} else {
				refused++
			}
		})
	}
	wg.Wait()
	if admitted != 4 || refused != 96 {
		t.Errorf("a flood of 100 from one source: %d admitted, %d refused; want 4 and 96", admitted, refused)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the flood took %s to sort out", took)
	}
}

// TestConfigValuesStayOutOfAuditAndLog runs config:set over SSH in every
// spelling that reaches the server, accepted, refused, denied or
// unparseable, and looks for the values in the audit trail and the server
// log.
func TestConfigValuesStayOutOfAuditAndLog(t *testing.T) {
	logs := captureLog(t)
	ctx := context.Background()
	ts := startSSHTestServer(t)
	boss, dev := ts.addKey("boss", true), ts.addKey("dev", false)
	app := &conductor.App{Name: "shop", DBKind: conductor.DBSQLite, Ports: [2]int{41000, 41001}, SecretKey: "k"}
	if err := ts.db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	bc, dc := ts.dial(boss), ts.dial(dev)
	tests := []struct {
		c    *gossh.Client
		cmd  string
		okay bool // the command succeeds
	}{
		{bc, "config:set shop TOKEN=s3cret01", true},
		{bc, "config:set --no-restart shop 'A=s3cret02 and more' B=s3cret03", true},
		{bc, `'config:set' shop "C=s3cret04"`, true},
		{bc, `config:set shop D=s3cret05 s3cret06`, false}, // a value split on an unquoted space
		{bc, "config:set shop s3cret07", false},            // a value without its key
		{bc, "config:set shop 1BAD=s3cret08", false},
		{bc, "config:set shop 'E=s3cret09", false}, // unparseable
		{bc, "config:set --bogus shop F=s3cret10", false},
		{bc, "--foo config:set shop G=s3cret11", false},
		{bc, "-- config:set shop H=s3cret12", true}, // help
		{bc, "CONFIG:SET shop I=s3cret13", false},
		{bc, "config:set shop J=s3cret14\x00", false},
		{dc, "config:set shop K=s3cret15", false}, // dev has no access: denied
	}
	for _, tt := range tests {
		out, err := runOn(t, tt.c, tt.cmd)
		if (err == nil) != tt.okay {
			t.Errorf("%q: %v %q", tt.cmd, err, out)
		}
	}
	if out, _ := runOn(t, bc, "config:get shop TOKEN"); out != "s3cret01\n" {
		t.Fatalf("the value was not set: %q", out)
	}
	trail, err := ts.db.ListAudit(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]bool{}
	for _, e := range trail {
		if e.Op == "config:set" {
			outcomes[e.Outcome] = true
		}
		if strings.Contains(e.Detail+e.Error, "s3cret") {
			t.Errorf("a config value in the audit trail: %+v", e)
		}
	}
	if !outcomes[conductor.OutcomeOK] || !outcomes[conductor.OutcomeFailed] || !outcomes[conductor.OutcomeDenied] {
		t.Errorf("the trail lacks config:set outcomes: %v", outcomes)
	}
	log := logs.String()
	if n := strings.Count(log, `msg="ssh session"`); n < len(tests) {
		t.Errorf("%d sessions in the log, want at least %d:\n%s", n, len(tests), log)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "s3cret") {
			t.Errorf("a config value in the server log: %s", line)
		}
	}
}
