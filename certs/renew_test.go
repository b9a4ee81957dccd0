package certs_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/certs"
	"github.com/hasadna/conductor/sqlite"
)

// TestRenewReportsExpiring: a certificate due for renewal that Renew cannot
// renew (given with domains:cert, or no ACME directory) is reported to
// Expiring, once a day per domain; one not due is not.
func TestRenewReportsExpiring(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app := &conductor.App{Name: "web", DBKind: conductor.DBSQLite, Ports: [2]int{20000, 20001}, SecretKey: "sk"}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, c := range []*conductor.Certificate{
		{AppID: app.ID, Domain: "soon.example.org", Source: conductor.CertManual, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 24 * time.Hour)},
		{AppID: app.ID, Domain: "acme.example.org", Source: conductor.CertACME, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 24 * time.Hour)},
		{AppID: app.ID, Domain: "later.example.org", Source: conductor.CertManual, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(80 * 24 * time.Hour)},
	} {
		if err := db.AddDomain(ctx, app.ID, c.Domain); err != nil {
			t.Fatal(err)
		}
		if err := db.PutCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]string{}
	m := &certs.Manager{Store: db, Dir: t.TempDir(), RenewBefore: 30 * 24 * time.Hour,
		Expiring: func(c *conductor.Certificate, why string) {
			if _, dup := got[c.Domain]; dup {
				t.Errorf("%s reported twice", c.Domain)
			}
			got[c.Domain] = why
		}}
	m.Renew(ctx)
	m.Renew(ctx) // the same day: not again
	if len(got) != 2 || !strings.Contains(got["soon.example.org"], "domains:cert") || !strings.Contains(got["acme.example.org"], "no ACME directory") {
		t.Fatalf("Expiring got %v", got)
	}
}
