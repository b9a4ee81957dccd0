package offsite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url, want string // want: bucket|prefix|endpoint|secure|region, or "error: …"
	}{
		{"s3://backups/prod/db?endpoint=http://127.0.0.1:9000&region=eu-west-1", "backups|prod/db|127.0.0.1:9000|false|eu-west-1"},
		{"s3://backups", "backups||s3.amazonaws.com|true|us-east-1"},
		{"s3://backups/x/?endpoint=https://minio.example.org", "backups|x|minio.example.org|true|us-east-1"},
		{"https://backups/x", "error: the scheme must be s3"},
		{"s3://Backups/x", "error: bad bucket name"},
		{"s3://b/x", "error: bad bucket name"},
		{"s3://backups/../x", "error: bad prefix segment"},
		{"s3://backups/a//b", "error: bad prefix segment"},
		{"s3://backups/a%20b", "error: bad prefix segment"},
		{"s3://backups/x?endpoint=ftp://h", "error: must be http(s)://host"},
		{"s3://backups/x?endpoint=http://h/path", "error: must be http(s)://host"},
		{"s3://backups/x?token=1", "error: unknown parameter"},
		{"s3://backups/x?region=EU!", "error: bad region"},
		{"s3://user:pw@backups/x", "error: no user"},
	} {
		got, err := ParseURL(tc.url)
		if strings.HasPrefix(tc.want, "error: ") {
			if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want, "error: ")) {
				t.Errorf("ParseURL(%q) = %+v, %v; want %s", tc.url, got, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.url, err)
			continue
		}
		s := strings.Join([]string{got.Bucket, got.Prefix, got.Endpoint, map[bool]string{true: "true", false: "false"}[got.Secure], got.Region}, "|")
		if s != tc.want {
			t.Errorf("ParseURL(%q) = %s, want %s", tc.url, s, tc.want)
		}
	}
}

func TestKey(t *testing.T) {
	tg, err := ParseURL("s3://backups/prod")
	if err != nil {
		t.Fatal(err)
	}
	if k, err := tg.Key("shop", "3-default-20260101T000000Z.sqlite3"); err != nil || k != "prod/shop/3-default-20260101T000000Z.sqlite3" {
		t.Errorf("Key = %q, %v", k, err)
	}
	for _, bad := range [][2]string{{"../x", "f"}, {"shop", "../f"}, {"shop", ".hidden"}, {"shop", "a/b"}, {"Shop", "f"}} {
		if k, err := tg.Key(bad[0], bad[1]); err == nil {
			t.Errorf("Key(%q, %q) = %q, want an error", bad[0], bad[1], k)
		}
	}
}

func TestReadCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "# comment\n\naccess_key_id = AK\nsecret_access_key= SK \n", 0o600)
	if id, secret, err := ReadCredentials(good); err != nil || id != "AK" || secret != "SK" {
		t.Errorf("ReadCredentials = %q %q %v", id, secret, err)
	}
	aws := write("aws", "AWS_ACCESS_KEY_ID=AK\nAWS_SECRET_ACCESS_KEY=SK\n", 0o400)
	if id, secret, err := ReadCredentials(aws); err != nil || id != "AK" || secret != "SK" {
		t.Errorf("ReadCredentials (AWS_ names) = %q %q %v", id, secret, err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		write("loose", "access_key_id = AK\nsecret_access_key = SK\n", 0o640): "chmod 600",
		write("half", "access_key_id = AK\n", 0o600):                          "needs both",
		write("junk", "access_key_id AK\n", 0o600):                            "not key = value",
		write("other", "session_token = x\n", 0o600):                          "unknown key",
		link:                         "",
		filepath.Join(dir, "nosuch"): "no such file",
		dir:                          "not a regular file",
	} {
		_, _, err := ReadCredentials(path)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadCredentials(%s) = %v, want an error with %q", filepath.Base(path), err, want)
		}
	}
}

func TestOpen(t *testing.T) {
	if tg, err := Open(Config{}); tg != nil || err != nil {
		t.Errorf("Open of nothing = %v, %v", tg, err)
	}
	if _, err := Open(Config{Credentials: "/x"}); err == nil || !strings.Contains(err.Error(), "without --backup-s3-url") {
		t.Errorf("credentials without a URL: %v", err)
	}
	if _, err := Open(Config{URL: "s3://backups"}); err == nil || !strings.Contains(err.Error(), "needs --backup-s3-credentials") {
		t.Errorf("a URL without credentials: %v", err)
	}
}
