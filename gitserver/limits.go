package gitserver

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/readbuf"
)

// Limits bound what one client, or all of them, can hold on the SSH
// endpoint. A zero field means no limit.
type Limits struct {
	// MaxSessions caps the sessions (commands, pushes, fetches) open at
	// once on the server; MaxSessionsPerKey caps them per client key. A
	// session counts from when it opens, whether or not it has started its
	// command (channels.go). A session over either limit is refused at
	// once, not queued.
	MaxSessions, MaxSessionsPerKey int
	// MaxSessionsPerConn caps the sessions open at once on one connection
	// (OpenSSH's MaxSessions); one more is rejected when it opens.
	MaxSessionsPerConn int
	// MaxUnauthenticated caps the connections that have not authenticated
	// yet, on the server and per source address (an IPv6 /64); a
	// connection over a cap is refused before its key exchange
	// (preauth.go).
	MaxUnauthenticated, MaxUnauthenticatedPerSource int
	// HandshakeTimeout is how long a connection may take from connect to
	// authenticated, and a session from open to starting its command.
	// gliderlabs' IdleTimeout also runs during the handshake, but it is
	// long (a build can be silent for minutes), so a client that connects
	// and sends nothing would hold its socket for that long.
	HandshakeTimeout time.Duration
	// IdleTimeout drops a connection with no traffic for that long;
	// MaxTimeout drops any connection that old.
	IdleTimeout, MaxTimeout time.Duration
	// MaxPushSize is git's receive.maxInputSize for pushes, in bytes.
	MaxPushSize int64
	// MaxHandshakes is how many connections work on their handshake at
	// once; the others wait their turn, in order (handshakes.go).
	MaxHandshakes int
}

// DefaultLimits are the limits `conductor serve` starts with.
func DefaultLimits() Limits {
	return Limits{
		MaxSessions:       100,
		MaxSessionsPerKey: 10,
		// OpenSSH's default; ssh opens one session per connection, or a few
		// with ControlMaster.
		MaxSessionsPerConn: 10,
		// A handshake takes milliseconds, so these are far above what real
		// clients hold, CI behind one NAT address and bench/sshload's 200
		// concurrent new connections included, and still bound a flood to
		// a few tens of MB; one source can take at most a quarter.
		MaxUnauthenticated:          1024,
		MaxUnauthenticatedPerSource: 256,
		HandshakeTimeout:            30 * time.Second,
		IdleTimeout:                 15 * time.Minute, // a build streams output; a silent pip can take a while
		MaxTimeout:                  2 * time.Hour,
		MaxPushSize:                 1 << 30,
		MaxHandshakes:               8 * runtime.GOMAXPROCS(0), // enough to keep every CPU busy while some wait on the network
	}
}

// sessionLimiter counts running sessions, overall and per key fingerprint.
type sessionLimiter struct {
	max, maxPerKey int

	mu     sync.Mutex
	total  int
	perKey map[string]int
}

func newSessionLimiter(max, maxPerKey int) *sessionLimiter {
	return &sessionLimiter{max: max, maxPerKey: maxPerKey, perKey: map[string]int{}}
}

// acquire takes a session slot for the key, or fails with EINVALID when
// the key or the server is at its limit. release gives the slot back.
func (l *sessionLimiter) acquire(fp string) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxPerKey > 0 && l.perKey[fp] >= l.maxPerKey {
		return nil, conductor.Errorf(conductor.EINVALID, "too many sessions for this key (limit %d): wait for one to end", l.maxPerKey)
	}
	if l.max > 0 && l.total >= l.max {
		return nil, conductor.Errorf(conductor.EINVALID, "too many sessions on this server (limit %d): try again later", l.max)
	}
	l.total++
	l.perKey[fp]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.total--
			if l.perKey[fp]--; l.perKey[fp] <= 0 {
				delete(l.perKey, fp)
			}
		})
	}, nil
}

