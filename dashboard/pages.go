package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hasadna/conductor"
)

// askHostsWithin bounds how long a page waits for the apps' hosts (their
// processes' state): a host that does not answer shows as such.
const askHostsWithin = 2 * time.Second

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (s *Server) parseTemplates() error {
	funcs := template.FuncMap{
		"since": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"secs":  func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) },
		"short": func(rev string) string { return rev[:min(8, len(rev))] },
	}
	s.pages = map[string]*template.Template{}
	names, err := templateFS.ReadDir("templates")
	if err != nil {
		return err
	}
	for _, n := range names {
		if n.Name() == "layout.html" || strings.HasPrefix(n.Name(), "_") {
			continue // shared by every page
		}
		t, err := template.New(n.Name()).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", "templates/"+n.Name())
		if err != nil {
			return fmt.Errorf("dashboard template %s: %w", n.Name(), err)
		}
		s.pages[n.Name()] = t
	}
	return nil
}

// page is what the layout needs besides a page's own data.
type page struct {
	User  *conductor.User
	CSRF  string
	Title string
	Data  any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	p := page{Data: data}
	if x := sessionFrom(r.Context()); x != nil {
		p.User, p.CSRF = x.user, x.csrf
	}
	if m, ok := data.(map[string]any); ok {
		if t, ok := m["Title"].(string); ok {
			p.Title = t
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if w.Header().Get("Cache-Control") == "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	if err := s.pages[name].ExecuteTemplate(w, "layout", p); err != nil {
		slog.Error("dashboard: render", "page", name, "err", err)
	}
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if isAPI(r) {
		writeJSON(w, code, map[string]string{"error": msg})
		return
	}
	w.WriteHeader(code)
	s.render(w, r, "error.html", map[string]any{"Title": http.StatusText(code), "Message": msg})
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	slog.Error("dashboard", "path", r.URL.Path, "err", err)
	s.errorPage(w, r, http.StatusInternalServerError, "internal error (see the server log)")
}

func isAPI(r *http.Request) bool { return len(r.URL.Path) >= 5 && r.URL.Path[:5] == "/api/" }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// authorizeErr answers a refused request as the SSH layer would: an app
// the user may not see is not found, anything else forbidden.
func (s *Server) authorizeErr(w http.ResponseWriter, r *http.Request, err error) {
	switch conductor.ErrorCode(err) {
	case conductor.ENOTFOUND:
		s.errorPage(w, r, http.StatusNotFound, conductor.ErrorMessage(err))
	case conductor.EUNAUTHORIZED:
		s.errorPage(w, r, http.StatusForbidden, conductor.ErrorMessage(err))
	case conductor.EINVALID:
		s.errorPage(w, r, http.StatusBadRequest, conductor.ErrorMessage(err))
	default:
		s.internalError(w, r, err)
	}
}

// app finds the request's app and checks that the user may do op on it
// (a key of conductor.Permissions, the SSH command's twin).
func (s *Server) app(r *http.Request, op string) (*conductor.App, error) {
	name := r.PathValue("app")
	if err := conductor.ValidateAppName(name); err != nil {
		return nil, conductor.AppNotFound(name)
	}
	app, err := s.cfg.Store.FindApp(r.Context(), name)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		return nil, conductor.AppNotFound(name)
	} else if err != nil {
		return nil, err
	}
	if err := conductor.Authorize(r.Context(), s.cfg.Store, sessionFrom(r.Context()).user, op, app); err != nil {
		return nil, err
	}
	return app, nil
}

// allowed tells whether the user may do op (on app, or the server).
func (s *Server) allowed(ctx context.Context, op string, app *conductor.App) bool {
	return conductor.Authorize(ctx, s.cfg.Store, sessionFrom(ctx).user, op, app) == nil
}

