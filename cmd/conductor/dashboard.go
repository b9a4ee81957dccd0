package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/hasadna/conductor/agent"
	"github.com/hasadna/conductor/dashboard"
	"github.com/hasadna/conductor/gitserver"
	"github.com/hasadna/conductor/nginx"
	"github.com/hasadna/conductor/queue"
	"github.com/hasadna/conductor/sqlite"
	"github.com/hasadna/conductor/traffic"
)

// dashboardOptions configure the web dashboard (package dashboard): a
// loopback listener that the front nginx serves as conductor.<domain>.
type dashboardOptions struct {
	listen            string
	certFile, keyFile string

	// own, when ACME is configured (and no certificate file given),
	// orders and renews conductor.<domain>'s certificate, checked every
	// renewCheck (useACME).
	own        ownCerts
	renewCheck time.Duration
}

// ownCerts keeps certificates of Conductor's own host names
// (certs.Manager.Own).
type ownCerts interface {
	Own(ctx context.Context, domain string) (path string, renewed bool, err error)
	Path(domain string) string
}

// useACME has the dashboard served over HTTPS with a certificate from
// the ACME directory, unless --dashboard-tls-cert gives one.
func (o *dashboardOptions) useACME(own ownCerts, renewCheck time.Duration) {
	if o.certFile == "" {
		o.own, o.renewCheck = own, renewCheck
	}
}

// https tells whether the dashboard is served over HTTPS.
func (o *dashboardOptions) https() bool { return o.certFile != "" || o.own != nil }

func (o *dashboardOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.listen, "dashboard-listen", "127.0.0.1:0", "loopback address of the web dashboard, which nginx serves as conductor.<domain> (port 0: any free port; \"off\": no dashboard)")
	f.StringVar(&o.certFile, "dashboard-tls-cert", "", "PEM certificate for conductor.<domain> (with --dashboard-tls-key and --https-addr): the dashboard is then served over HTTPS only")
	f.StringVar(&o.keyFile, "dashboard-tls-key", "", "PEM key of --dashboard-tls-cert")
}

func (o *dashboardOptions) on() bool { return o.listen != "off" && o.listen != "" }

func (o *dashboardOptions) validate(httpsAddr string) error {
	if !o.on() {
		return nil
	}
	host, _, err := net.SplitHostPort(o.listen)
	if err != nil {
		return fmt.Errorf("--dashboard-listen %q: %w", o.listen, err)
	}
	// Only nginx reaches it: the session cookie and the CSRF checks
	// assume requests come through conductor.<domain>.
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--dashboard-listen %q: must be a loopback address (nginx serves it as conductor.<domain>)", o.listen)
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return errors.New("--dashboard-tls-cert and --dashboard-tls-key go together")
	}
	if o.certFile != "" {
		if httpsAddr == "" {
			return errors.New("--dashboard-tls-cert needs --https-addr")
		}
		for _, p := range []string{o.certFile, o.keyFile} {
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("dashboard TLS: %w", err)
			}
		}
	}
	return nil
}

// host is the dashboard's host name.
func dashboardHost(domain string) string { return "conductor." + domain }

// url is where browsers reach the dashboard, "" when it is off.
func (o *dashboardOptions) url(domain, httpAddr, httpsAddr string) string {
	if !o.on() {
		return ""
	}
	scheme, addr, std := "http", httpAddr, "80"
	if o.https() {
		scheme, addr, std = "https", httpsAddr, "443"
	}
	host := dashboardHost(domain)
	if _, port, err := net.SplitHostPort(addr); err == nil && port != std {
		host += ":" + port
	}
	return scheme + "://" + host
}

// dashboardLive is what the dashboard asks hosts and the job logs.
type dashboardLive struct {
	*agent.Client
	*queue.Queue
}

