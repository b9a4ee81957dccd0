package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hasadna/conductor/traffic"
)

func TestHandlerToken(t *testing.T) {
	m := New()
	m.DeployDone("", "succeeded", 2*time.Second)
	m.StepDone("unpack", 30*time.Millisecond)
	m.Request(traffic.Request{App: "shop", Status: 503, Duration: 20 * time.Millisecond})
	m.BackupAges(func(context.Context) ([]BackupAge, error) {
		return []BackupAge{{App: "shop", Alias: "default", Last: time.Now().Add(-time.Hour)}}, nil
	})
	srv := httptest.NewServer(Handler(m.Registry, []byte("s3cret-token-0123456789")))
	defer srv.Close()
	get := func(auth string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret-token-012345678", "s3cret-token-0123456789", "Basic czNjcmV0"} {
		if code, _ := get(auth); code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", auth, code)
		}
	}
	code, body := get("Bearer s3cret-token-0123456789")
	if code != 200 {
		t.Fatalf("with the token: %d", code)
	}
	for _, want := range []string{
		`conductor_deploys_total{kind="deploy",outcome="succeeded"} 1`,
		`conductor_deploy_step_duration_seconds_count{step="unpack"} 1`,
		`conductor_http_requests_total{app="shop",code="5xx"} 1`,
		`conductor_db_backup_age_seconds{alias="default",app="shop"} 3600`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if code, _ := get(""); code != 401 {
		t.Error("no token after a good one: not 401")
	}
	// An empty token never opens the handler.
	empty := httptest.NewServer(Handler(m.Registry, nil))
	defer empty.Close()
	req, _ := http.NewRequest("GET", empty.URL, nil)
	req.Header.Set("Authorization", "Bearer ")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("empty token: %v %v", resp, err)
	}
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "abcdefghijklmnop0123\n", 0o600)
	if tok, err := ReadToken(good); err != nil || string(tok) != "abcdefghijklmnop0123" {
		t.Fatalf("ReadToken = %q, %v", tok, err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		write("open", "abcdefghijklmnop0123", 0o644),
		write("group", "abcdefghijklmnop0123", 0o640),
		write("short", "abc", 0o600),
		write("two", "abcdefghijklmnop0123 second", 0o600),
		link, filepath.Join(dir, "missing"), dir,
	} {
		if _, err := ReadToken(p); err == nil {
			t.Errorf("ReadToken(%s) accepted it", filepath.Base(p))
		}
	}
}
