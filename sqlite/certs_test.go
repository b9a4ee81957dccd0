package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

func TestCertificates(t *testing.T) {
	ctx := context.Background()
	db, _ := openTest(t)
	app := mustApp(t, db, "web", 20000, 20001)
	nb := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := &conductor.Certificate{AppID: app.ID, Domain: "www.example.org", Source: conductor.CertACME,
		Path: "/data/certs/www.example.org.pem", NotBefore: nb, NotAfter: nb.Add(90 * 24 * time.Hour)}

	// A certificate needs its domain.
	wantCode(t, "PutCertificate without the domain", db.PutCertificate(ctx, c), conductor.ENOTFOUND)
	if err := db.AddDomain(ctx, app.ID, c.Domain); err != nil {
		t.Fatal(err)
	}
	if err := db.PutCertificate(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := db.SetCertificateError(ctx, app.ID, c.Domain, "CA said no"); err != nil {
		t.Fatal(err)
	}
	got, err := db.Certificates(ctx, app.ID)
	if err != nil || len(got) != 1 {
		t.Fatalf("Certificates = %v, %v; want one", got, err)
	}
	if g := got[0]; g.Domain != c.Domain || g.Source != c.Source || g.Path != c.Path ||
		!g.NotBefore.Equal(c.NotBefore) || !g.NotAfter.Equal(c.NotAfter) || g.LastError != "CA said no" {
		t.Fatalf("Certificates[0] = %+v, want %+v with the error", g, c)
	}

	// A renewal replaces the record and clears the error.
	c.Source, c.NotAfter = conductor.CertManual, c.NotAfter.Add(time.Hour)
	if err := db.PutCertificate(ctx, c); err != nil {
		t.Fatal(err)
	}
	all, err := db.AllCertificates(ctx)
	if err != nil || len(all) != 1 || all[0].LastError != "" || all[0].Source != conductor.CertManual || !all[0].NotAfter.Equal(c.NotAfter) {
		t.Fatalf("AllCertificates after renewal = %+v, %v", all, err)
	}

	// Removing the domain removes its certificate.
	if err := db.RemoveDomain(ctx, app.ID, c.Domain); err != nil {
		t.Fatal(err)
	}
	if all, err := db.AllCertificates(ctx); err != nil || len(all) != 0 {
		t.Fatalf("AllCertificates after domains:remove = %+v, %v; want none", all, err)
	}
	wantCode(t, "SetCertificateError without a certificate", db.SetCertificateError(ctx, app.ID, c.Domain, "x"), conductor.ENOTFOUND)
}