// appRow is one app as the apps page and /api/apps show it.
type appRow struct {
	Name        string       `json:"name"`
	URL         string       `json:"url"`
	DB          string       `json:"db"`
	Host        string       `json:"host"`
	Release     int          `json:"release,omitempty"` // the serving release's number (0: never deployed)
	Rev         string       `json:"rev,omitempty"`
	Maintenance bool         `json:"maintenance"`
	Processes   []processRow `json:"processes"`
	HostError   string       `json:"host_error,omitempty"`
	app         *conductor.App
}

type processRow struct {
	Type    string `json:"type"`
	Running int    `json:"running"`
	Wanted  int    `json:"wanted"`
	State   string `json:"state"`
}

// visibleApps lists the apps the user may look at (the apps command's
// rule: apps:info), with their serving release and maintenance mode.
func (s *Server) visibleApps(ctx context.Context) ([]*appRow, error) {
	apps, err := s.cfg.Store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	rows := []*appRow{}
	for _, a := range apps {
		if !s.allowed(ctx, "apps:info", a) {
			continue
		}
		row := &appRow{Name: a.Name, DB: a.DBKind, Host: a.Host, app: a, Processes: []processRow{}}
		if s.cfg.AppURL != nil {
			row.URL = s.cfg.AppURL(a.Name)
		}
		cur, err := s.cfg.Store.CurrentRelease(ctx, a.ID)
		switch {
		case conductor.ErrorCode(err) == conductor.ENOTFOUND:
		case err != nil:
			return nil, err
		default:
			row.Release, row.Rev = cur.Number, cur.Rev
		}
		_, err = s.cfg.Store.Maintenance(ctx, a.ID)
		if err != nil && conductor.ErrorCode(err) != conductor.ENOTFOUND {
			return nil, err
		}
		row.Maintenance = err == nil
		rows = append(rows, row)
	}
	return rows, nil
}

// processes asks the apps' hosts for their processes, a few at a time,
// within askHostsWithin.
func (s *Server) processes(ctx context.Context, rows []*appRow) {
	ctx, cancel := context.WithTimeout(ctx, askHostsWithin)
	defer cancel()
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, row := range rows {
		if row.Release == 0 {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			procs, err := s.appProcesses(ctx, row.app)
			if err != nil {
				row.HostError = conductor.ErrorMessage(err)
				if conductor.ErrorCode(err) == conductor.EINTERNAL {
					row.HostError = "its host did not answer"
				}
				return
			}
			row.Processes = procs
		}()
	}
	wg.Wait()
}

