// Package gitserver is Conductor's SSH endpoint: git push/fetch for apps and
// the SSH commands (apps, config, logs…), over gliderlabs/ssh with public-key
// authentication against the keys in the store.
package gitserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/gliderlabs/ssh"
	"github.com/google/shlex"
	gossh "golang.org/x/crypto/ssh"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
	"github.com/hasadna/conductor/notify"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/queue"
)

// Config is what the SSH endpoint needs to know about this installation.
type Config struct {
	Addr      string
	HostKey   gossh.Signer
	ReposDir  string     // bare repositories, <app>.git
	HooksDir  string     // core.hooksPath for every repo: pre-receive runs `conductor hook`
	NATS      queue.Conn // passed to the hook
	Host      string     // this host's name; apps are placed on a live host (placement.go)
	Domain    string
	DefaultDB string
	Ports     provision.PortRange
	Layout    provision.Layout
	HTTPAddr  string // the front nginx, for the URLs apps:info shows

	// Agents reach the app's host for ps, ps:scale, run and apps:destroy.
	Agents *agent.Client
	// Databases knows which database kinds this server offers (apps:create
	// checks it) and describes an app's database without its password
	// (Databases.Describe, for apps:info). Nil: SQLite only.
	Databases *provision.Databases

	// Limits on sessions, connection times and push size (DefaultLimits
	// for `conductor serve`; zero fields mean no limit).
	Limits Limits

	// SessionStarted is told each authenticated session ("git" or
	// "command") and returns what to call when it ends (package metrics;
	// nil: nothing).
	SessionStarted func(kind string) (done func())

	// Certs issues and installs TLS certificates of custom domains
	// (certs.Manager, see cmd_domains.go). Nil: the server has no HTTPS.
	Certs Certificates

	// Notify sends webhook notifications (cmd_notify.go). Nil: none.
	Notify *notify.Notifier

	// DashboardURL is where the web dashboard is reached ("http://conductor.example.com"),
	// and Dashboard keeps its login tokens and sessions (cmd_dashboard.go).
	// Either empty: the dashboard is off.
	DashboardURL string
	Dashboard    conductor.DashboardStore
}

// Server is the SSH endpoint.
type Server struct {
	cfg        Config
	store      conductor.Store
	queue      *queue.Queue
	ssh        *ssh.Server
	pushes     pushLocks
	limits     Limits
	sessions   *sessionLimiter
	handshakes *handshakeGate
	preauth    *preauthLimiter
	// channelRefusals logs sessions rejected at open (channels.go).
	channelRefusals refusalLog
	// backupSched runs db:backups:schedule (dbbackup_schedule.go).
	backupSched backupScheduler
}

// New builds the SSH server: a middleware chain (recover → authenticate →
// limit → log → dispatch) in front of git and the commands.
func New(cfg Config, store conductor.Store, q *queue.Queue) *Server {
	s := &Server{cfg: cfg, store: store, queue: q, limits: cfg.Limits,
		sessions:   newSessionLimiter(cfg.Limits.MaxSessions, cfg.Limits.MaxSessionsPerKey),
		handshakes: newHandshakeGate(cfg.Limits.MaxHandshakes),
		preauth:    newPreauthLimiter(cfg.Limits.MaxUnauthenticated, cfg.Limits.MaxUnauthenticatedPerSource)}
	s.ssh = &ssh.Server{
		Addr:             cfg.Addr,
		HostSigners:      []ssh.Signer{cfg.HostKey},
		Version:          "Conductor",
		PublicKeyHandler: s.publicKeyHandler,
		// The callback cannot see the command, so a pty is granted to every
		// session, and only `run` uses it; every other handler ignores it.
		// Its window changes never reach gliderlabs (channels.go).
		PtyCallback: func(ssh.Context, ssh.Pty) bool { return true },
		// Sessions only: other channel types (port forwarding) are rejected.
		ChannelHandlers: map[string]ssh.ChannelHandler{"session": s.sessionChannel},
		// Port forwarding callbacks stay nil: gliderlabs denies forwarding.
		IdleTimeout:          cfg.Limits.IdleTimeout,
		MaxTimeout:           cfg.Limits.MaxTimeout,
		ConnCallback:         s.connCallback,
		ServerConfigCallback: s.serverConfig,
	}
	s.ssh.Handler = s.middlewares(s.dispatch)
	return s
}

