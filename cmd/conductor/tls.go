package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/agent"
	"github.com/hasadna/conductor/certs"
	"github.com/hasadna/conductor/gitserver"
	"github.com/hasadna/conductor/hooks"
	"github.com/hasadna/conductor/nginx"
	"github.com/hasadna/conductor/notify"
	"github.com/hasadna/conductor/queue"
)

// tlsOptions configure HTTPS for apps' custom domains: where nginx listens
// for TLS, the ACME CA certificates come from, and when they are renewed.
type tlsOptions struct {
	directory, email, caFile string
	renewBefore, renewCheck  time.Duration
}

// addFlags registers the TLS flags of serve; httpsAddr is the host's
// (hostOptions.httpsAddr), which its nginx listens on.
func (o *tlsOptions) addFlags(f *pflag.FlagSet, httpsAddr *string) {
	f.StringVar(httpsAddr, "https-addr", "", "address of the front nginx for HTTPS, e.g. 0.0.0.0:443 (\"\": no HTTPS)")
	f.StringVar(&o.directory, "acme-directory", "", "ACME directory URL that domains:add --tls gets certificates from, e.g. Let's Encrypt's https://acme-v02.api.letsencrypt.org/directory (\"\": only domains:cert)")
	f.StringVar(&o.email, "acme-email", "", "contact e-mail of the ACME account (expiry notices)")
	f.StringVar(&o.caFile, "acme-ca-file", "", "PEM file of extra root certificates to trust when talking to the ACME server (a test CA)")
	f.DurationVar(&o.renewBefore, "acme-renew-before", 30*24*time.Hour, "renew a certificate this long before it expires")
	f.DurationVar(&o.renewCheck, "acme-renew-check", 12*time.Hour, "how often to look for certificates to renew")
}

func (o *tlsOptions) validate(httpsAddr string) error {
	if httpsAddr != "" {
		if _, _, err := net.SplitHostPort(httpsAddr); err != nil {
			return fmt.Errorf("--https-addr: %w", err)
		}
	}
	if o.directory != "" {
		u, err := url.Parse(o.directory)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("--acme-directory %q: want an https:// URL", o.directory)
		}
	}
	if o.renewBefore <= 0 || o.renewCheck <= 0 {
		return errors.New("--acme-renew-before and --acme-renew-check must be positive")
	}
	if o.email != "" {
		if a, err := mail.ParseAddress(o.email); err != nil || a.Address != o.email {
			return fmt.Errorf("--acme-email %q is not a plain e-mail address", o.email)
		}
	}
	return nil
}

// tlsHosts is what the certificate manager needs to reach the apps' hosts.
type tlsHosts struct {
	local  string           // this host's name
	ngx    *nginx.Nginx     // this host's nginx
	agents *agent.Client    // the other hosts' agents (ACME challenges)
	queue  *queue.Queue     // restart jobs that take renewed certificates there
	notify *notify.Notifier // cert.expiring
}

// start makes the certificate manager and runs its renewal loop until ctx
// ends. Without --https-addr there is none: nil (the SSH commands then
// say how to enable HTTPS).
func (o *tlsOptions) start(ctx context.Context, data, httpsAddr string, store conductor.Store, hosts tlsHosts) (gitserver.Certificates, error) {
	if httpsAddr == "" {
		return nil, nil
	}
	client, err := acmeHTTPClient(o.caFile)
	if err != nil {
		return nil, err
	}
	m := &certs.Manager{
		Store: store, Dir: filepath.Join(data, "certs"), Challenges: hosts.ngx.ChallengeDir(),
		Directory: o.directory, Email: o.email, HTTPClient: client,
		RenewBefore: o.renewBefore, Reload: hosts.ngx.ReloadCerts,
		// An app on another host: its nginx answers the challenge, and a
		// restart job there writes a renewed certificate for it.
		Responder: func(ctx context.Context, appID int64) (certs.Responder, error) {
			if appID == certs.OwnHost { // the dashboard's: this host's nginx
				return nil, nil
			}
			app, err := appByID(ctx, store, appID)
			if err != nil || app.Host == "" || app.Host == hosts.local {
				return nil, err
			}
			return hosts.agents.Responder(app.Host), nil
		},
		Deliver: func(ctx context.Context, c *conductor.Certificate) (bool, error) {
			app, err := appByID(ctx, store, c.AppID)
			if err != nil || app.Host == "" || app.Host == hosts.local {
				return false, err
			}
			cur, err := store.CurrentRelease(ctx, app.ID)
			if conductor.ErrorCode(err) == conductor.ENOTFOUND {
				return true, nil // its first deploy writes the certificate
			} else if err != nil {
				return true, err
			}
			job := &queue.Job{ID: hooks.NewJobID(), App: app.Name, Host: app.Host, Rev: cur.Rev, Kind: queue.KindRestart,
				Ref: "certificate of " + c.Domain + " renewed", Pusher: "conductor", CreatedAt: time.Now().UTC()}
			return true, hosts.queue.Publish(ctx, job)
		},
	}
	m.Expiring = func(c *conductor.Certificate, why string) {
		app, err := appByID(ctx, store, c.AppID)
		if err != nil {
			slog.Error("cert.expiring: find the app", "domain", c.Domain, "err", err)
			return
		}
		hosts.notify.Emit(notify.CertEvent(app.Name, c.Domain, c.NotAfter, why))
	}
	go m.RenewLoop(ctx, o.renewCheck)
	slog.Info("serving HTTPS", "https", httpsAddr, "acme", o.directory, "renew_before", o.renewBefore)
	return m, nil
}

// appByID finds an app by its id (certificates name apps by id).
func appByID(ctx context.Context, store conductor.Store, id int64) (*conductor.App, error) {
	apps, err := store.ListApps(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		if a.ID == id {
			return a, nil
		}
	}
	return nil, conductor.Errorf(conductor.ENOTFOUND, "no app has id %d", id)
}

// acmeHTTPClient trusts the system roots and, with caFile, the roots in it.
func acmeHTTPClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return &http.Client{Timeout: 30 * time.Second}, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--acme-ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--acme-ca-file %s: no PEM certificate in it", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}, nil
}
