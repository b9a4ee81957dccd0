package pybuild

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hasadna/conductor"
)

func TestParseAppJSONHealthchecks(t *testing.T) {
	for _, tt := range []struct {
		name    string
		src     string
		want    []Healthcheck
		notes   int
		errPart string
	}{
		{name: "no key", src: `{"name": "x", "conductor": {"directory": "."}}`},
		{name: "null", src: `{"healthchecks": null}`},
		{name: "empty web", src: `{"healthchecks": {"web": []}}`},
		{name: "dokku shape", src: `{"healthchecks": {"web": [{"type": "startup", "name": "ready", "description": "d",
			"path": "/health?full=1", "content": "ok", "attempts": 3, "timeout": 2, "wait": 0, "initialDelay": 1, "port": 5000, "scheme": "http"}]}}`,
			want: []Healthcheck{{Name: "ready", Path: "/health?full=1", Content: "ok", Attempts: 3, Timeout: 2 * time.Second, InitialDelay: time.Second}}},
		{name: "defaults", src: `{"healthchecks": {"web": [{"path": "/up"}]}}`,
			want: []Healthcheck{{Name: "/up", Path: "/up", Attempts: 5, Timeout: 5 * time.Second, Wait: time.Second}}},
		{name: "status", src: `{"healthchecks": {"web": [{"path": "/", "status": 302}]}}`,
			want: []Healthcheck{{Name: "/", Path: "/", Status: 302, Attempts: 5, Timeout: 5 * time.Second, Wait: time.Second}}},
		{name: "other kinds and types are noted", src: `{"healthchecks": {"web": [{"type": "liveness", "path": "/l"}, {"path": "/s"}],
			"worker": [{"type": "startup", "path": "/w"}]}}`,
			want: []Healthcheck{{Name: "/s", Path: "/s", Attempts: 5, Timeout: 5 * time.Second, Wait: time.Second}}, notes: 1},
		{name: "uptime checks", src: `{"healthchecks": {"web": [{"uptime": 3}], "worker": [{"uptime": 5, "whatever": 1}]}}`, notes: 1},
		{name: "bad json", src: `{"healthchecks": `, errPart: "app.json: unexpected end of JSON input"},
		{name: "not an object", src: `{"healthchecks": ["/"]}`, errPart: "app.json healthchecks: want an object"},
		{name: "not a list", src: `{"healthchecks": {"web": {"path": "/"}}}`, errPart: "app.json healthchecks.web: want a list"},
		{name: "check not an object", src: `{"healthchecks": {"web": ["/"]}}`, errPart: "healthchecks.web[0]: want an object"},
		{name: "no path", src: `{"healthchecks": {"web": [{"name": "x"}]}}`, errPart: "healthchecks.web[0].path: missing"},
		{name: "relative path", src: `{"healthchecks": {"web": [{"path": "health"}]}}`, errPart: "healthchecks.web[0].path: \"health\" must start with a single /"},
		{name: "other host", src: `{"healthchecks": {"web": [{"path": "//evil.example/"}]}}`, errPart: "healthchecks.web[0].path"},
		{name: "space in path", src: `{"healthchecks": {"web": [{"path": "/a b"}]}}`, errPart: "holds a space"},
		{name: "newline in content", src: `{"healthchecks": {"web": [{"path": "/", "content": "a\nb"}]}}`, errPart: "healthchecks.web[0].content: holds a control character"},
		{name: "attempts a string", src: `{"healthchecks": {"web": [{"path": "/", "attempts": "5"}]}}`, errPart: "healthchecks.web[0].attempts: want a whole number from 1 to 100"},
		{name: "attempts zero", src: `{"healthchecks": {"web": [{"path": "/", "attempts": 0}]}}`, errPart: "attempts: want a whole number"},
		{name: "timeout fraction", src: `{"healthchecks": {"web": [{"path": "/", "timeout": 1.5}]}}`, errPart: "healthchecks.web[0].timeout: want a whole number"},
		{name: "wait negative", src: `{"healthchecks": {"web": [{"path": "/", "wait": -1}]}}`, errPart: "healthchecks.web[0].wait"},
		{name: "bad status", src: `{"healthchecks": {"web": [{"path": "/", "status": 99}]}}`, errPart: "healthchecks.web[0].status"},
		{name: "bad type", src: `{"healthchecks": {"web": [{"type": "boot", "path": "/"}]}}`, errPart: "healthchecks.web[0].type: \"boot\" is not startup"},
		{name: "command check", src: `{"healthchecks": {"web": [{"command": ["true"]}]}}`, errPart: "healthchecks.web[0].command: not supported"},
		{name: "https", src: `{"healthchecks": {"web": [{"path": "/", "scheme": "https"}]}}`, errPart: "healthchecks.web[0].scheme"},
		{name: "unknown field", src: `{"healthchecks": {"web": [{"path": "/", "contents": "ok"}]}}`, errPart: "healthchecks.web[0].contents: unknown field"},
		{name: "second check named", src: `{"healthchecks": {"web": [{"path": "/"}, {"path": "/", "timeout": 0}]}}`, errPart: "healthchecks.web[1].timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wc, err := ParseAppJSONHealthchecks([]byte(tt.src))
			if tt.errPart != "" {
				if err == nil || conductor.ErrorCode(err) != conductor.EINVALID || !strings.Contains(conductor.ErrorMessage(err), tt.errPart) {
					t.Fatalf("got %+v, %v; want an EINVALID error containing %q", wc, err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(wc.Checks, tt.want) || len(wc.Notes) != tt.notes || wc.None {
				t.Errorf("got %+v, want checks %+v and %d notes", wc, tt.want, tt.notes)
			}
			if (len(tt.want) > 0) != (wc.Source == "from app.json") {
				t.Errorf("source %q", wc.Source)
			}
		})
	}
}

func TestParseHealthcheckVar(t *testing.T) {
	for _, tt := range []struct {
		v       string
		none    bool
		path    string
		content string
		errPart string
	}{
		{v: "none", none: true},
		{v: " NONE ", none: true},
		{v: "/health", path: "/health"},
		{v: "/health  all good here", path: "/health", content: "all good here"},
		{v: "/h?x=1\tok", path: "/h?x=1", content: "ok"},
		{v: "health", errPart: "must start with a single /"},
		{v: "http://x/", errPart: "must start with a single /"},
		{v: "//x/", errPart: "must start with a single /"},
		{v: "/a#b", errPart: "holds a space, control character, #"},
		{v: "/ok \x01", errPart: "control character"},
	} {
		wc, err := ParseHealthcheckVar(tt.v)
		if tt.errPart != "" {
			if err == nil || !strings.Contains(conductor.ErrorMessage(err), tt.errPart) || !strings.Contains(conductor.ErrorMessage(err), ConfigHealthcheck) {
				t.Errorf("ParseHealthcheckVar(%q) = %+v, %v; want an error naming %s and containing %q", tt.v, wc, err, ConfigHealthcheck, tt.errPart)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseHealthcheckVar(%q): %v", tt.v, err)
			continue
		}
		if wc.None != tt.none || (!tt.none && (len(wc.Checks) != 1 || wc.Checks[0].Path != tt.path || wc.Checks[0].Content != tt.content || wc.Checks[0].Attempts == 0)) {
			t.Errorf("ParseHealthcheckVar(%q) = %+v", tt.v, wc)
		}
	}
}

func TestHealthcheckAccepts(t *testing.T) {
	custom := Healthcheck{Path: "/h"}
	content := Healthcheck{Path: "/h", Content: "ok"}
	status := Healthcheck{Path: "/h", Status: 301}
	for _, tt := range []struct {
		h      Healthcheck
		status int
		body   string
		pass   bool
	}{
		{DefaultHealthcheck, 200, "", true},
		{DefaultHealthcheck, 301, "", true}, // SECURE_SSL_REDIRECT: serving
		{DefaultHealthcheck, 404, "", true},
		{DefaultHealthcheck, 499, "", true},
		{DefaultHealthcheck, 500, "", false},
		{DefaultHealthcheck, 503, "", false},
		{custom, 200, "", true},
		{custom, 302, "", true},
		{custom, 404, "", false},
		{custom, 500, "", false},
		{content, 200, "all ok", true},
		{content, 200, "all bad", false},
		{content, 302, "ok", false},
		{content, 500, "ok", false},
		{status, 301, "", true},
		{status, 200, "", false},
	} {
		err := tt.h.Accepts(tt.status, []byte(tt.body))
		if (err == nil) != tt.pass {
			t.Errorf("%+v.Accepts(%d, %q) = %v, want pass %v", tt.h, tt.status, tt.body, err, tt.pass)
		}
	}
}

// WebHealthchecks reads app.json without following a link, and the
// config var wins over it.
func TestWebHealthchecks(t *testing.T) {
	dir := t.TempDir()
	wc, err := WebHealthchecks(dir, nil)
	if err != nil || wc.None || len(wc.Checks) != 0 {
		t.Fatalf("no app.json: %+v, %v", wc, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.json"), []byte(`{"healthchecks": {"web": [{"path": "/health", "content": "ok"}]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if wc, err = WebHealthchecks(dir, map[string]string{}); err != nil || len(wc.Checks) != 1 || wc.Checks[0].Path != "/health" {
		t.Fatalf("app.json: %+v, %v", wc, err)
	}
	if wc, err = WebHealthchecks(dir, map[string]string{ConfigHealthcheck: "none"}); err != nil || !wc.None {
		t.Fatalf("config var none: %+v, %v", wc, err)
	}
	if wc, err = WebHealthchecks(dir, map[string]string{ConfigHealthcheck: "/other"}); err != nil || wc.Checks[0].Path != "/other" {
		t.Fatalf("config var path: %+v, %v", wc, err)
	}
	secret := filepath.Join(t.TempDir(), "secret.json")
	if err := os.WriteFile(secret, []byte(`{"healthchecks": {"web": [{"path": "/"}]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "app.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "app.json")); err != nil {
		t.Fatal(err)
	}
	if wc, err = WebHealthchecks(dir, nil); err == nil || !strings.Contains(conductor.ErrorMessage(err), "app.json is a symbolic link") {
		t.Fatalf("linked app.json: %+v, %v", wc, err)
	}
}
