package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/certs"
)

// The TLS part of an app's host: the conductor's certificate manager runs
// the ACME order, and the nginx that must answer the CA's HTTP-01 challenge
// and serve the certificate is the one of the app's host. The certificate
// itself reaches the host through the state (the builder writes it).

type (
	challengeRequest struct {
		Token   string `json:"token"`
		KeyAuth string `json:"key_auth,omitempty"` // "" removes the challenge
	}
	forgetCertsRequest struct {
		Domains []string `json:"domains"`
	}
)

// challenge publishes or removes an HTTP-01 answer in this host's nginx
// challenge dir.
func (h *Host) challenge(ctx context.Context, data []byte) (any, error) {
	req, err := decode[challengeRequest](data)
	if err != nil {
		return nil, err
	}
	if h.ChallengeDir == "" {
		return nil, conductor.Errorf(conductor.EUNAVAILABLE, "host %s does not serve HTTPS: start it with --https-addr", h.Name)
	}
	dir := certs.ChallengeDir(h.ChallengeDir)
	if req.KeyAuth == "" {
		return nil, dir.RemoveChallenge(ctx, req.Token)
	}
	return nil, dir.PutChallenge(ctx, req.Token, req.KeyAuth)
}

// forgetCerts deletes the certificate files of domains an app no longer
// has (domains:remove, apps:destroy) once its site no longer names them.
func (h *Host) forgetCerts(_ context.Context, data []byte) (any, error) {
	req, err := decode[forgetCertsRequest](data)
	if err != nil {
		return nil, err
	}
	for _, d := range req.Domains {
		if err := conductor.ValidateDomain(d); err != nil {
			return nil, err
		}
	}
	if h.CertsDir == "" {
		return nil, nil
	}
	for _, d := range req.Domains {
		if err := os.Remove(filepath.Join(h.CertsDir, d+".pem")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("remove certificate of %s: %w", d, err)
		}
	}
	return nil, nil
}

// Responder answers the HTTP-01 challenges of apps on host through its
// agent (certs.Responder).
func (c *Client) Responder(host string) certs.Responder { return hostResponder{c, host} }

type hostResponder struct {
	c    *Client
	host string
}

func (r hostResponder) PutChallenge(ctx context.Context, token, keyAuth string) error {
	if keyAuth == "" {
		return conductor.Errorf(conductor.EINVALID, "empty key authorization")
	}
	return r.c.call(ctx, r.host, "challenge", challengeRequest{Token: token, KeyAuth: keyAuth}, nil)
}

func (r hostResponder) RemoveChallenge(ctx context.Context, token string) error {
	return r.c.call(ctx, r.host, "challenge", challengeRequest{Token: token}, nil)
}

// ForgetCerts deletes the certificate files of the app's former domains on
// its host.
func (c *Client) ForgetCerts(ctx context.Context, app *conductor.App, domains []string) error {
	return c.call(ctx, app.Host, "forget-certs", forgetCertsRequest{Domains: domains}, nil)
}
