package nginx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/hasadna/conductor/internal/lazyre"
)

// TLSHost is a host name of a site served over HTTPS with its certificate.
// Plain HTTP requests for it are redirected to HTTPS, except the ACME
// challenge path.
type TLSHost struct {
	Host string
	Cert string // PEM file for ssl_certificate
	Key  string // PEM file for ssl_certificate_key (may be Cert)
}

// ChallengeDir is the directory every host name serves at
// /.well-known/acme-challenge/, for ACME HTTP-01 challenges.
func (n *Nginx) ChallengeDir() string { return filepath.Join(n.Dir, "acme-challenge") }

// listenRE is what a listen address may be: it is rendered bare.
var listenRE = lazyre.New(`^[A-Za-z0-9.\-]*(\[[0-9A-Fa-f:.]+\])?:[0-9]{1,5}$`)

// tlsSite is what the site template needs to split a site's hosts into
// plain HTTP ones and HTTPS ones.
type tlsSite struct {
	PlainHosts   []string  // server_name of the plain HTTP server block
	Hosts        []tlsHost // each gets a redirect block and an HTTPS block
	Listen       string    // HTTPS listen address
	RedirectPort string    // ":8443", or "" for 443
	ChallengeDir string
}

// tlsHost is a TLS host as the site renders it: with a fingerprint of its
// certificate and key files, so a renewed certificate (new contents at the
// same paths) changes the site, and WriteSite reloads nginx to load it.
type tlsHost struct {
	TLSHost
	Fingerprint string
}

// fingerprint hashes the contents of files ("" if one cannot be read:
// nginx -t then says why).
func fingerprint(files ...string) string {
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return ""
		}
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// tlsData checks a site's TLS hosts and splits its hosts. Without an
// HTTPS address every host stays plain HTTP.
func (n *Nginx) tlsData(s Site) (*tlsSite, error) {
	t := &tlsSite{ChallengeDir: n.ChallengeDir()}
	if err := checkPath(t.ChallengeDir); err != nil {
		return nil, err
	}
	if n.HTTPSListen == "" {
		t.PlainHosts = s.Hosts
		return t, nil
	}
	_, port, err := net.SplitHostPort(n.HTTPSListen)
	if err != nil || !listenRE.MatchString(n.HTTPSListen) {
		return nil, fmt.Errorf("nginx: invalid HTTPS listen address %q", n.HTTPSListen)
	}
	t.Listen = n.HTTPSListen
	if port != "443" {
		t.RedirectPort = ":" + port
	}
	secure := map[string]bool{}
	for _, h := range s.TLS {
		if err := ValidateHost(h.Host); err != nil {
			return nil, err
		}
		if !slices.Contains(s.Hosts, h.Host) {
			return nil, fmt.Errorf("nginx: TLS host %s is not one of the site's hosts", h.Host)
		}
		if secure[h.Host] {
			return nil, fmt.Errorf("nginx: TLS host %s given twice", h.Host)
		}
		for _, p := range []string{h.Cert, h.Key} {
			if p == "" {
				return nil, fmt.Errorf("nginx: TLS host %s has no certificate or key file", h.Host)
			}
			if err := checkPath(p); err != nil {
				return nil, err
			}
		}
		secure[h.Host] = true
		t.Hosts = append(t.Hosts, tlsHost{TLSHost: h, Fingerprint: fingerprint(h.Cert, h.Key)})
	}
	for _, h := range s.Hosts {
		if !secure[h] {
			t.PlainHosts = append(t.PlainHosts, h)
		}
	}
	return t, nil
}

// ReloadCerts has nginx load certificate files that were replaced in place
// (a renewal), and confirms it: for each renewed host it waits until a TLS
// handshake on the HTTPS address presents the new leaf (DER). A reload
// signal can be lost while nginx starts, so it is sent again every 2 s;
// then it waits for the replaced workers to exit.
func (n *Nginx) ReloadCerts(ctx context.Context, renewed map[string][]byte) error {
	if err := n.reloadChecked(ctx); err != nil {
		return err
	}
	if n.HTTPSListen == "" {
		return nil
	}
	const timeout = 15 * time.Second
	start, lastHUP := time.Now(), time.Now()
	for host, leaf := range renewed {
		for !bytes.Equal(n.servedLeaf(ctx, host), leaf) {
			if time.Since(start) > timeout {
				return fmt.Errorf("nginx does not serve the renewed certificate of %s after %s", host, timeout)
			}
			if time.Since(lastHUP) > 2*time.Second {
				slog.Warn("nginx has not loaded the renewed certificate yet; reloading again", "host", host)
				if err := n.reloadChecked(ctx); err != nil {
					return err
				}
				lastHUP = time.Now()
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	// Workers the reload replaced may still accept a connection with the
	// old certificate until they exit.
	return n.WaitOldWorkers(ctx, timeout)
}

func (n *Nginx) reloadChecked(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.test(ctx); err != nil {
		return err
	}
	return n.reload()
}

// servedLeaf is the certificate nginx presents for host, or nil.
func (n *Nginx) servedLeaf(ctx context.Context, host string) []byte {
	d := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 2 * time.Second},
		// Only the presented certificate matters here, not whether it is
		// trusted: the point is which file nginx has loaded.
		Config: &tls.Config{ServerName: host, InsecureSkipVerify: true}, //nolint:gosec
	}
	conn, err := d.DialContext(ctx, "tcp", n.HTTPSListen)
	if err != nil {
		return nil
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil
	}
	return certs[0].Raw
}
