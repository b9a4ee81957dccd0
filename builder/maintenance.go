package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/nginx"
)

// Maintenance mode (maintenance:on/off, and db:restore) lives in the state;
// every site the builder writes (switch, restoreSite, reconcile) renders
// it, so deploys, rollbacks, restarts and conductor restarts keep it.
// Turning it on or off rewrites the serving release's site at once
// (ApplyMaintenance), under the app's site lock, which the switch holds
// from rendering its site to its commit point: a toggle never interleaves
// with a switch and renders the release nginx should serve.

// maxMaintenancePage bounds the repository's maintenance.html that root
// reads and copies for nginx.
const maxMaintenancePage = 1 << 20

// siteLocks holds one lock per app for writing its nginx site.
type siteLocks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// lockSite takes the app's site lock and returns its release.
func (b *Builder) lockSite(app string) func() {
	b.sites.mu.Lock()
	if b.sites.locks == nil {
		b.sites.locks = map[string]*sync.Mutex{}
	}
	l := b.sites.locks[app]
	if l == nil {
		l = &sync.Mutex{}
		b.sites.locks[app] = l
	}
	b.sites.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// SetMaintenance turns the app's maintenance mode on (m) or off (nil) and
// returns once the app's nginx serves the new state: the state first, then
// the serving release's site. For db:restore, which runs on the app's host:
//
//	prev, _ := b.Store.Maintenance(ctx, app.ID) // ENOTFOUND: it was off
//	b.SetMaintenance(ctx, app, &conductor.Maintenance{AppID: app.ID, Message: "Restoring the database", RetryAfter: 60, By: user})
//	… restore …
//	b.SetMaintenance(ctx, app, prev) // prev nil: off again
//
// m is validated here too (message, Retry-After).
func (b *Builder) SetMaintenance(ctx context.Context, app *conductor.App, m *conductor.Maintenance) error {
	if m == nil {
		if err := b.Store.ClearMaintenance(ctx, app.ID); err != nil {
			return err
		}
		return b.ApplyMaintenance(ctx, app)
	}
	if m.Message != "" {
		if err := conductor.ValidateMaintenanceMessage(m.Message); err != nil {
			return err
		}
	}
	if m.RetryAfter < 1 || m.RetryAfter > conductor.MaxMaintenanceRetryAfter {
		return conductor.Errorf(conductor.EINVALID, "invalid Retry-After %d: whole seconds from 1 to %d", m.RetryAfter, conductor.MaxMaintenanceRetryAfter)
	}
	m.AppID = app.ID
	if err := b.Store.SetMaintenance(ctx, m); err != nil {
		return err
	}
	return b.ApplyMaintenance(ctx, app)
}

// ApplyMaintenance rewrites the app's site for its current release with the
// maintenance state as recorded, reloads nginx and waits until nginx serves
// it (and, for up to 5 s, until the workers the reload replaced are gone).
// An app never deployed
// has no site: its first deploy renders the state.
func (b *Builder) ApplyMaintenance(ctx context.Context, app *conductor.App) error {
	if b.Nginx == nil {
		return nil
	}
	unlock := b.lockSite(app.Name)
	defer unlock()
	cur, err := b.Store.CurrentRelease(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		return nil
	} else if err != nil {
		return err
	}
	domains, err := b.Store.Domains(ctx, app.ID)
	if err != nil {
		return err
	}
	site, err := b.releaseSite(ctx, app, cur.ID, cur.Port, cur.Dir, domains, func(format string, args ...any) {
		slog.Warn(fmt.Sprintf(format, args...), "app", app.Name)
	})
	if err != nil {
		return err
	}
	site.MaxBody = maxBody(cur.Config, func(string, ...any) {})
	if err := b.Nginx.WriteSite(ctx, site); err != nil {
		return fmt.Errorf("write the site of %s: %w", app.Name, err)
	}
	if err := b.Nginx.WaitMaintenance(ctx, app.Name+"."+b.Domain, cur.ID, site.Maintenance, 15*time.Second); err != nil {
		return fmt.Errorf("the front nginx does not serve the new state: %w", err)
	}
	// Workers the reload replaced answer only connections they already
	// hold; one held open (a long download, another app's websocket) must
	// not fail the toggle, so this wait is bounded and only logged.
	if err := b.Nginx.WaitOldWorkers(ctx, 5*time.Second); err != nil {
		slog.Warn("maintenance: old nginx workers still finishing their connections", "app", app.Name, "err", err)
	}
	return nil
}

// siteMaintenance is what the site of the app's release in dir renders for
// its maintenance mode: nil when off; else the release's own
// maintenance.html (the top of the repository), read by root without
// following a link (the release is the app user's), or the plain page
// with the message.
func (b *Builder) siteMaintenance(ctx context.Context, app *conductor.App, dir string, printf func(string, ...any)) (*nginx.Maintenance, error) {
	m, err := b.Store.Maintenance(ctx, app.ID)
	if conductor.ErrorCode(err) == conductor.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("read the maintenance mode: %w", err)
	}
	page, err := releaseMaintenancePage(b.Layout.ReleasesDir(app.Name), dir)
	if err != nil {
		printf("       Warning: maintenance.html is not used: %v", err)
	}
	if page == nil {
		page = nginx.PlainMaintenancePage(app.Name, m.Message)
	}
	return &nginx.Maintenance{Page: page, RetryAfter: m.RetryAfter}, nil
}

// releaseMaintenancePage reads dir/maintenance.html, dir being a release
// in releases (root's): nil without one; an error for a link, a
// non-regular file or one over 1 MiB.
func releaseMaintenancePage(releases, dir string) ([]byte, error) {
	rel, err := filepath.Rel(releases, dir)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("%s is not a release directory", dir)
	}
	data, err := safefs.ReadFile(releases, filepath.Join(rel, "maintenance.html"), maxMaintenancePage)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return data, nil
}

// siteMaintenanceStale tells whether the app's site file (naming cur) was
// written for another maintenance state than the recorded one: a toggle
// cut short by a crash, or made while this host's conductor was down.
func (b *Builder) siteMaintenanceStale(ctx context.Context, app *conductor.App, cur *conductor.Release) bool {
	want, err := b.siteMaintenance(ctx, app, cur.Dir, func(string, ...any) {})
	if err != nil {
		slog.Warn("reconcile: could not read the maintenance mode", "app", app.Name, "err", err)
		return false
	}
	raw, err := os.ReadFile(b.Nginx.SitePath(app.Name))
	if err != nil {
		return true
	}
	return siteMaintenanceToken(raw) != want.Token()
}

// siteMaintenanceToken is the maintenance token a site file sends, "" for
// a site out of maintenance.
func siteMaintenanceToken(conf []byte) string {
	const directive = "add_header X-Conductor-Maintenance "
	i := bytes.Index(conf, []byte(directive))
	if i < 0 {
		return ""
	}
	rest := conf[i+len(directive):]
	if j := bytes.IndexAny(rest, " ;"); j >= 0 {
		return string(rest[:j])
	}
	return ""
}