// limit refuses the command of a session over the session limits. The
// session took its slot, or failed to, when it opened (sessionChannel),
// against the key it proved; the refusal waits for the command so that the
// client sees why.
func (s *Server) limit(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		st := channelStateFromContext(sess.Context())
		var err error
		switch {
		case st == nil:
			err = conductor.Errorf(conductor.EINTERNAL, "session without a channel state")
		case st.limitErr != nil:
			err = st.limitErr
		case !st.slot.hold():
			err = conductor.Errorf(conductor.EINVALID, "session closed before its command started")
		}
		if err != nil {
			slog.Warn("ssh session refused", "user", UserFromContext(sess.Context()).Name, "remote", sess.RemoteAddr().String(), "err", err)
			fmt.Fprintf(sess.Stderr(), "error: %s\n", conductor.ErrorMessage(err))
			_ = sess.Exit(1)
			return
		}
		defer st.slot.drop()
		next(sess)
	}
}

type handshakeKey struct{}

// handshakeTimer closes a connection that has not authenticated within
// the handshake timeout (timer nil: no timeout), ends its turn at the
// handshake gate, and tells quickAck (nil unless TCP) when it has.
type handshakeTimer struct {
	timer    *time.Timer
	endTurn  func()
	quickAck *quickAckConn
	// endPreauth uncounts the connection from the unauthenticated ones.
	endPreauth func()
}

// authenticated is called once the client has proved its key.
func (ht *handshakeTimer) authenticated() {
	if ht.timer != nil {
		ht.timer.Stop()
	}
	ht.endTurn()
	ht.endPreauth()
	if ht.quickAck != nil {
		ht.quickAck.authenticated()
	}
}

// handshakeConn disarms the handshake timer and ends the gate turn when
// gliderlabs closes the connection (a failed handshake, or the end of the
// connection).
type handshakeConn struct {
	net.Conn
	ht *handshakeTimer
}

func (c *handshakeConn) Close() error {
	if c.ht.timer != nil {
		c.ht.timer.Stop()
	}
	c.ht.endTurn()
	c.ht.endPreauth()
	return c.Conn.Close()
}

// connCallback refuses a connection over the caps on unauthenticated
// connections (preauth.go), arms the handshake deadline, then waits for the
// connection's turn at the handshake gate (handshakes.go). It closes the
// connection from a timer rather than with SetDeadline, because gliderlabs
// moves the deadline on every read and write.
func (s *Server) connCallback(ctx ssh.Context, conn net.Conn) net.Conn {
	endPreauth, err := s.preauth.acquire(conn.RemoteAddr())
	if err != nil {
		s.preauth.log.warn("ssh connection refused before authentication", "remote", conn.RemoteAddr().String(), "reason", conductor.ErrorMessage(err))
		refuse(conn, "SSH-2.0-"+s.ssh.Version, conductor.ErrorMessage(err))
		return nil // gliderlabs closes it
	}
	ctx.SetValue(connSessionsKey{}, new(atomic.Int32))                             // sessions open on this connection (channels.go)
	ht := &handshakeTimer{quickAck: newQuickAckConn(conn), endPreauth: endPreauth} // quickack.go
	if ht.quickAck != nil {
		conn = ht.quickAck
	}
	conn = readbuf.New(conn) // x/crypto reads the client's version a byte at a time
	ctx.SetValue(handshakeKey{}, ht)
	if s.limits.HandshakeTimeout > 0 {
		remote := conn.RemoteAddr().String()
		ht.timer = time.AfterFunc(s.limits.HandshakeTimeout, func() {
			slog.Info("ssh handshake timed out", "remote", remote, "timeout", s.limits.HandshakeTimeout)
			_ = conn.Close()
		})
	}
	ht.endTurn = s.handshakes.wait()
	return &handshakeConn{Conn: conn, ht: ht}
}

// serverConfig disarms the handshake deadline once the client has
// authenticated: from then on the idle and max timeouts apply.
func (s *Server) serverConfig(ctx ssh.Context) *gossh.ServerConfig {
	cfg := &gossh.ServerConfig{}
	ht, _ := ctx.Value(handshakeKey{}).(*handshakeTimer)
	if ht != nil {
		cfg.AuthLogCallback = func(_ gossh.ConnMetadata, _ string, err error) {
			if err == nil {
				ht.authenticated()
			}
		}
	}
	return cfg
}
