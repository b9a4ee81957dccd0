package natsstore_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hasadna/conductor"
)

// A worker's view of the state over NATS is the conductor's SQLite store:
// results, filled-in arguments and error codes come back as they are.
func TestClientAgainstSQLite(t *testing.T) {
	ctx := context.Background()
	db, c, stop := startState(t)
	c.Timeout = time.Second

	if _, err := c.FindApp(ctx, "nope"); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Fatalf("FindApp(nope) = %v, want ENOTFOUND", err)
	}
	app := &conductor.App{Name: "shop", DBKind: conductor.DBSQLite, Host: "h1", Ports: [2]int{20000, 20001}, SecretKey: "s3cret"}
	if err := db.CreateApp(ctx, app); err != nil {
		t.Fatal(err)
	}
	got, err := c.FindApp(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := db.FindApp(ctx, "shop")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FindApp over NATS = %+v, want %+v", got, want)
	}
	// The app's Redis (REDIS_URL) reaches a worker's deploys, and its
	// absence is ENOTFOUND, as the builder expects.
	if _, err := c.AppRedis(ctx, app.ID); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Errorf("AppRedis without one = %v, want ENOTFOUND", err)
	}
	if err := db.CreateAppRedis(ctx, &conductor.Redis{AppID: app.ID, Port: 20002, Password: "pw", MaxMemory: "64mb", Policy: "noeviction"}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.AppRedis(ctx, app.ID); err != nil || r.URL() != "redis://:pw@127.0.0.1:20002/0" || r.MaxMemory != "64mb" {
		t.Errorf("AppRedis over NATS = %+v, %v", r, err)
	}
	if err := c.ReplaceConfig(ctx, app.ID, map[string]string{"K": "v w\nx"}); err != nil {
		t.Fatal(err)
	}
	if cfg, err := c.Config(ctx, app.ID); err != nil || cfg["K"] != "v w\nx" {
		t.Errorf("Config = %v, %v", cfg, err)
	}
	d := &conductor.Deploy{ID: "20261126T000000-aaaaaaaa", AppID: app.ID, Rev: "abc", Ref: "refs/heads/main", Pusher: "admin"}
	if err := c.CreateDeploy(ctx, d); err != nil || d.Status != conductor.DeployQueued {
		t.Fatalf("CreateDeploy = %v, status %q (want it filled in)", err, d.Status)
	}
	rel := &conductor.Release{ID: d.ID, AppID: app.ID, Rev: "abc", Port: 20000, Dir: "/x", Config: map[string]string{}}
	if err := c.AddRelease(ctx, rel); err != nil || rel.Number != 1 || !rel.Current {
		t.Fatalf("AddRelease = %v, %+v (want number 1, current)", err, rel)
	}
	// Recording the release is the deploy's commit point: it succeeded, so
	// only a deploy still queued is unfinished.
	d2 := &conductor.Deploy{ID: "20261126T000001-bbbbbbbb", AppID: app.ID, Rev: "def", Ref: "refs/heads/main", Pusher: "admin"}
	if err := c.CreateDeploy(ctx, d2); err != nil {
		t.Fatal(err)
	}
	if ids, err := c.FailUnfinishedDeploys(ctx, "h2", "gone"); err != nil || len(ids) != 0 {
		t.Errorf("FailUnfinishedDeploys(h2) = %v, %v: the deploy is on h1", ids, err)
	}
	if ids, err := c.FailUnfinishedDeploys(ctx, "h1", "gone"); err != nil || !reflect.DeepEqual(ids, []string{d2.ID}) {
		t.Errorf("FailUnfinishedDeploys(h1) = %v, %v", ids, err)
	}
	if _, err := c.FindRelease(ctx, app.ID, "v9"); conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Errorf("FindRelease(v9) = %v, want ENOTFOUND", err)
	}
	// A worker's builder writes the certificate its nginx serves from the
	// PEM in the state: it arrives byte for byte.
	if err := db.AddDomain(ctx, app.ID, "shop.example.org"); err != nil {
		t.Fatal(err)
	}
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n")
	cert := &conductor.Certificate{AppID: app.ID, Domain: "shop.example.org", Source: conductor.CertACME, Path: "/data/certs/shop.example.org.pem",
		NotBefore: time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond), NotAfter: time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond), PEM: pem}
	if err := db.PutCertificate(ctx, cert); err != nil {
		t.Fatal(err)
	}
	if certs, err := c.Certificates(ctx, app.ID); err != nil || len(certs) != 1 || string(certs[0].PEM) != string(pem) ||
		certs[0].Domain != cert.Domain || !certs[0].NotAfter.Equal(cert.NotAfter) {
		t.Errorf("Certificates over NATS = %+v, %v; want the one recorded, PEM included", certs, err)
	}

	// ps:limit's limits reach a worker's builder.
	lim := conductor.ProcessLimits{MemoryBytes: 512 << 20, CPUMillis: 1500, Pids: 256}
	if err := db.SetProcessLimits(ctx, app.ID, "worker", lim); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ProcessLimits(ctx, app.ID); err != nil || !reflect.DeepEqual(got, map[string]conductor.ProcessLimits{"worker": lim}) {
		t.Errorf("ProcessLimits over NATS = %v, %v", got, err)
	}

	// With nobody serving, a call waits (a restarting conductor) until the
	// caller gives up.
	stop()
	time.Sleep(100 * time.Millisecond)
	short, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	_, err = c.FindApp(short, "shop")
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) {
		t.Errorf("FindApp with no conductor = %v, want it to retry until the context ends", err)
	}
}
