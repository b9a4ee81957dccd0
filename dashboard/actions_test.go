package dashboard

import (
	"net/http/httptest"
	"slices"
	"testing"
)

// TestActionCommand: each form becomes its SSH command's argument list,
// and a bad field is refused before anything runs.
func TestActionCommand(t *testing.T) {
	for _, tc := range []struct {
		action string
		form   map[string]string
		want   []string // nil: refused
	}{
		{"rollback", map[string]string{"release": "v3"}, []string{"rollback", "app", "v3"}},
		{"rollback", map[string]string{"release": "3"}, []string{"rollback", "app", "v3"}},
		{"rollback", map[string]string{"release": "v0"}, nil},
		{"rollback", map[string]string{"release": "v3 --help"}, nil},
		{"rollback", map[string]string{}, nil},
		{"restart", nil, []string{"ps:restart", "app"}},
		{"scale", map[string]string{"type": "web", "count": "2"}, []string{"ps:scale", "app", "web=2"}},
		{"scale", map[string]string{"type": "web", "count": "17"}, nil},
		{"scale", map[string]string{"type": "web", "count": "-1"}, nil},
		{"scale", map[string]string{"type": "we b", "count": "1"}, nil},
		{"scale", map[string]string{"type": "web=3 worker", "count": "1"}, nil},
		{"maintenance-on", nil, []string{"maintenance:on", "app"}},
		{"maintenance-on", map[string]string{"message": "--retry-after=1"}, []string{"maintenance:on", "app", "--message=--retry-after=1"}},
		{"maintenance-on", map[string]string{"message": "two\nlines"}, nil},
		{"maintenance-off", nil, []string{"maintenance:off", "app"}},
		{"destroy", nil, nil},
	} {
		_, args, _, err := actionCommand("app", tc.action, func(k string) string { return tc.form[k] })
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s %v: ran %q, want a refusal", tc.action, tc.form, args)
			}
			continue
		}
		if err != nil || !slices.Equal(args, tc.want) {
			t.Errorf("%s %v = %q, %v; want %q", tc.action, tc.form, args, err, tc.want)
		}
	}
}

// TestSameOrigin: a state-changing request from another site is refused
// by its Sec-Fetch-Site or its Origin.
func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		site, origin string
		ok           bool
	}{
		{"same-origin", "http://conductor.example.com:8080", true},
		{"", "", true}, // not a browser: the CSRF token still applies
		{"cross-site", "", false},
		{"same-site", "http://app.example.com:8080", false},
		{"none", "", false},
		{"", "http://evil.example.net", false},
		{"", "null", false},
		{"same-origin", "http://conductor.example.com:9999", false},
	} {
		r := httptest.NewRequest("POST", "http://conductor.example.com:8080/apps/x/restart", nil)
		if tc.site != "" {
			r.Header.Set("Sec-Fetch-Site", tc.site)
		}
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if err := sameOrigin(r); (err == nil) != tc.ok {
			t.Errorf("Sec-Fetch-Site %q, Origin %q: %v, want ok=%v", tc.site, tc.origin, err, tc.ok)
		}
	}
}
