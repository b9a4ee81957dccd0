package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

// TestKeyCache: a key removed, or a user removed or promoted, through this
// DB is seen by the next lookup; a change by another process (another DB
// handle on the same file) within the cache's ttl; a new key at once.
func TestKeyCache(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fp := func(c byte) string { return "SHA256:" + string(make43(c)) }
	mustFind := func(db *DB, f, name string, admin bool) {
		t.Helper()
		u, err := db.FindUserByFingerprint(ctx, f)
		if err != nil || u.Name != name || u.Admin != admin {
			t.Fatalf("find %s: %+v, %v; want %s admin=%v", f, u, err, name, admin)
		}
	}
	mustMiss := func(db *DB, f string) {
		t.Helper()
		if u, err := db.FindUserByFingerprint(ctx, f); conductor.ErrorCode(err) != conductor.ENOTFOUND {
			t.Fatalf("find %s: %+v, %v; want not found", f, u, err)
		}
	}
	if _, _, err := db.AddUserKey(ctx, "boss", true, fp('a'), "k"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.AddUserKey(ctx, "dev", false, fp('b'), "k"); err != nil {
		t.Fatal(err)
	}
	mustFind(db, fp('a'), "boss", true)
	mustFind(db, fp('b'), "dev", false)
	u, _ := db.FindUserByFingerprint(ctx, fp('b'))
	u.Admin = true // a caller changing its copy changes nothing cached
	mustFind(db, fp('b'), "dev", false)

	// Changes through this DB are seen at once.
	if _, _, err := db.AddUserKey(ctx, "dev", true, fp('c'), "k"); err != nil { // promotes dev
		t.Fatal(err)
	}
	mustFind(db, fp('b'), "dev", true)
	if _, err := db.RemoveKey(ctx, fp('b')); err != nil {
		t.Fatal(err)
	}
	mustMiss(db, fp('b'))
	mustFind(db, fp('c'), "dev", true)
	if err := db.RemoveUser(ctx, "dev"); err != nil {
		t.Fatal(err)
	}
	mustMiss(db, fp('c'))

	// Another process: its new key works at once, its removal within ttl.
	other, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	db.keys.ttl = 100 * time.Millisecond
	if _, _, err := other.AddUserKey(ctx, "ops", false, fp('d'), "k"); err != nil {
		t.Fatal(err)
	}
	mustFind(db, fp('d'), "ops", false)
	if _, err := other.RemoveKey(ctx, fp('d')); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := db.FindUserByFingerprint(ctx, fp('d')); conductor.ErrorCode(err) == conductor.ENOTFOUND {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a key removed by another process was still found 10 s later")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func make43(c byte) []byte {
	b := make([]byte, 43)
	for i := range b {
		b[i] = c
	}
	return b
}
