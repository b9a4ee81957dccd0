package gitserver

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/readbuf"
)

// Limits bound what one client, or all of them, can hold on the SSH
// endpoint. A zero field means no limit.
type Limits struct {
	// MaxSessions caps the sessions (commands, pushes, fetches) running at
	// once on the server; MaxSessionsPerKey caps them per client key. A
	// session over either limit is refused at once, not queued.
	MaxSessions, MaxSessionsPerKey int
	// HandshakeTimeout is how long a connection may take from connect to
	// authenticated. gliderlabs' IdleTimeout also runs during the handshake,
	// but it is long (a build can be silent for minutes), so a client that
	// connects and sends nothing would hold its socket for that long.
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
		HandshakeTimeout:  30 * time.Second,
		IdleTimeout:       15 * time.Minute, // a build streams output; a silent pip can take a while
		MaxTimeout:        2 * time.Hour,
		MaxPushSize:       1 << 30,
		MaxHandshakes:     8 * runtime.GOMAXPROCS(0), // enough to keep every CPU busy while some wait on the network
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

// limit refuses a session over the session limits. It runs after
// authenticate, so the key is the one the session proved.
func (s *Server) limit(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		fp := FingerprintFromContext(sess.Context())
		release, err := s.sessions.acquire(fp)
		if err != nil {
			slog.Warn("ssh session refused", "user", UserFromContext(sess.Context()).Name, "remote", sess.RemoteAddr().String(), "err", err)
			fmt.Fprintf(sess.Stderr(), "error: %s\n", conductor.ErrorMessage(err))
			_ = sess.Exit(1)
			return
		}
		defer release()
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
}

// authenticated is called once the client has proved its key.
func (ht *handshakeTimer) authenticated() {
	if ht.timer != nil {
		ht.timer.Stop()
	}
	ht.endTurn()
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
	return c.Conn.Close()
}

// connCallback arms the handshake deadline when a connection arrives, then
// waits for the connection's turn at the handshake gate (handshakes.go). It
// closes the connection from a timer rather than with SetDeadline, because
// gliderlabs moves the deadline on every read and write.
func (s *Server) connCallback(ctx ssh.Context, conn net.Conn) net.Conn {
	ht := &handshakeTimer{quickAck: newQuickAckConn(conn)} // quickack.go
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
