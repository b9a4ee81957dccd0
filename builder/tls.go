package builder

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/certs"
	"github.com/hasadna/conductor/nginx"
)

// tlsHosts lists the app's domains that have a certificate, for nginx's
// HTTPS server blocks, and writes each certificate (chain and key, from the
// state) into this host's CertsDir, where nginx reads it: on a worker that
// is the only copy. A certificate that cannot be had is left out (its
// domain stays on plain HTTP) rather than failing the switch. A host whose
// nginx serves no HTTPS serves every domain over plain HTTP. printf tells
// what it found (the deploy's output; the start-up reconcile's none).
func (b *Builder) tlsHosts(ctx context.Context, app *conductor.App, domains []string, printf func(string, ...any)) ([]nginx.TLSHost, error) {
	if b.Nginx == nil || b.Nginx.HTTPSListen == "" {
		return nil, nil
	}
	recorded, err := b.Store.Certificates(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	var hosts []nginx.TLSHost
	for _, c := range recorded {
		if !slices.Contains(domains, c.Domain) {
			continue
		}
		path, err := b.certFile(c)
		if err != nil {
			printf("       Warning: the certificate of %s is missing (%v): serving it over plain HTTP", c.Domain, err)
			continue
		}
		hosts = append(hosts, nginx.TLSHost{Host: c.Domain, Cert: path, Key: path})
		printf("       HTTPS: %s (certificate valid until %s)", c.Domain, c.NotAfter.UTC().Format(time.DateOnly))
	}
	return hosts, nil
}

// certFile returns the file nginx reads c from, writing it from the state
// when it differs (mode 0600, one rename, so nginx never sees a chain
// without its key). A certificate recorded without its PEM is read from its
// file on the conductor's host, where it still is.
func (b *Builder) certFile(c *conductor.Certificate) (string, error) {
	if len(c.PEM) == 0 || b.CertsDir == "" {
		_, err := os.Stat(c.Path)
		return c.Path, err
	}
	if err := conductor.ValidateDomain(c.Domain); err != nil {
		return "", err // it names the file
	}
	path := filepath.Join(b.CertsDir, c.Domain+".pem")
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, c.PEM) {
		return path, nil
	}
	if err := certs.WritePrivate(path, c.PEM); err != nil {
		return "", fmt.Errorf("write certificate of %s: %w", c.Domain, err)
	}
	return path, nil
}
