package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

// TestDashboardLogins: a token logs in once and only before it expires; a
// session is found by its hash until it expires or is ended.
func TestDashboardLogins(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	if _, _, err := db.AddUserKey(ctx, "root", true, "SHA256:root", "ssh-ed25519 AAAA root"); err != nil { // keys:remove keeps an admin
		t.Fatal(err)
	}
	alice, _, err := db.AddUserKey(ctx, "alice", false, "SHA256:alice1", "ssh-ed25519 AAAA alice1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddKey(ctx, alice.ID, "SHA256:alice2", "ssh-ed25519 AAAA alice2"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := db.AddDashboardToken(ctx, alice.ID, "SHA256:alice1", []byte("tok1"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	s, err := db.UseDashboardToken(ctx, []byte("tok1"), []byte("sess1"), "test", now, now.Add(time.Hour))
	if err != nil || s.User != "alice" || s.ID == 0 {
		t.Fatalf("UseDashboardToken = %+v, %v", s, err)
	}
	_, err = db.UseDashboardToken(ctx, []byte("tok1"), []byte("sess2"), "test", now, now.Add(time.Hour))
	wantCode(t, "a used token", err, conductor.ENOTFOUND)

	if err := db.AddDashboardToken(ctx, alice.ID, "SHA256:alice1", []byte("tok2"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, err = db.UseDashboardToken(ctx, []byte("tok2"), []byte("sess3"), "test", now.Add(2*time.Minute), now.Add(time.Hour))
	wantCode(t, "an expired token", err, conductor.ENOTFOUND)
	_, err = db.UseDashboardToken(ctx, []byte("tok2"), []byte("sess3"), "test", now, now.Add(time.Hour))
	wantCode(t, "an expired token, tried again", err, conductor.ENOTFOUND)

	got, err := db.DashboardSession(ctx, []byte("sess1"), now.Add(2*time.Minute))
	if err != nil || got.ID != s.ID || got.User != "alice" {
		t.Fatalf("DashboardSession = %+v, %v", got, err)
	}
	_, err = db.DashboardSession(ctx, []byte("sess1"), now.Add(2*time.Hour))
	wantCode(t, "an expired session", err, conductor.ENOTFOUND)
	list, err := db.ListDashboardSessions(ctx, alice.ID, now)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListDashboardSessions = %v, %v", list, err)
	}
	if n, err := db.EndDashboardSessions(ctx, alice.ID, 0); err != nil || n != 1 {
		t.Fatalf("EndDashboardSessions = %d, %v", n, err)
	}
	_, err = db.DashboardSession(ctx, []byte("sess1"), now)
	wantCode(t, "an ended session", err, conductor.ENOTFOUND)

	// A session ends with the key that asked for its login URL, not with
	// the user's other keys.
	for i, fp := range []string{"SHA256:alice1", "SHA256:alice2"} {
		tok, sess := []byte(fmt.Sprintf("tok-k%d", i)), []byte(fmt.Sprintf("sess-k%d", i))
		if err := db.AddDashboardToken(ctx, alice.ID, fp, tok, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UseDashboardToken(ctx, tok, sess, "test", now, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.RemoveKey(ctx, "SHA256:alice2"); err != nil {
		t.Fatal(err)
	}
	_, err = db.DashboardSession(ctx, []byte("sess-k1"), now)
	wantCode(t, "a session of a removed key", err, conductor.ENOTFOUND)
	if s, err := db.DashboardSession(ctx, []byte("sess-k0"), now); err != nil || s.Fingerprint != "SHA256:alice1" {
		t.Fatalf("the session of the key kept = %+v, %v", s, err)
	}
}