// startDashboard serves the dashboard on its loopback listener and has the
// front nginx route conductor.<domain> to it.
func (o *dashboardOptions) start(ctx context.Context, data, domain, sshAddr string, appURL func(string) string, db *sqlite.DB,
	srv *gitserver.Server, agents *agent.Client, q *queue.Queue, ngx *nginx.Nginx, stats *traffic.Stats) error {
	if !o.on() {
		return nil
	}
	cfg := dashboard.Config{
		Store: db, Commands: srv, Live: dashboardLive{agents, q}, Secure: o.https(),
		AppURL: appURL, SSH: sshHint(sshAddr),
	}
	if stats != nil { // nil: nginx writes no traffic log (system mode)
		cfg.Traffic = stats
	}
	d, err := dashboard.New(cfg)
	if err != nil {
		return err
	}
	l, err := listenDashboard(o.listen, filepath.Join(data, "dashboard.addr"))
	if err != nil {
		return fmt.Errorf("dashboard: listen on %s: %w", o.listen, err)
	}
	hs := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("dashboard stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	site := nginx.DashboardSite{Host: dashboardHost(domain), Upstream: l.Addr().String()}
	if o.certFile != "" {
		site.TLS = &nginx.TLSHost{Host: site.Host, Cert: o.certFile, Key: o.keyFile}
	}
	if o.own != nil {
		// The certificate a previous start got: the site stays as it was
		// (no reload); keepCert renews it when due.
		if p := o.own.Path(site.Host); fileExists(p) {
			site.TLS = &nginx.TLSHost{Host: site.Host, Cert: p, Key: p}
		}
	}
	if err := ngx.WriteDashboardSite(ctx, site); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	slog.Info("dashboard is serving", "listen", l.Addr().String(), "host", site.Host)
	if o.own != nil {
		go o.keepCert(ctx, ngx, site)
	}
	return nil
}

// keepCert gets conductor.<domain> a certificate from the ACME directory
// and renews it, serving the dashboard over HTTPS once it has one (plain
// HTTP until then, where nginx answers the CA's challenge). A failure is
// retried, from 2 s doubling up to renewCheck.
func (o *dashboardOptions) keepCert(ctx context.Context, ngx *nginx.Nginx, site nginx.DashboardSite) {
	retry := 2 * time.Second
	for {
		wait := o.renewCheck
		path, renewed, err := o.own.Own(ctx, site.Host)
		switch {
		case err != nil:
			slog.Warn("dashboard: no certificate yet for "+site.Host, "err", err, "retry_in", retry)
			wait, retry = retry, min(2*retry, o.renewCheck)
		case renewed || site.TLS == nil:
			site.TLS = &nginx.TLSHost{Host: site.Host, Cert: path, Key: path}
			// An unchanged site (the same file, not renewed) is not reloaded.
			if err := ngx.WriteDashboardSite(ctx, site); err != nil {
				slog.Error("dashboard: serve it over HTTPS", "err", err)
			} else {
				slog.Info("dashboard is served over HTTPS", "host", site.Host, "certificate", path, "renewed", renewed)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// listenDashboard listens on addr. With port 0 it takes the port the
// last start used (kept in the file last) when it is free: nginx's site
// for the dashboard then stays the same across restarts, and nginx is not
// reloaded, which would end the apps' kept-alive connections.
func listenDashboard(addr, last string) (net.Listener, error) {
	if _, port, err := net.SplitHostPort(addr); err != nil || port != "0" {
		return net.Listen("tcp", addr)
	}
	if prev, err := os.ReadFile(last); err == nil {
		host, _, _ := net.SplitHostPort(addr)
		if h, _, err := net.SplitHostPort(strings.TrimSpace(string(prev))); err == nil && h == host {
			if l, err := net.Listen("tcp", strings.TrimSpace(string(prev))); err == nil {
				return l, nil
			}
		}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(last, []byte(l.Addr().String()+"\n"), 0o600); err != nil {
		slog.Warn("dashboard: cannot keep its port for the next start", "err", err)
	}
	return l, nil
}

// sshHint is the ssh command line's start for the login page.
func sshHint(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "git@" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "<this host>"
	}
	if port == "22" {
		return "git@" + host
	}
	return "-p " + port + " git@" + host
}

// appURLs says where an app is served through the front nginx (as
// apps:info does).
func appURLs(domain, httpAddr string) func(string) string {
	port := ""
	if _, p, err := net.SplitHostPort(httpAddr); err == nil && p != "80" {
		port = ":" + p
	}
	return func(app string) string { return "http://" + app + "." + domain + port + "/" }
}