func (s *Server) appProcesses(ctx context.Context, app *conductor.App) ([]processRow, error) {
	procs, err := s.cfg.Live.Processes(ctx, app)
	if err != nil {
		return nil, err
	}
	scale, err := s.cfg.Store.ProcessScale(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	out := []processRow{}
	for _, p := range procs {
		wanted, ok := scale[p.Type]
		if !ok {
			wanted = 1
		}
		out = append(out, processRow{Type: p.Type, Running: p.Running, Wanted: wanted, State: p.State})
	}
	return out, nil
}

func (s *Server) appsPage(w http.ResponseWriter, r *http.Request) {
	rows, err := s.visibleApps(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.processes(r.Context(), rows)
	s.render(w, r, "apps.html", map[string]any{"Title": "Apps", "Apps": rows})
}

func (s *Server) apiApps(w http.ResponseWriter, r *http.Request) {
	rows, err := s.visibleApps(r.Context())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.processes(r.Context(), rows)
	writeJSON(w, http.StatusOK, rows)
}

// appView is the app page's data, also /api/apps/{app}.
type appView struct {
	App         *appRow                `json:"app"`
	Maintenance *conductor.Maintenance `json:"maintenance,omitempty"`
	Releases    []*conductor.Release   `json:"-"`
	ReleaseRows []releaseRow           `json:"releases"`
	Deploys     []deployRow            `json:"deploys"`
	Running     *deployRow             `json:"running,omitempty"`
	Chart       *chart                 `json:"-"`
	ConfigKeys  []string               `json:"config_keys"`
	Config      map[string]string      `json:"config,omitempty"` // values, only when asked (?values=1)
	ShowValues  bool                   `json:"-"`
	Traffic     *trafficView           `json:"-"`
	CanScale    bool                   `json:"-"`
}

type releaseRow struct {
	Number      int           `json:"number"`
	ID          string        `json:"id"`
	Rev         string        `json:"rev"`
	By          string        `json:"by"`
	Description string        `json:"description"`
	Created     time.Time     `json:"created"`
	Duration    time.Duration `json:"duration_ns"`
	Current     bool          `json:"current"`
}

type deployRow struct {
	ID       string        `json:"id"`
	Ref      string        `json:"ref"`
	Rev      string        `json:"rev"`
	By       string        `json:"by"`
	Status   string        `json:"status"`
	Created  time.Time     `json:"created"`
	Duration time.Duration `json:"duration_ns"`
	Error    string        `json:"error,omitempty"`
}

// shownDeploys and shownReleases bound the app page's tables; the chart
// shows up to chartDeploys.
const (
	shownDeploys  = 20
	shownReleases = 30
	chartDeploys  = 30
)

func (s *Server) appView(r *http.Request, app *conductor.App) (*appView, error) {
	ctx := r.Context()
	v := &appView{App: &appRow{Name: app.Name, DB: app.DBKind, Host: app.Host, app: app, Processes: []processRow{}}}
	if s.cfg.AppURL != nil {
		v.App.URL = s.cfg.AppURL(app.Name)
	}
	m, err := s.cfg.Store.Maintenance(ctx, app.ID)
	switch {
	case conductor.ErrorCode(err) == conductor.ENOTFOUND:
	case err != nil:
		return nil, err
	default:
		v.Maintenance, v.App.Maintenance = m, true
	}
	if s.allowed(ctx, "releases", app) {
		releases, err := s.cfg.Store.ListReleases(ctx, app.ID)
		if err != nil {
			return nil, err
		}
		for i, rel := range releases {
			if rel.Current {
				v.App.Release, v.App.Rev = rel.Number, rel.Rev
			}
			if i < shownReleases {
				v.ReleaseRows = append(v.ReleaseRows, releaseRow{rel.Number, rel.ID, rel.Rev, rel.Pusher, rel.Description, rel.CreatedAt, rel.Duration, rel.Current})
			}
		}
	}
	if s.allowed(ctx, "deploys", app) {
		deploys, err := s.cfg.Store.ListDeploys(ctx, app.ID)
		if err != nil {
			return nil, err
		}
		for i, d := range deploys {
			row := deployRow{ID: d.ID, Ref: d.Ref, Rev: d.Rev, By: d.Pusher, Status: d.Status, Created: d.CreatedAt, Error: firstLine(d.Error)}
			if !d.FinishedAt.IsZero() {
				row.Duration = d.FinishedAt.Sub(d.CreatedAt)
			}
			if v.Running == nil && (d.Status == conductor.DeployRunning || d.Status == conductor.DeployQueued) {
				rr := row
				v.Running = &rr
			}
			if i < shownDeploys {
				v.Deploys = append(v.Deploys, row)
			}
		}
		done := finished(deploys, chartDeploys)
		v.Chart = deployChart(done, s.deploySteps(ctx, done), chartDeploys)
	}
	if s.allowed(ctx, "config", app) {
		vars, err := s.cfg.Store.Config(ctx, app.ID)
		if err != nil {
			return nil, err
		}
		for k := range vars {
			v.ConfigKeys = append(v.ConfigKeys, k)
		}
		sort.Strings(v.ConfigKeys)
		if r.URL.Query().Get("values") == "1" && s.allowed(ctx, "config:get", app) {
			v.Config, v.ShowValues = vars, true
		}
	}
	v.CanScale = s.allowed(ctx, "ps:scale", app)
	return v, nil
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}

// loadApp is what the app page and its API share: the request's app, for
// a user who may see it, and its view; false when it answered an error.
func (s *Server) loadApp(w http.ResponseWriter, r *http.Request) (*conductor.App, *appView, bool) {
	app, err := s.app(r, "apps:info")
	if err != nil {
		s.authorizeErr(w, r, err)
		return nil, nil, false
	}
	v, err := s.appView(r, app)
	if err != nil {
		s.internalError(w, r, err)
		return nil, nil, false
	}
	return app, v, true
}

func (s *Server) appPage(w http.ResponseWriter, r *http.Request) {
	app, v, ok := s.loadApp(w, r)
	if !ok {
		return
	}
	if v.App.Release != 0 {
		s.processes(r.Context(), []*appRow{v.App})
	}
	v.Traffic = s.traffic(r.Context(), app)
	s.render(w, r, "app.html", map[string]any{"Title": app.Name, "V": v, "Logs": s.allowed(r.Context(), "logs", app)})
}

func (s *Server) apiApp(w http.ResponseWriter, r *http.Request) {
	if _, v, ok := s.loadApp(w, r); ok {
		writeJSON(w, http.StatusOK, v)
	}
}

// deployPage shows one deploy and its build log, live while it runs.
func (s *Server) deployPage(w http.ResponseWriter, r *http.Request) {
	app, d, err := s.deploy(r)
	if err != nil {
		s.authorizeErr(w, r, err)
		return
	}
	s.render(w, r, "deploy.html", map[string]any{"Title": app.Name + " " + d.ID, "App": app, "D": d})
}

// deploy finds the request's deploy of its app, for a user who may read
// its build log (logs --build).
func (s *Server) deploy(r *http.Request) (*conductor.App, *conductor.Deploy, error) {
	app, err := s.app(r, "logs")
	if err != nil {
		return nil, nil, err
	}
	id := r.PathValue("id")
	deploys, err := s.cfg.Store.ListDeploys(r.Context(), app.ID)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range deploys {
		if d.ID == id {
			return app, d, nil
		}
	}
	return nil, nil, conductor.Errorf(conductor.ENOTFOUND, "%s has no deploy %q", app.Name, truncate(id))
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// hostRow is one host as the hosts page shows it.
type hostRow struct {
	Name     string
	Up       bool
	Capacity int
	Version  string
	Address  string
	Apps     []string
	Started  time.Time
	Seen     time.Time
}

func (s *Server) hostsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := conductor.Authorize(ctx, s.cfg.Store, sessionFrom(ctx).user, "hosts", nil); err != nil {
		s.authorizeErr(w, r, err)
		return
	}
	hosts, err := s.cfg.Live.Hosts(ctx)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	apps, err := s.cfg.Store.ListApps(ctx)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	byHost := map[string][]string{}
	for _, a := range apps {
		byHost[a.Host] = append(byHost[a.Host], a.Name)
	}
	rows := []hostRow{}
	live := map[string]bool{}
	for _, h := range hosts {
		live[h.Name] = true
		rows = append(rows, hostRow{h.Name, true, h.Capacity, h.Version, h.Address, byHost[h.Name], h.StartedAt, h.SeenAt})
	}
	for name, list := range byHost {
		if !live[name] {
			rows = append(rows, hostRow{Name: name, Apps: list})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	s.render(w, r, "hosts.html", map[string]any{"Title": "Hosts", "Hosts": rows})
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := conductor.Authorize(ctx, s.cfg.Store, sessionFrom(ctx).user, "audit", nil); err != nil {
		s.authorizeErr(w, r, err)
		return
	}
	app := r.URL.Query().Get("app")
	if app != "" {
		if err := conductor.ValidateAppName(app); err != nil {
			s.errorPage(w, r, http.StatusBadRequest, conductor.ErrorMessage(err))
			return
		}
	}
	entries, err := s.cfg.Store.ListAudit(ctx, app, 200)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.render(w, r, "audit.html", map[string]any{"Title": "Audit", "Entries": entries, "App": app})
}
