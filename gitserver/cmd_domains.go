package gitserver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor"
)

// Certificates is what the domain commands need for TLS (certs.Manager):
// issue a certificate with ACME, install one a user gives, and delete a
// removed domain's file.
type Certificates interface {
	// CanIssue is nil when an ACME directory is configured.
	CanIssue() error
	Issue(ctx context.Context, appID int64, domain string, log io.Writer) (*conductor.Certificate, error)
	Install(ctx context.Context, appID int64, domain string, pem []byte) (*conductor.Certificate, error)
	Forget(domain string) error
}

// maxCertInput bounds the PEM bundle read from stdin by domains:cert.
const maxCertInput = 64 << 10

// domainArg validates a domain given to domains:add/remove. Names under the
// server's own domain are refused: <app>.<domain> is how every app is
// reached, so one app must not take another's (or a future app's) name.
func (s *Server) domainArg(arg string) (string, error) {
	host := strings.ToLower(arg) // DNS names are case-insensitive
	if err := conductor.ValidateDomain(host); err != nil {
		return "", err
	}
	if host == s.cfg.Domain || strings.HasSuffix(host, "."+s.cfg.Domain) {
		return "", conductor.Errorf(conductor.EINVALID, "domain %s is under %s, which Conductor gives to apps as <app>.%s", host, s.cfg.Domain, s.cfg.Domain)
	}
	return host, nil
}

// checkTLS says why an app cannot have certificates, or nil. The conductor
// runs the ACME orders (and keeps the certificates); the nginx of the app's
// host answers the challenges and serves HTTPS, so that host must be up
// and serve HTTPS.
func (s *Server) checkTLS(ctx context.Context, app *conductor.App) error {
	if s.cfg.Certs == nil {
		return conductor.Errorf(conductor.EUNAVAILABLE, "this server does not serve HTTPS: start conductor serve with --https-addr")
	}
	if app.Host == "" || app.Host == s.cfg.Host {
		return nil
	}
	h, err := s.queue.Host(ctx, app.Host)
	if err != nil {
		return err
	}
	if h.HTTPS == "" {
		return conductor.Errorf(conductor.EUNAVAILABLE, "%s runs on host %s, which does not serve HTTPS: start its worker with --https-addr", app.Name, app.Host)
	}
	return nil
}

// forgetCerts deletes the certificate files of domains the app no longer
// has: the conductor's copy and, for an app on another host, that host's.
// A failure is logged, not returned: the records are gone already.
func (s *Server) forgetCerts(ctx context.Context, app *conductor.App, domains []string) {
	if s.cfg.Certs == nil || len(domains) == 0 {
		return
	}
	for _, d := range domains {
		if err := s.cfg.Certs.Forget(d); err != nil {
			slog.Warn("remove the certificate of a removed domain", "app", app.Name, "domain", d, "err", err)
		}
	}
	if app.Host != "" && app.Host != s.cfg.Host && s.cfg.Agents != nil {
		if err := s.cfg.Agents.ForgetCerts(ctx, app, domains); err != nil {
			slog.Warn("remove certificate files on the app's host", "app", app.Name, "host", app.Host, "err", err)
		}
	}
}

