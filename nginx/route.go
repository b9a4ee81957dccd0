package nginx

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"unicode/utf8"
)

// An app's server block does not name its release: nginx reads the app's
// route file once per request (conductor.js, through njs's js_set), so a
// deploy switches traffic by renaming a new route into place. A reload
// would do it too, but a reload ends every idle kept-alive client
// connection, and a client that sends its next request as the old worker
// closes the connection sees an error. The site is rewritten (and nginx
// reloaded) only when what it says changes: hosts, TLS, maintenance, the
// body limit.

//go:embed conductor.js
var routeScript []byte

// DefaultJSModule is Debian's njs module (libnginx-mod-http-js), which
// Conductor's own nginx loads.
const DefaultJSModule = "/usr/lib/nginx/modules/ngx_http_js_module.so"

// systemRoutesConf is the file in the host's sites dir that declares the
// route lookup for Conductor's sites; "_" is in no app name.
const systemRoutesConf = SystemSitePrefix + "_routes.conf"

// route is what conductor.js reads: where the release serves.
type route struct {
	Release  string `json:"release"`
	Upstream string `json:"upstream"` // host:port of its web processes
	Static   string `json:"static"`   // its static files' dir, ending in "/"
}

func (n *Nginx) routesDir() string  { return filepath.Join(n.Dir, "routes") }
func (n *Nginx) scriptPath() string { return filepath.Join(n.Dir, "conductor.js") }

// RoutePath is the file naming the release an app's site serves.
func (n *Nginx) RoutePath(app string) string { return filepath.Join(n.routesDir(), app+".json") }

// routeData is what the routes template needs.
func (n *Nginx) routeData() map[string]any { return map[string]any{"Script": n.scriptPath()} }

// writeScript puts conductor.js and the routes dir in place. nginx's
// master reads the script as root; its workers (nobody) read the routes,
// which hold nothing secret (a loopback port, a static dir, the release
// id every answer carries), by name only: the dir lists for no one.
func (n *Nginx) writeScript() error {
	if err := checkPath(n.scriptPath()); err != nil {
		return err
	}
	if err := os.MkdirAll(n.routesDir(), 0o711); err != nil {
		return fmt.Errorf("nginx routes dir: %w", err)
	}
	if err := os.Chmod(n.routesDir(), 0o711); err != nil {
		return fmt.Errorf("nginx routes dir: %w", err)
	}
	return writeFileAtomic(n.scriptPath(), routeScript, 0o644)
}

// siteRoute checks a site's release, port and static dir and renders its
// route file.
func siteRoute(s Site) ([]byte, error) {
	if s.Port < 1 || s.Port > 65535 {
		return nil, fmt.Errorf("nginx: invalid port %d for %s", s.Port, s.App)
	}
	if err := checkPath(s.StaticDir); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(s.StaticDir) {
		return nil, fmt.Errorf("nginx: static dir %q is not an absolute path", s.StaticDir)
	}
	// JSON would replace bytes that are not UTF-8, naming another path.
	if !utf8.ValidString(s.StaticDir) {
		return nil, fmt.Errorf("nginx: static dir %q is not UTF-8", s.StaticDir)
	}
	return json.Marshal(route{
		Release:  s.Release,
		Upstream: "127.0.0.1:" + strconv.Itoa(s.Port),
		Static:   filepath.Clean(s.StaticDir) + "/",
	})
}

// writeRoute points the app's site at the release in data, in one rename:
// the next request nginx reads it for goes there.
func (n *Nginx) writeRoute(app string, data []byte) error {
	if err := writeFileAtomic(n.RoutePath(app), data, 0o644); err != nil {
		return fmt.Errorf("write the route of %s: %w", app, err)
	}
	return nil
}

// tokenPlaceholder stands for the site's token while it is hashed.
const tokenPlaceholder = "@CONDUCTOR_SITE_TOKEN@"

// withToken replaces the placeholder in a rendered site by a hash of the
// site: the X-Conductor-Site header then tells which site nginx's workers
// run, and an unchanged site needs no reload.
func withToken(conf []byte) ([]byte, string) {
	sum := sha256.Sum256(conf)
	token := hex.EncodeToString(sum[:])[:16]
	return bytes.ReplaceAll(conf, []byte(tokenPlaceholder), []byte(token)), token
}

// writeFileAtomic writes data to path through a temp file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil { // whatever the umask
		return err
	}
	return os.Rename(tmp, path)
}

// ServedRelease tells which release an app's site serves: its route's,
// "" when the app has no site, and "?" when the site does not read a
// route (written by an older Conductor) or the route is missing or
// unreadable — a site to write again.
func (n *Nginx) ServedRelease(app string) string {
	site, err := os.ReadFile(n.SitePath(app))
	if err != nil {
		return ""
	}
	if !bytes.Contains(site, []byte("$conductor_route")) {
		return "?"
	}
	raw, err := os.ReadFile(n.RoutePath(app))
	if err != nil {
		return "?"
	}
	var r route
	if err := json.Unmarshal(raw, &r); err != nil || r.Release == "" {
		return "?"
	}
	return r.Release
}

// RemoveRoutesConf removes the route lookup from the host's nginx
// (`conductor uninstall`, once no site of Conductor's is left) and
// reloads it if it runs.
func (n *Nginx) RemoveRoutesConf(ctx context.Context) error {
	if !n.System {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	conf := filepath.Join(n.SitesDir, systemRoutesConf)
	if err := n.checkOurs(conf); err != nil {
		return err
	}
	if err := os.Remove(conf); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	if n.masterPid() == 0 {
		return nil
	}
	if err := n.test(ctx); err != nil {
		return err
	}
	return n.reload()
}
