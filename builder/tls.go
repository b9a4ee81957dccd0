package builder

import (
	"context"
	"os"
	"slices"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/nginx"
)

// certificateStore is the part of the store that knows TLS certificates
// (the SQLite store on the conductor's host, where the certificate files
// are). A builder whose store lacks it serves every domain over plain HTTP.
type certificateStore interface {
	Certificates(ctx context.Context, appID int64) ([]*conductor.Certificate, error)
}

// tlsHosts lists the app's domains that have a certificate, for nginx's
// HTTPS server blocks. A certificate whose file is missing is left out
// (its domain stays on plain HTTP) rather than failing the switch.
func (d *deployment) tlsHosts(ctx context.Context) ([]nginx.TLSHost, error) {
	cs, ok := d.b.Store.(certificateStore)
	if !ok {
		return nil, nil
	}
	certs, err := cs.Certificates(ctx, d.app.ID)
	if err != nil {
		return nil, err
	}
	var hosts []nginx.TLSHost
	for _, c := range certs {
		if !slices.Contains(d.domains, c.Domain) {
			continue
		}
		if _, err := os.Stat(c.Path); err != nil {
			d.log.Printf("       Warning: the certificate of %s is missing (%v): serving it over plain HTTP", c.Domain, err)
			continue
		}
		hosts = append(hosts, nginx.TLSHost{Host: c.Domain, Cert: c.Path, Key: c.Path})
		d.log.Printf("       HTTPS: %s (certificate valid until %s)", c.Domain, c.NotAfter.UTC().Format(time.DateOnly))
	}
	return hosts, nil
}
