package certs

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A challenge answer is written only under a valid token, as a valid key
// authorization, and removed again; anything else names no file.
func TestChallengeDir(t *testing.T) {
	ctx := context.Background()
	dir := ChallengeDir(filepath.Join(t.TempDir(), "acme"))
	const token = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	const keyAuth = token + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
	for _, bad := range [][2]string{
		{"../../etc/passwd", keyAuth}, {"short", keyAuth}, {token + "/x", keyAuth},
		{token, "no-dot"}, {token, token + ".x\ny"}, {token, token + ".has space"},
	} {
		if err := dir.PutChallenge(ctx, bad[0], bad[1]); err == nil {
			t.Errorf("PutChallenge(%q, %q) was accepted", bad[0], bad[1])
		}
	}
	if entries, _ := os.ReadDir(string(dir)); len(entries) != 0 {
		t.Fatalf("rejected challenges left files: %v", entries)
	}
	if err := dir.PutChallenge(ctx, token, keyAuth); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(string(dir), token)); err != nil || string(b) != keyAuth {
		t.Fatalf("challenge file: %q, %v", b, err)
	}
	if err := dir.RemoveChallenge(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(string(dir), token)); !os.IsNotExist(err) {
		t.Errorf("challenge file still there: %v", err)
	}
	if err := dir.RemoveChallenge(ctx, token); err != nil {
		t.Errorf("removing a removed challenge: %v", err)
	}
	if err := dir.RemoveChallenge(ctx, "../x"); err == nil {
		t.Error("RemoveChallenge(../x) was accepted")
	}
}
