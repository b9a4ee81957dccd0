package nginx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Maintenance puts a site in maintenance mode (maintenance:on): every
// request but the static files, the uploads and ACME challenges is answered
// 503 with Retry-After and Page. Page is a copy in nginx's own directory
// (root's), never a file of the app's: nginx's workers must read it, and
// the release's code is not theirs to read.
type Maintenance struct {
	Page       []byte // the HTML page (the app's maintenance.html, or PlainMaintenancePage)
	RetryAfter int    // seconds
}

// Token names a maintenance state: the site sends it in
// X-Conductor-Maintenance, so WaitMaintenance knows nginx's workers run it.
// "" is the state of a site that is not in maintenance.
func (m *Maintenance) Token() string {
	if m == nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%d\n", m.RetryAfter)
	h.Write(m.Page)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

var plainPage = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Down for maintenance</title>
<style>body{font-family:sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#333}</style>
</head>
<body>
<h1>Down for maintenance</h1>
<p>{{ .Message }}</p>
</body>
</html>
`))

// PlainMaintenancePage is the page of an app whose release has no
// maintenance.html: message, HTML-escaped, or a default sentence.
func PlainMaintenancePage(app, message string) []byte {
	if message == "" {
		message = app + " is down for maintenance and will be back shortly."
	}
	var b strings.Builder
	_ = plainPage.Execute(&b, map[string]string{"Message": message})
	return []byte(b.String())
}

// maintenanceDir holds the maintenance pages, one dir per app.
func (n *Nginx) maintenanceDir() string { return filepath.Join(n.Dir, "maintenance") }

// maintenancePage is where the site in state m reads its page.
func (n *Nginx) maintenancePage(app string, m *Maintenance) string {
	return filepath.Join(n.maintenanceDir(), app, m.Token()+".html")
}

// maintenanceData is what the site template renders for m.
func (n *Nginx) maintenanceData(app string, m *Maintenance) (map[string]any, error) {
	if m == nil {
		return nil, nil
	}
	if m.RetryAfter < 1 || m.RetryAfter > 86400 {
		return nil, fmt.Errorf("nginx: invalid Retry-After %d", m.RetryAfter)
	}
	page := n.maintenancePage(app, m)
	if err := checkPath(page); err != nil {
		return nil, err
	}
	return map[string]any{"Page": page, "RetryAfter": m.RetryAfter, "Token": m.Token()}, nil
}

// writeMaintenancePage puts the page of m where the site reads it, before
// the site names it. The dirs are root's; nginx's workers (nobody) pass
// through them and read the page, which every visitor sees anyway. Pages
// of earlier states go once older than a few minutes: an old worker
// finishing its connections may still serve one.
func (n *Nginx) writeMaintenancePage(app string, m *Maintenance) error {
	dir := filepath.Join(n.maintenanceDir(), app)
	for _, d := range []string{n.maintenanceDir(), dir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("maintenance page dir: %w", err)
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return fmt.Errorf("maintenance page dir: %w", err)
		}
	}
	if m != nil {
		path := n.maintenancePage(app, m)
		tmp := path + ".tmp"
		_ = os.Remove(tmp)
		if err := os.WriteFile(tmp, m.Page, 0o644); err != nil {
			return fmt.Errorf("write the maintenance page: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write the maintenance page: %w", err)
		}
		now := time.Now()
		_ = os.Chtimes(path, now, now) // the same page again is current again
	}
	entries, _ := os.ReadDir(dir)
	keep := ""
	if m != nil {
		keep = m.Token() + ".html"
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && e.Name() != keep && time.Since(info.ModTime()) > 10*time.Minute {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return nil
}

// removeMaintenancePages forgets an app's pages (its site is gone).
func (n *Nginx) removeMaintenancePages(app string) error {
	err := os.RemoveAll(filepath.Join(n.maintenanceDir(), app))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// WaitMaintenance waits until nginx serves host in maintenance state m
// (nil: out of maintenance) for release, i.e. its new workers run the site
// WriteSite wrote, and those its reloads replaced take no new connections.
// They may still answer connections they hold (WaitOldWorkers).
func (n *Nginx) WaitMaintenance(ctx context.Context, host, release string, m *Maintenance, timeout time.Duration) error {
	token := m.Token()
	what := "out of maintenance"
	if m != nil {
		what = "in maintenance"
	}
	return n.waitHeaders(ctx, host, timeout, what, func(h http.Header) bool {
		return h.Get("X-Conductor-Release") == release && h.Get("X-Conductor-Maintenance") == token
	})
}
