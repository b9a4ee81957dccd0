package nginx

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/hasadna/conductor/internal/lazyre"
)

// DashboardSite is the server block of Conductor's web dashboard: Host
// (conductor.<domain>) proxied to the dashboard's loopback listener.
type DashboardSite struct {
	Host     string
	Upstream string   // 127.0.0.1:PORT
	TLS      *TLSHost // served over HTTPS (plain HTTP redirects there); nil: plain HTTP
}

// dashboardSiteName is the dashboard's site file name: app names cannot
// start with "_", so no app's site is ever this one.
const dashboardSiteName = "_dashboard"

var upstreamRE = lazyre.New(`^(127\.0\.0\.1|\[::1\]|localhost):[0-9]{1,5}$`)

// WriteDashboardSite installs or replaces the dashboard's server block and
// reloads nginx; if nginx rejects it, the old file is put back.
func (n *Nginx) WriteDashboardSite(ctx context.Context, s DashboardSite) error {
	if err := ValidateHost(s.Host); err != nil {
		return err
	}
	if !upstreamRE.MatchString(s.Upstream) {
		return fmt.Errorf("nginx: the dashboard must listen on loopback, not %q", s.Upstream)
	}
	data := map[string]any{"Host": s.Host, "Upstream": s.Upstream, "Listen": n.Listen, "Token": tokenPlaceholder,
		// Its certificate may come from ACME (certs.Manager.Own).
		"Challenge": map[string]string{"ChallengeDir": n.ChallengeDir()}}
	if s.TLS != nil {
		if n.HTTPSListen == "" {
			return fmt.Errorf("nginx: the dashboard's TLS certificate needs an HTTPS address (--https-addr)")
		}
		_, port, err := net.SplitHostPort(n.HTTPSListen)
		if err != nil || !listenRE.MatchString(n.HTTPSListen) {
			return fmt.Errorf("nginx: invalid HTTPS listen address %q", n.HTTPSListen)
		}
		for _, p := range []string{s.TLS.Cert, s.TLS.Key} {
			if err := checkPath(p); err != nil {
				return err
			}
		}
		data["TLS"], data["HTTPSListen"] = s.TLS, n.HTTPSListen
		data["Fingerprint"] = fingerprint(s.TLS.Cert, s.TLS.Key)
		if port != "443" {
			data["RedirectPort"] = ":" + port
		}
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "dashboard.conf.tmpl", data); err != nil {
		return fmt.Errorf("render the dashboard's site: %w", err)
	}
	conf, token := withToken(buf.Bytes())
	changed, err := n.writeDashboardSite(ctx, conf)
	if err != nil || !changed {
		return err // unchanged (a restart): no reload, which would end kept-alive connections
	}
	// Until its new workers run, nginx answers for the host without it.
	n.setToken([]string{s.Host}, token)
	return n.waitHeaders(ctx, s.Host, 15*time.Second, "the dashboard's site", func(http.Header) bool { return true })
}

// writeDashboardSite installs conf as the dashboard's site, if it differs
// from the one installed, and reloads nginx; if nginx rejects it, the old
// file is put back.
func (n *Nginx) writeDashboardSite(ctx context.Context, conf []byte) (changed bool, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	path := n.SitePath(dashboardSiteName)
	if err := n.checkOurs(path); err != nil {
		return false, err
	}
	old, oldErr := os.ReadFile(path)
	if oldErr == nil && bytes.Equal(old, conf) {
		return false, nil
	}
	if err := writeAtomic(path, conf); err != nil {
		return false, err
	}
	if err := n.test(ctx); err != nil {
		if oldErr == nil {
			_ = writeAtomic(path, old)
		} else {
			_ = os.Remove(path)
		}
		return false, err
	}
	return true, n.reload()
}
