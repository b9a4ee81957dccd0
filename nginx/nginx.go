// Package nginx runs Conductor's front nginx as a child process and writes
// one server block per app, tested with `nginx -t` before every reload.
package nginx

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	"github.com/hasadna/conductor/supervisor"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{"quote": quote}).ParseFS(templateFS, "templates/*.tmpl"))

// hostRE is what may appear in server_name: DNS names only, so nothing a
// user supplies can open a block or end a directive.
var hostRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateHost checks a host name for a vhost.
func ValidateHost(h string) error {
	if len(h) > 253 || !hostRE.MatchString(h) {
		return fmt.Errorf("invalid host name %q", h)
	}
	return nil
}

// quote renders a string as an nginx double-quoted string. nginx has no
// escape for "$" (it always starts a variable), so paths with "$" are
// refused by checkPath before they get here.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return `"` + r.Replace(s) + `"`
}

// checkPath refuses paths nginx cannot take literally.
func checkPath(p string) error {
	if strings.ContainsAny(p, "$\x00\n\r") {
		return fmt.Errorf("nginx cannot use the path %q: it contains $ or a control character", p)
	}
	return nil
}

// Nginx is Conductor's own nginx under Dir, listening on Listen.
type Nginx struct {
	Bin    string // nginx binary
	Dir    string // prefix: nginx.conf, sites/, logs, temp dirs
	Listen string // host:port
	User   string // worker user when running as root ("" keeps nginx's default)

	mu    sync.Mutex // one config change at a time
	child *supervisor.Child

	wmu      sync.Mutex
	replaced map[int]bool // workers a reload replaced that may still run
}

func (n *Nginx) confPath() string { return filepath.Join(n.Dir, "nginx.conf") }
func (n *Nginx) sitesDir() string { return filepath.Join(n.Dir, "sites") }

