package provision

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

// TestEnsureUserBelongsToOneInstance: an app's unix user is reused only by
// the Conductor instance that made it (its home is that instance's project
// dir); another live instance's user of the same name is refused, and the
// user of an instance whose data dir is gone is taken over.
func TestEnsureUserBelongsToOneInstance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("app users are made as root")
	}
	ctx := context.Background()
	const app = "cdt-owner-test"
	_ = RemoveUser(ctx, app)
	t.Cleanup(func() { _ = RemoveUser(ctx, app) })
	first, second := t.TempDir(), t.TempDir()
	homeA, homeB := filepath.Join(first, app), filepath.Join(second, app)
	if err := os.Mkdir(homeA, 0o711); err != nil {
		t.Fatal(err)
	}
	a, err := EnsureUser(ctx, app, homeA)
	if err != nil {
		t.Fatalf("first instance: %v", err)
	}
	if again, err := EnsureUser(ctx, app, homeA); err != nil || again.UID != a.UID {
		t.Fatalf("same instance again: %v, %v", again, err)
	}
	_, err = EnsureUser(ctx, app, homeB)
	if conductor.ErrorCode(err) != conductor.EINVALID || !strings.Contains(err.Error(), "another Conductor instance") {
		t.Fatalf("second instance while the first lives: %v, want a refusal", err)
	}
	if err := os.RemoveAll(first); err != nil {
		t.Fatal(err)
	}
	b, err := EnsureUser(ctx, app, homeB)
	if err != nil || b.UID != a.UID {
		t.Fatalf("second instance once the first is gone: %v, %v", b, err)
	}
	if u, err := user.Lookup(app); err != nil || u.HomeDir != homeB {
		t.Fatalf("home after the takeover = %v, %v; want %s", u, err, homeB)
	}
	// A user Conductor did not make is never taken.
	if _, err := EnsureUser(ctx, "root", homeB); conductor.ErrorCode(err) != conductor.EINVALID {
		t.Fatalf("EnsureUser(root) = %v, want a refusal", err)
	}
}