func (s *Server) domainsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "domains <app>",
		Short: "List the host names an app is served at, and their certificates",
		Args:  exactArgs(1, "domains <app> [--json]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			custom, err := s.store.Domains(ctx, app.ID)
			if err != nil {
				return err
			}
			certs, err := s.store.Certificates(ctx, app.ID)
			if err != nil {
				return err
			}
			if asJSON {
				type certJSON struct {
					Domain    string    `json:"domain"`
					Source    string    `json:"source"`
					NotAfter  time.Time `json:"not_after"`
					LastError string    `json:"last_error,omitempty"`
				}
				tls := []certJSON{}
				for _, c := range certs {
					tls = append(tls, certJSON{c.Domain, c.Source, c.NotAfter, c.LastError})
				}
				return printJSON(cmd.OutOrStdout(), map[string]any{"default": app.Name + "." + s.cfg.Domain, "custom": custom, "tls": tls})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%s.%s (default)\n", app.Name, s.cfg.Domain)
			for _, d := range custom {
				i := slices.IndexFunc(certs, func(c *conductor.Certificate) bool { return c.Domain == d })
				if i < 0 {
					fmt.Fprintln(w, d)
					continue
				}
				c := certs[i]
				fmt.Fprintf(w, "%s (https, %s certificate, expires %s)\n", d, c.Source, c.NotAfter.UTC().Format(time.RFC3339))
				if c.LastError != "" {
					fmt.Fprintf(w, "  renewal failed: %s\n", c.LastError)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (s *Server) domainsAddCommand() *cobra.Command {
	var tls bool
	cmd := &cobra.Command{
		Use:   "domains:add <app> <domain> [--tls]",
		Short: "Serve an app at another host name too (nginx server_name and ALLOWED_HOSTS), with --tls over HTTPS",
		Long: "Serve an app at another host name too: it is added to the app's nginx server_name and\n" +
			"Django's ALLOWED_HOSTS, and the app restarts with the same zero-downtime switch as a deploy.\n" +
			"With --tls, Conductor also gets a certificate for it from its ACME CA (HTTP-01: the domain\n" +
			"must resolve to this server and port 80 reach its nginx), serves it over HTTPS and\n" +
			"redirects plain HTTP there; the certificate is renewed before it expires. --tls on a\n" +
			"domain the app has already gets it a certificate.",
		Args: exactArgs(2, "domains:add <app> <domain> [--tls]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			out := cmd.OutOrStdout()
			host, err := s.domainArg(args[1])
			if err != nil {
				return err
			}
			if tls {
				if err := s.checkTLS(ctx, app); err != nil {
					return err
				}
				if err := s.cfg.Certs.CanIssue(); err != nil {
					return err
				}
			}
			added := true
			if err := s.store.AddDomain(ctx, app.ID, host); err != nil {
				if !tls || conductor.ErrorCode(err) != conductor.ECONFLICT {
					return err
				}
				// --tls on a domain the app has already: just the certificate.
				mine, derr := s.store.Domains(ctx, app.ID)
				if derr != nil {
					return derr
				}
				if !slices.Contains(mine, host) {
					return err
				}
				added = false
			}
			if added {
				fmt.Fprintf(out, "Added %s to %s\n", host, app.Name)
				// The app's site now answers the domain over HTTP, ACME
				// challenges included, even with a host nginx (system mode).
				if err := s.redeploy(ctx, app, "domains:add", out); err != nil {
					return err
				}
			}
			if !tls {
				return nil
			}
			fmt.Fprintf(out, "-----> Getting a TLS certificate for %s\n", host)
			c, err := s.cfg.Certs.Issue(ctx, app.ID, host, out)
			if err != nil {
				fmt.Fprintf(out, "%s is served over plain HTTP; run domains:add %s %s --tls again to retry\n", host, app.Name, host)
				return err
			}
			fmt.Fprintf(out, "Certificate for %s valid until %s (renewed before it expires)\n", host, c.NotAfter.UTC().Format(time.RFC3339))
			return s.redeploy(ctx, app, "domains:add --tls", out)
		},
	}
	cmd.Flags().BoolVar(&tls, "tls", false, "get a certificate with ACME and serve the domain over HTTPS")
	return cmd
}

func (s *Server) domainsCertCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "domains:cert <app> <domain> < bundle.pem",
		Short: "Serve a domain over HTTPS with a certificate you give (PEM chain and key on stdin)",
		Long: "Serve one of the app's domains over HTTPS with your own certificate: stdin holds the\n" +
			"PEM certificate (first), its intermediates and the private key, e.g.\n" +
			"  cat fullchain.pem privkey.pem | ssh git@HOST domains:cert <app> <domain>\n" +
			"The key must match the certificate and the certificate cover the domain now. Conductor\n" +
			"does not renew it: give a new one in time (domains shows the expiry).",
		Args: exactArgs(2, "domains:cert <app> <domain> < bundle.pem"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			host, err := s.domainArg(args[1])
			if err != nil {
				return err
			}
			if err := s.checkTLS(ctx, app); err != nil {
				return err
			}
			mine, err := s.store.Domains(ctx, app.ID)
			if err != nil {
				return err
			}
			if !slices.Contains(mine, host) {
				return conductor.Errorf(conductor.ENOTFOUND, "%s has no domain %s: add it with domains:add first", app.Name, host)
			}
			data, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxCertInput+1))
			if err != nil {
				return fmt.Errorf("read certificate: %w", err)
			}
			c, err := s.cfg.Certs.Install(ctx, app.ID, host, data)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Installed the certificate for %s, valid until %s\n", host, c.NotAfter.UTC().Format(time.RFC3339))
			return s.redeploy(ctx, app, "domains:cert", cmd.OutOrStdout())
		},
	}
}

func (s *Server) domainsRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "domains:remove <app> <domain>",
		Short: "Stop serving an app at a host name",
		Args:  exactArgs(2, "domains:remove <app> <domain>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			app := appFromContext(ctx)
			host, err := s.domainArg(args[1])
			if err != nil {
				return err
			}
			// The domain's certificate record goes with it.
			if err := s.store.RemoveDomain(ctx, app.ID, host); err != nil {
				if conductor.ErrorCode(err) == conductor.ENOTFOUND {
					return conductor.Errorf(conductor.ENOTFOUND, "%s has no domain %s", app.Name, host)
				}
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed %s from %s\n", host, app.Name)
			if err := s.redeploy(ctx, app, "domains:remove", cmd.OutOrStdout()); err != nil {
				return err
			}
			// Only now does no nginx site name the certificate file.
			s.forgetCerts(ctx, app, []string{host})
			return nil
		},
	}
}
