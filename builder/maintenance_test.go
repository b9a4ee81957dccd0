package builder

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// releaseMaintenancePage reads the release's own page as root may: no
// link followed (the release is the app user's), regular files only,
// bounded; none is not an error.
func TestReleaseMaintenancePage(t *testing.T) {
	releases := t.TempDir()
	rel := filepath.Join(releases, "r1")
	if err := os.MkdirAll(rel, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root's secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(rel, "maintenance.html")
	if got, err := releaseMaintenancePage(releases, rel); got != nil || err != nil {
		t.Errorf("no page: %q, %v; want nil, nil", got, err)
	}
	if err := os.WriteFile(page, []byte("<p>ours</p>"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got, err := releaseMaintenancePage(releases, rel); string(got) != "<p>ours</p>" || err != nil {
		t.Errorf("a page: %q, %v", got, err)
	}
	if err := os.WriteFile(page, bytes.Repeat([]byte("x"), maxMaintenancePage+1), 0o640); err != nil {
		t.Fatal(err)
	}
	if got, err := releaseMaintenancePage(releases, rel); got != nil || err == nil {
		t.Errorf("a page over 1 MiB was read (%d bytes)", len(got))
	}
	os.Remove(page)
	if err := os.Symlink(secret, page); err != nil {
		t.Fatal(err)
	}
	if got, err := releaseMaintenancePage(releases, rel); got != nil || err == nil {
		t.Errorf("a link was followed: %q, %v", got, err)
	}
	// The release dir itself swapped for a link.
	os.RemoveAll(rel)
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "maintenance.html"), []byte("elsewhere"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, rel); err != nil {
		t.Fatal(err)
	}
	if got, err := releaseMaintenancePage(releases, rel); got != nil || err == nil {
		t.Errorf("a linked release dir was followed: %q, %v", got, err)
	}
	if _, err := releaseMaintenancePage(releases, "/etc"); err == nil {
		t.Errorf("a dir outside releases/ was read")
	}
}

func TestSiteMaintenanceToken(t *testing.T) {
	for conf, want := range map[string]string{
		"server {\n    add_header X-Conductor-Release r1 always;\n}\n":                                                       "",
		"server {\n    add_header X-Conductor-Release r1 always;\n    add_header X-Conductor-Maintenance 0123abcd always;\n": "0123abcd",
	} {
		if got := siteMaintenanceToken([]byte(conf)); got != want {
			t.Errorf("siteMaintenanceToken(%q) = %q, want %q", conf, got, want)
		}
	}
}
