package gitserver

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Session channels: Conductor opens each one itself, in front of
// gliderlabs' session handler, for what gliderlabs does not do:
//
//   - A session's requests are filtered before gliderlabs sees them.
//     gliderlabs hands window-change to an unbuffered-after-the-first
//     channel that only a handler which asked for the pty reads; a
//     window-change before exec (or during any command but run) blocked
//     its request loop for good, so exec was never answered and the
//     session, its goroutines and its slot were never freed. Here
//     window-change only replaces the latest size, which run reads
//     (sessionPty). auth-agent-req, which gliderlabs accepts, is refused,
//     and so is every request no command uses: only exec, shell, pty-req
//     and env GIT_PROTOCOL get through.
//   - A session takes its slot in the session limits (limits.go) when it
//     opens, not when its command starts, so sessions that never start
//     one count too, and keeps it until both the channel is closed and
//     its command has ended (a command may outlive its channel). A
//     session over the limits is still opened, so that its command is
//     refused with a message (the limit middleware).
//   - A connection holds at most Limits.MaxSessionsPerConn sessions at
//     once; one more is rejected at open.
//   - A session must start its command within Limits.HandshakeTimeout.

// channelState is what Conductor keeps about one session channel.
type channelState struct {
	// windows holds the terminal's latest size (buffered 1: a new size
	// replaces one not yet read), and is closed when the session ends.
	windows chan ssh.Window
	// limitErr is why the session limits refused the session, if they did;
	// otherwise slot holds its place in them.
	limitErr error
	slot     sessionSlot
}

// sessionSlot gives a session's place in the session limits back when
// both its channel and its command are done.
type sessionSlot struct {
	mu      sync.Mutex
	holders int    // the channel, and the command while it runs
	release func() // nil once called
}

// hold counts the command as a holder, unless the slot was already given
// back (the channel closed before the command started).
func (s *sessionSlot) hold() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.release == nil {
		return false
	}
	s.holders++
	return true
}

// drop ends a holder's hold; the last one gives the slot back.
func (s *sessionSlot) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holders--; s.holders == 0 && s.release != nil {
		s.release()
		s.release = nil
	}
}

type channelStateKey struct{}

// channelContext is the connection's context plus one session's state:
// gliderlabs hands every session of a connection the same context.
type channelContext struct {
	ssh.Context
	state *channelState
}

func (c *channelContext) Value(key any) any {
	if key == (channelStateKey{}) {
		return c.state
	}
	return c.Context.Value(key)
}

// channelStateFromContext returns the session's state, or nil outside a
// session opened by sessionChannel.
func channelStateFromContext(ctx interface{ Value(any) any }) *channelState {
	st, _ := ctx.Value(channelStateKey{}).(*channelState)
	return st
}

type connSessionsKey struct{}

// sessionChannel opens a session channel: the per-connection and session
// limits, then gliderlabs' session handler over the filtered requests. It
// returns when the channel is closed.
func (s *Server) sessionChannel(srv *ssh.Server, conn *gossh.ServerConn, newChan gossh.NewChannel, ctx ssh.Context) {
	if open, _ := ctx.Value(connSessionsKey{}).(*atomic.Int32); open != nil {
		n := open.Add(1)
		defer open.Add(-1)
		if max := s.limits.MaxSessionsPerConn; max > 0 && int(n) > max {
			s.channelRefusals.warn("ssh session refused", "user", conn.User(), "remote", conn.RemoteAddr().String(), "reason", "too many sessions on the connection", "limit", max)
			_ = newChan.Reject(gossh.ResourceShortage, fmt.Sprintf("too many sessions on this connection (limit %d)", max))
			return
		}
	}
	st := &channelState{windows: make(chan ssh.Window, 1)}
	fp := ""
	if key, ok := ctx.Value(ssh.ContextKeyPublicKey).(ssh.PublicKey); ok && key != nil {
		fp = gossh.FingerprintSHA256(key)
	}
	release, err := s.sessions.acquire(fp)
	if err != nil {
		st.limitErr = err
	} else {
		st.slot = sessionSlot{holders: 1, release: release}
		defer st.slot.drop()
	}
	filtered := &filteredChannel{NewChannel: newChan, state: st, startTimeout: s.limits.HandshakeTimeout,
		remote: conn.RemoteAddr().String()}
	ssh.DefaultSessionHandler(srv, conn, filtered, &channelContext{Context: ctx, state: st})
}

// filteredChannel is a session channel whose requests pass through filter
// on their way to gliderlabs.
type filteredChannel struct {
	gossh.NewChannel
	state        *channelState
	startTimeout time.Duration
	remote       string
}

func (c *filteredChannel) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := c.NewChannel.Accept()
	if err != nil {
		return nil, nil, err
	}
	out := make(chan *gossh.Request)
	go c.filter(ch, reqs, out)
	return ch, out, nil
}

// maxEnvRequests bounds the env requests passed on (gliderlabs keeps each
// one for the session's life).
const maxEnvRequests = 4

// filter answers what gliderlabs should not see and passes the rest on to
// out. Nothing it does blocks on the handler.
func (c *filteredChannel) filter(ch gossh.Channel, reqs <-chan *gossh.Request, out chan<- *gossh.Request) {
	defer close(out)
	defer close(c.state.windows)
	var startTimer *time.Timer
	if c.startTimeout > 0 {
		startTimer = time.AfterFunc(c.startTimeout, func() {
			slog.Info("ssh session closed: no command", "remote", c.remote, "timeout", c.startTimeout)
			_ = ch.Close()
		})
		defer startTimer.Stop()
	}
	pty, started, envs := false, false, 0
	for req := range reqs {
		switch req.Type {
		case "exec", "shell":
			if !started && startTimer != nil {
				startTimer.Stop()
			}
			started = true
			out <- req
		case "pty-req":
			pty = pty || !started
			out <- req
		case "env":
			var kv struct{ Key, Value string }
			if gossh.Unmarshal(req.Payload, &kv) == nil && kv.Key == "GIT_PROTOCOL" && envs < maxEnvRequests {
				envs++
				out <- req
				continue
			}
			_ = req.Reply(false, nil)
		case "window-change":
			var w struct{ Width, Height, WidthPx, HeightPx uint32 }
			ok := pty && gossh.Unmarshal(req.Payload, &w) == nil && w.Width > 0 && w.Height > 0
			if ok {
				c.latestWindow(ssh.Window{Width: int(w.Width), Height: int(w.Height)})
			}
			_ = req.Reply(ok, nil)
		default:
			// auth-agent-req@openssh.com (gliderlabs says yes), x11-req,
			// subsystem, signal and break (no command reads them), and
			// anything else.
			_ = req.Reply(false, nil)
		}
	}
}

// latestWindow replaces the size not yet read, if any, with w. filter is
// the only sender, so the send cannot block.
func (c *filteredChannel) latestWindow(w ssh.Window) {
	select {
	case <-c.state.windows:
	default:
	}
	c.state.windows <- w
}

// sessionPty is an ssh.Session whose Pty reports the window changes the
// filter kept (gliderlabs' own channel never gets them).
type sessionPty struct {
	ssh.Session
	windows <-chan ssh.Window
}

func (s sessionPty) Pty() (ssh.Pty, <-chan ssh.Window, bool) {
	p, _, ok := s.Session.Pty()
	return p, s.windows, ok
}

// withWindows returns sess with the window changes of its channel state.
func withWindows(sess ssh.Session) ssh.Session {
	if st := channelStateFromContext(sess.Context()); st != nil {
		return sessionPty{Session: sess, windows: st.windows}
	}
	return sess
}
