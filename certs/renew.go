package certs

import (
	"context"
	"log/slog"
	"time"

	"github.com/hasadna/conductor"
)

// retryFailed is how long the renewal loop waits before trying a domain
// whose renewal failed again, so a broken domain does not hammer the CA.
const retryFailed = time.Hour

// Due reports whether c should be renewed at now.
func (m *Manager) Due(c *conductor.Certificate, now time.Time) bool {
	return !now.Before(c.NotAfter.Add(-m.RenewBefore))
}

// Renew renews every ACME certificate that is due, then has the web server
// load the new files. A failure is recorded on its certificate (domains
// shows it) and tried again later; the others go on.
func (m *Manager) Renew(ctx context.Context) {
	all, err := m.Store.AllCertificates(ctx)
	if err != nil {
		slog.Error("renewal: list certificates", "err", err)
		return
	}
	now := time.Now()
	renewed := map[string][]byte{}
	for _, c := range all {
		if !m.Due(c, now) {
			continue
		}
		if c.Source != conductor.CertACME {
			slog.Warn("a certificate given with domains:cert expires soon: give a new one", "domain", c.Domain, "not_after", c.NotAfter)
			m.expiring(c, now, "it was given with domains:cert: give a new one")
			continue
		}
		if c.LastError != "" && now.Sub(c.UpdatedAt) < retryFailed {
			m.expiring(c, now, "its renewal failed: "+c.LastError)
			continue
		}
		if m.CanIssue() != nil {
			slog.Warn("cannot renew: no ACME directory configured", "domain", c.Domain, "not_after", c.NotAfter)
			m.expiring(c, now, "no ACME directory is configured to renew it")
			continue
		}
		slog.Info("renewing certificate", "domain", c.Domain, "not_after", c.NotAfter)
		nc, leaf, err := m.renew(ctx, c)
		if err != nil {
			slog.Error("renewal failed", "domain", c.Domain, "err", err)
			if err := m.Store.SetCertificateError(ctx, c.AppID, c.Domain, conductor.ErrorMessage(err)); err != nil {
				slog.Error("renewal: record error", "domain", c.Domain, "err", err)
			}
			m.expiring(c, now, "its renewal failed: "+conductor.ErrorMessage(err))
			continue
		}
		slog.Info("certificate renewed", "domain", c.Domain, "not_after", nc.NotAfter)
		if m.Deliver != nil {
			elsewhere, err := m.Deliver(ctx, nc)
			if err != nil {
				slog.Error("renewal: hand the certificate to its app's host", "domain", c.Domain, "err", err)
			}
			if elsewhere {
				continue
			}
		}
		renewed[c.Domain] = leaf
	}
	if len(renewed) > 0 && m.Reload != nil {
		if err := m.Reload(ctx, renewed); err != nil {
			slog.Error("renewal: reload nginx", "err", err)
			return
		}
		slog.Info("nginx serves the renewed certificates", "domains", len(renewed))
	}
}

func (m *Manager) renew(ctx context.Context, c *conductor.Certificate) (*conductor.Certificate, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.obtain(ctx, c.AppID, c.Domain, nil)
	if err != nil {
		return nil, nil, err
	}
	nc, err := m.save(ctx, c.AppID, c.Domain, conductor.CertACME, b)
	if err != nil {
		return nil, nil, err
	}
	return nc, leafDER(b), nil
}

// RenewLoop runs Renew now and then every interval until ctx ends.
func (m *Manager) RenewLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		m.Renew(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// expiring calls Expiring for c, at most once a day per domain.
func (m *Manager) expiring(c *conductor.Certificate, now time.Time, why string) {
	if m.Expiring == nil || now.Sub(m.warned[c.Domain]) < 24*time.Hour {
		return
	}
	if m.warned == nil {
		m.warned = map[string]time.Time{}
	}
	m.warned[c.Domain] = now
	m.Expiring(c, why)
}
