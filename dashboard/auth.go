package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/hasadna/conductor"
)

const (
	cookieName       = "conductor_session"
	secureCookieName = "__Host-conductor_session" // the prefix makes browsers insist on Secure, Path=/ and no Domain
	maxAgentLen      = 120
)

func (s *Server) cookieName() string {
	if s.cfg.Secure {
		return secureCookieName
	}
	return cookieName
}

// session is a logged-in request: its user (read again on every request,
// so a key's removal or an admin's demotion counts at once) and session.
type session struct {
	user    *conductor.User
	session *conductor.DashboardSession
	csrf    string
}

type sessionKey struct{}

func sessionFrom(ctx context.Context) *session {
	s, _ := ctx.Value(sessionKey{}).(*session)
	return s
}

// via is what the audit trail shows for the dashboard's actions, where a
// key's fingerprint would be.
func (x *session) via() string { return "dashboard session " + itoa(x.session.ID) }

// authed wraps a handler that needs a logged-in user; every state-changing
// request must also carry the session's CSRF token.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(s.cookieName())
		if err != nil || c.Value == "" {
			s.loginNeeded(w, r)
			return
		}
		ds, err := s.cfg.Store.DashboardSession(r.Context(), conductor.HashDashboardSecret(c.Value), time.Now())
		if conductor.ErrorCode(err) == conductor.ENOTFOUND {
			s.loginNeeded(w, r)
			return
		} else if err != nil {
			s.internalError(w, r, err)
			return
		}
		u, err := s.cfg.Store.FindUser(r.Context(), ds.User)
		if conductor.ErrorCode(err) == conductor.ENOTFOUND {
			s.loginNeeded(w, r)
			return
		} else if err != nil {
			s.internalError(w, r, err)
			return
		}
		x := &session{user: u, session: ds, csrf: csrfToken(c.Value)}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			got := r.PostFormValue("csrf")
			if subtle.ConstantTimeCompare([]byte(got), []byte(x.csrf)) != 1 {
				s.errorPage(w, r, http.StatusForbidden, "this form is stale or came from another site (no valid CSRF token): reload the page and try again")
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, x)))
	}
}

// csrfToken is the session's CSRF token: derived from the cookie, which
// only the browser (HttpOnly) and no other site has, so it needs no
// storage and changes with every session.
func csrfToken(cookie string) string {
	h := sha256.Sum256([]byte("conductor dashboard csrf\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// sameOrigin refuses a state-changing request another site made the
// browser send: modern browsers say so in Sec-Fetch-Site, and every
// browser sends Origin with a POST. (The cookie is SameSite=Strict and the
// form needs the CSRF token too: three locks.)
func sameOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin":
	default: // cross-site, same-site (another app's subdomain), none
		return errors.New("refused: this request came from another site")
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errors.New("refused: this request came from another origin")
		}
	}
	return nil
}

// loginNeeded answers a request without a live session.
func (s *Server) loginNeeded(w http.ResponseWriter, r *http.Request) {
	if isAPI(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "log in first: ssh … dashboard"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	s.render(w, r, "login.html", map[string]any{"SSH": s.cfg.SSH})
}

// loginPage is where a login URL lands: a button that posts its token.
// Opening the URL spends nothing, so a link previewer (a chat that fetches
// a pasted URL) neither logs itself in nor uses the token up.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	token := r.URL.Query().Get("token")
	if token == "" || len(token) > 100 {
		s.loginNeeded(w, r)
		return
	}
	s.render(w, r, "login.html", map[string]any{"SSH": s.cfg.SSH, "Token": token})
}

// login trades a one-time token (from `ssh conductor dashboard`) for a
// session cookie, then sends the browser to the apps without the token in
// its address bar or history. ServeHTTP has refused it if another site
// posted it (login CSRF: logging your browser in as someone else).
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	token := r.PostFormValue("token")
	if token == "" || len(token) > 100 {
		s.loginNeeded(w, r)
		return
	}
	now := time.Now()
	agent := r.UserAgent()
	if len(agent) > maxAgentLen {
		agent = agent[:maxAgentLen]
	}
	cookie := conductor.NewDashboardSecret()
	ds, err := s.cfg.Store.UseDashboardToken(r.Context(), conductor.HashDashboardSecret(token), conductor.HashDashboardSecret(cookie),
		agent, now, now.Add(conductor.DashboardSessionTTL))
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		slog.Info("dashboard: login refused", "err", err, "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusForbidden)
		s.render(w, r, "login.html", map[string]any{"SSH": s.cfg.SSH, "Error": conductor.ErrorMessage(err) + ": run dashboard again for a new one"})
		return
	} else if err != nil {
		s.internalError(w, r, err)
		return
	}
	slog.Info("dashboard: logged in", "user", ds.User, "session", ds.ID)
	http.SetCookie(w, &http.Cookie{
		Name: s.cookieName(), Value: cookie, Path: "/", Expires: ds.ExpiresAt, MaxAge: int(conductor.DashboardSessionTTL / time.Second),
		Secure: s.cfg.Secure, HttpOnly: true, SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the browser's session.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	x := sessionFrom(r.Context())
	if _, err := s.cfg.Store.EndDashboardSessions(r.Context(), x.user.ID, x.session.ID); err != nil {
		s.internalError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.cookieName(), Value: "", Path: "/", MaxAge: -1,
		Secure: s.cfg.Secure, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, r, "login.html", map[string]any{"SSH": s.cfg.SSH, "Message": "You are logged out."})
}