// Start writes nginx.conf and starts nginx; it is restarted if it dies,
// until ctx is done. Sites written before are served again.
func (n *Nginx) Start(ctx context.Context) error {
	if err := checkPath(n.Dir); err != nil {
		return err
	}
	for _, d := range []string{n.sitesDir(), filepath.Join(n.Dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	mime := "/etc/nginx/mime.types"
	if _, err := os.Stat(mime); err != nil {
		mime = ""
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "nginx.conf.tmpl", map[string]any{
		"Dir": n.Dir, "Listen": n.Listen, "User": n.User, "MimeTypes": mime,
	}); err != nil {
		return err
	}
	if err := os.WriteFile(n.confPath(), buf.Bytes(), 0o644); err != nil {
		return err
	}
	if err := n.test(ctx); err != nil {
		return err
	}
	n.child = &supervisor.Child{
		Name: "nginx",
		Command: func() *exec.Cmd {
			return exec.Command(n.Bin, "-p", n.Dir, "-c", n.confPath())
		},
		Stop:    syscall.SIGQUIT, // graceful: finish requests in flight
		Grace:   10 * time.Second,
		PidFile: filepath.Join(n.Dir, "nginx.pid"),
	}
	return n.child.Start(ctx)
}

// Wait returns once nginx has stopped after Start's ctx ended.
func (n *Nginx) Wait() { n.child.Wait() }

// test runs `nginx -t` on the current configuration.
func (n *Nginx) test(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, n.Bin, "-t", "-q", "-p", n.Dir, "-c", n.confPath()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("nginx -t: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (n *Nginx) reload() error {
	// The workers running now are replaced by this reload.
	if master := n.child.Pid(); master != 0 {
		n.wmu.Lock()
		if n.replaced == nil {
			n.replaced = map[int]bool{}
		}
		for pid := range workerPids(master) {
			n.replaced[pid] = true
		}
		n.wmu.Unlock()
	}
	if err := n.child.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload nginx: %w", err)
	}
	return nil
}

// WaitServing waits until nginx answers for host with the given release in
// X-Conductor-Release, i.e. its workers run the configuration WriteSite
// wrote. A reload signal that arrives while nginx is busy starting can be
// lost, so it is sent again every 2 s.
func (n *Nginx) WaitServing(ctx context.Context, host, release string, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	start := time.Now()
	lastHUP := start
	for time.Since(start) < timeout {
		req, _ := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+n.Listen+"/static/", nil)
		req.Host = host
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.Header.Get("X-Conductor-Release") == release {
				// New workers serve it; old ones may still accept a
				// connection with the old configuration until they exit.
				return n.WaitOldWorkers(ctx, timeout)
			}
		}
		if time.Since(lastHUP) > 2*time.Second {
			slog.Warn("nginx has not loaded the new site yet; reloading again", "host", host, "release", release)
			_ = n.reload()
			lastHUP = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("nginx did not serve release %s for %s within %s (see %s)", release, host, timeout, filepath.Join(n.Dir, "error.log"))
}

// WaitOldWorkers waits (up to timeout) until the workers that nginx
// replaced on its reloads have exited. Until then they may still accept a
// connection and answer it with the old configuration, and they finish
// requests already proxied to an app's old processes, which must outlive
// them.
func (n *Nginx) WaitOldWorkers(ctx context.Context, timeout time.Duration) error {
	master := n.child.Pid()
	if master == 0 {
		return errors.New("nginx is not running")
	}
	deadline := time.Now().Add(timeout)
	for {
		live := workerPids(master)
		n.wmu.Lock()
		for pid := range n.replaced {
			if !live[pid] {
				delete(n.replaced, pid)
			}
		}
		left := len(n.replaced)
		n.wmu.Unlock()
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d old nginx workers still running after %s", left, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// workerPids returns the live (not zombie) children of nginx's master.
func workerPids(master int) map[int]bool {
	pids := map[int]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the ")" that ends the command name: state, ppid, …
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 2 && f[0] != "Z" && f[1] == strconv.Itoa(master) {
			pids[pid] = true
		}
	}
	return pids
}

// Site is one app's server block.
type Site struct {
	App       string
	Release   string
	Hosts     []string // server_name entries, validated
	Port      int      // the app's web port on 127.0.0.1
	StaticDir string   // served at /static/
}

// WriteSite installs or replaces an app's server block and reloads nginx.
// If nginx rejects the new configuration, the old file is put back.
func (n *Nginx) WriteSite(ctx context.Context, s Site) error {
	conf, err := n.siteConf(s)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	path := filepath.Join(n.sitesDir(), s.App+".conf")
	old, oldErr := os.ReadFile(path)
	if err := writeAtomic(path, conf); err != nil {
		return err
	}
	if err := n.test(ctx); err != nil {
		if oldErr == nil {
			_ = writeAtomic(path, old)
		} else {
			_ = os.Remove(path)
		}
		return err
	}
	return n.reload()
}

// tokenRE is what the app name and release id may be: they are rendered
// bare (a comment, a header value) and the app name is the file's name.
var tokenRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// siteConf checks a site's values and renders its server block.
func (n *Nginx) siteConf(s Site) ([]byte, error) {
	if !tokenRE.MatchString(s.App) || !tokenRE.MatchString(s.Release) {
		return nil, fmt.Errorf("nginx: invalid app name %q or release id %q", s.App, s.Release)
	}
	for _, h := range s.Hosts {
		if err := ValidateHost(h); err != nil {
			return nil, err
		}
	}
	if err := checkPath(s.StaticDir); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "site.conf.tmpl", map[string]any{
		"App": s.App, "Release": s.Release, "Hosts": s.Hosts, "Port": s.Port,
		"StaticDir": s.StaticDir, "Listen": n.Listen,
	}); err != nil {
		return nil, fmt.Errorf("render site %s: %w", s.App, err)
	}
	return buf.Bytes(), nil
}

// RemoveSite deletes an app's server block and reloads nginx.
func (n *Nginx) RemoveSite(ctx context.Context, app string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := os.Remove(filepath.Join(n.sitesDir(), app+".conf")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return n.reload()
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