// middlewares wraps h, the handler at the end of the chain, in the others.
func (s *Server) middlewares(h ssh.Handler) ssh.Handler {
	return chain(h, s.logging, s.measure, s.limit, s.authenticate, recoverer)
}

// ListenAndServe serves until Shutdown.
func (s *Server) ListenAndServe() error {
	err := s.ssh.ListenAndServe()
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Serve serves on an existing listener.
func (s *Server) Serve(l net.Listener) error {
	err := s.ssh.Serve(l)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for sessions to end.
func (s *Server) Shutdown(ctx context.Context) error { return s.ssh.Shutdown(ctx) }

type middleware func(ssh.Handler) ssh.Handler

// chain wraps h in the middlewares, the last one outermost.
func chain(h ssh.Handler, mws ...middleware) ssh.Handler {
	for _, mw := range mws {
		h = mw(h)
	}
	return h
}

// publicKeyHandler admits only keys registered in the store.
func (s *Server) publicKeyHandler(ctx ssh.Context, key ssh.PublicKey) bool {
	_, err := s.store.FindUserByFingerprint(ctx, gossh.FingerprintSHA256(key))
	return err == nil
}

// recoverer turns a panic in a handler into an error exit, not a crash.
func recoverer(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		defer func() {
			if r := recover(); r != nil {
				slog.Error("panic in ssh session", "panic", r, "stack", string(debug.Stack()))
				fmt.Fprintln(sess.Stderr(), "error: internal error")
				_ = sess.Exit(1)
			}
		}()
		next(sess)
	}
}

// authenticate resolves the user from the key the session actually proved
// (not a key merely offered earlier in the handshake) and puts it in the
// context.
func (s *Server) authenticate(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		key := sess.PublicKey()
		if key == nil {
			fmt.Fprintln(sess.Stderr(), "error: public key authentication required")
			_ = sess.Exit(1)
			return
		}
		fp := gossh.FingerprintSHA256(key)
		u, err := s.store.FindUserByFingerprint(sess.Context(), fp)
		if err != nil {
			fmt.Fprintln(sess.Stderr(), "error: unknown key")
			_ = sess.Exit(1)
			return
		}
		sess.Context().SetValue(userKey, u)
		sess.Context().SetValue(fingerprintKey, fp)
		next(sess)
	}
}

// logging records each session's command, user and outcome.
func (s *Server) logging(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		start := time.Now()
		u := UserFromContext(sess.Context())
		command := logCommand(sess.RawCommand())
		slog.Info("ssh session", "user", u.Name, "remote", sess.RemoteAddr().String(), "command", command)
		next(sess)
		slog.Info("ssh session done", "user", u.Name, "command", command, "took", time.Since(start).Round(time.Millisecond))
	}
}

// logCommand is a command line as the server log may show it: config
// values can be secrets, so a config:set keeps only the names
// (conductor.RedactCommand). A line shlex cannot split (dispatch refuses
// it) is split on spaces with its quotes dropped, so that it is masked too.
// A line with nothing to mask is shown as it came.
func logCommand(raw string) string {
	args, err := shlex.Split(raw)
	if err != nil {
		args = strings.Fields(strings.NewReplacer(`'`, "", `"`, "", `\`, "").Replace(raw))
	}
	redacted := conductor.RedactCommand(args)
	if slices.Equal(redacted, args) {
		return raw
	}
	return strings.Join(redacted, " ")
}

// dispatch sends git services to git and everything else to the commands.
func (s *Server) dispatch(sess ssh.Session) {
	args, err := shlex.Split(sess.RawCommand())
	if err != nil {
		fmt.Fprintf(sess.Stderr(), "error: cannot parse command: %v\n", err)
		_ = sess.Exit(1)
		return
	}
	if len(args) > 0 && (args[0] == "git-receive-pack" || args[0] == "git-upload-pack") {
		_ = sess.Exit(s.serveGit(sess, args))
		return
	}
	_ = sess.Exit(s.runCommand(sess.Context(), withWindows(sess), args))
}
