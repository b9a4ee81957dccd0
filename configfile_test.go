package conductor

import (
	"path"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateConfigFilePath(t *testing.T) {
	for _, ok := range []string{"secrets.json", ".env", "config/secrets.json", "a/b/c/key.pem", "gcloud-key+1@x.json", "staticfiles.json", "conf/local_settings.py"} {
		if err := ValidateConfigFilePath(ok); err != nil {
			t.Errorf("ValidateConfigFilePath(%q) = %v, want ok", ok, err)
		}
	}
	for _, tt := range []struct{ path, msg string }{
		{"", "empty"},
		{"/etc/passwd", "absolute"},
		{"/secrets.json", "absolute"},
		{"../secrets.json", `may not contain ".."`},
		{"a/../../b", `may not contain ".."`},
		{"./secrets.json", `may not contain "."`},
		{"a//b", "empty component"},
		{"conf/", "names a directory"},
		{"staticfiles/secret.json", "nginx serves"},
		{"staticfiles", "nginx serves"},
		{"__pycache__/x.pyc", "Python's own"},
		{"local_settings.py", "reserved"},
		{"manage.py", "reserved"},
		{"Procfile", "reserved"},
		{"a b.json", "may only hold"},
		{"a\nb", "may only hold"},
		{"a\x1b[2Jb", "may only hold"},
		{"é.json", "may only hold"},
		{"a\\b", "may only hold"},
		{"$HOME/x", "may only hold"},
		{strings.Repeat("a", 201), "more than the 200"},
	} {
		err := ValidateConfigFilePath(tt.path)
		if err == nil || ErrorCode(err) != EINVALID || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ValidateConfigFilePath(%q) = %v, want an EINVALID error saying %q", tt.path, err, tt.msg)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\n\x1b") {
			t.Errorf("the error for %q carries a control character: %q", tt.path, err)
		}
	}
}

func TestValidateMaxBody(t *testing.T) {
	for _, ok := range []string{"1", "1048576", "512k", "512K", "250m", "1M", "1g", "10g", "10240m"} {
		if err := ValidateMaxBody(ok); err != nil {
			t.Errorf("ValidateMaxBody(%q) = %v, want ok", ok, err)
		}
		if err := ValidateConfigValue(MaxBodyVar, ok); err != nil {
			t.Errorf("ValidateConfigValue(%s, %q) = %v, want ok", MaxBodyVar, ok, err)
		}
	}
	for _, bad := range []string{"", "0", "0m", "11g", "10241m", "1t", "1mb", "1.5m", "-1", " 1m", "1m; root /", "1m\n", "m", "999999999999999999999", "100 m"} {
		if err := ValidateMaxBody(bad); err == nil || ErrorCode(err) != EINVALID {
			t.Errorf("ValidateMaxBody(%q) = %v, want EINVALID", bad, err)
		}
		if err := ValidateConfigValue(MaxBodyVar, bad); err == nil {
			t.Errorf("ValidateConfigValue(%s, %q) accepted it", MaxBodyVar, bad)
		}
	}
	// Other vars may hold anything of that shape.
	if err := ValidateConfigValue("OTHER", "1t"); err != nil {
		t.Errorf("ValidateConfigValue(OTHER, 1t) = %v", err)
	}
}

// FuzzConfigFilePath: whatever ValidateConfigFilePath accepts stays below
// the app directory in clean form, outside staticfiles/, of plain
// file-name characters, so root places it with safefs there and nowhere
// else.
func FuzzConfigFilePath(f *testing.F) {
	for _, s := range []string{"secrets.json", "a/b.json", "../x", "/etc/passwd", "a//b", "staticfiles/x", "./x", "a/./b", "x/..", "..", ".", "a\x00b", "local_settings.py", ".env"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidateConfigFilePath(p) != nil {
			return
		}
		if !filepath.IsLocal(p) || path.Clean(p) != p || strings.HasPrefix(p, "staticfiles/") || p == "staticfiles" || p == "local_settings.py" {
			t.Fatalf("accepted %q", p)
		}
		for _, r := range p {
			if !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+@/", r) {
				t.Fatalf("accepted %q with %q", p, r)
			}
		}
	})
}
