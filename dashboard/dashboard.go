// Package dashboard is Conductor's web dashboard: the apps, their deploys,
// releases, logs and hosts in a browser, with the few actions a person
// would rather click (rollback, restart, scale, maintenance). It is served
// by `conductor serve` on a loopback listener that the front nginx proxies
// as conductor.<domain>. Pages are html/template with embedded assets (no
// CDN, no build step). Logging in goes through SSH (`ssh conductor
// dashboard` prints a one-time URL); what a browser sees and does is
// checked against conductor.Permissions like the SSH commands, and every
// action runs its SSH twin (Commands.RunAs), audit entry included.
package dashboard

import (
	"context"
	"embed"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
	"github.com/hasadna/conductor/queue"
	"github.com/hasadna/conductor/traffic"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store is the state the dashboard reads, and its logins.
type Store interface {
	conductor.Store
	conductor.DashboardStore
}

// Commands runs SSH commands on a user's behalf (gitserver.Server.RunAs):
// the dashboard's actions are those commands, authorized and audited alike.
type Commands interface {
	RunAs(ctx context.Context, u *conductor.User, via string, args []string, out io.Writer) error
}

// Live is what the dashboard asks the apps' hosts and the job log stream:
// agent.Client's and queue.Queue's methods of the same names.
type Live interface {
	Processes(ctx context.Context, app *conductor.App) ([]agent.Process, error)
	Hosts(ctx context.Context) ([]*queue.HostInfo, error)
	Follow(ctx context.Context, jobID string, line func(string)) (*queue.Result, error)
	AppLogs(ctx context.Context, host string, req queue.AppLogsRequest, line func(string) error) error
	// Steps reads a finished deploy's step headers and their times from
	// its build log (the deploy chart's per-step durations).
	Steps(ctx context.Context, jobID string) ([]queue.StepTime, time.Time, error)
}

// Traffic gives an app's traffic over the last window, one point per step,
// from nginx's access log (traffic.Stats).
type Traffic interface {
	Series(ctx context.Context, app string, window, step time.Duration) ([]traffic.Point, error)
}

// Config is what the dashboard needs; wiring is in cmd/conductor.
type Config struct {
	Store    Store
	Commands Commands
	Live     Live
	Traffic  Traffic // nil: the app page says there is no traffic data

	// Secure marks the session cookie Secure: the dashboard is served
	// over HTTPS (nginx terminates TLS).
	Secure bool
	// AppURL is where an app is served, for the apps page.
	AppURL func(app string) string
	// SSH is how to reach the SSH endpoint, for the login page's hint
	// ("ssh -p 2222 git@host").
	SSH string
}

// Server serves the dashboard.
type Server struct {
	cfg   Config
	pages map[string]*template.Template
	mux   *http.ServeMux
	// steps caches finished deploys' step durations (deploy id →
	// []segment): a finished deploy's log never changes.
	steps sync.Map
}

// New builds the dashboard's handler.
func New(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, mux: http.NewServeMux()}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /login", s.loginPage)
	s.mux.HandleFunc("POST /login", s.login)
	s.mux.HandleFunc("POST /logout", s.authed(s.logout))
	s.mux.HandleFunc("GET /{$}", s.authed(s.appsPage))
	s.mux.HandleFunc("GET /apps/{app}", s.authed(s.appPage))
	s.mux.HandleFunc("GET /apps/{app}/deploys/{id}", s.authed(s.deployPage))
	s.mux.HandleFunc("GET /apps/{app}/deploys/{id}/stream", s.authed(s.buildLogStream))
	s.mux.HandleFunc("GET /apps/{app}/logs/stream", s.authed(s.appLogStream))
	s.mux.HandleFunc("POST /apps/{app}/{action}", s.authed(s.action))
	s.mux.HandleFunc("GET /hosts", s.authed(s.hostsPage))
	s.mux.HandleFunc("GET /audit", s.authed(s.auditPage))
	s.mux.HandleFunc("GET /api/apps", s.authed(s.apiApps))
	s.mux.HandleFunc("GET /api/apps/{app}", s.authed(s.apiApp))
	return s, nil
}

// ServeHTTP sets the headers every answer has, refuses cross-site
// state-changing requests and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Scripts and styles only from here; no framing (the confirmation
	// buttons cannot be clickjacked); no URL in a Referer to another site.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // "no-referrer" would make a form's Origin "null"
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := sameOrigin(r); err != nil {
			slog.Warn("dashboard: cross-site request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec-fetch-site", r.Header.Get("Sec-Fetch-Site"))
			s.errorPage(w, r, http.StatusForbidden, err.Error())
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}
