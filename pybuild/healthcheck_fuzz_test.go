package pybuild

import (
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

// FuzzHealthchecks: any app.json or config var parses without a panic; a
// refusal is a clear EINVALID message naming app.json or the config var,
// and an accepted check asks for a path on the app's own host within the
// bounds the check step relies on.
func FuzzHealthchecks(f *testing.F) {
	for _, s := range []string{
		`{"healthchecks": {"web": [{"type": "startup", "name": "r", "path": "/health", "content": "ok", "attempts": 5, "timeout": 5, "wait": 1, "initialDelay": 0}]}}`,
		`{"healthchecks": {"web": [{"path": "//evil/"}, {"path": "/a b"}], "worker": [{"uptime": 3}]}}`,
		`{"healthchecks": {"web": [{"path": "/", "attempts": 1e9, "timeout": -1, "status": 600}]}}`,
		`{"healthchecks": null}`, `{"healthchecks": []}`, `[]`, `{"healthchecks": {"web": [null]}}`,
		"none", "/health ok", "/h\x00", "http://x/", "/a#b c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		for _, parse := range []func(string) (*WebChecks, error){
			func(s string) (*WebChecks, error) { return ParseAppJSONHealthchecks([]byte(s)) },
			ParseHealthcheckVar,
		} {
			wc, err := parse(src)
			if err != nil {
				msg := conductor.ErrorMessage(err)
				if conductor.ErrorCode(err) != conductor.EINVALID || !(strings.HasPrefix(msg, "app.json") || strings.HasPrefix(msg, ConfigHealthcheck)) {
					t.Fatalf("refusal without a clear message: %v", err)
				}
				continue
			}
			for _, c := range wc.Checks {
				if checkPath(c.Path) != nil || c.Attempts < 1 || c.Attempts > 100 || c.Timeout <= 0 || c.Wait < 0 || c.InitialDelay < 0 ||
					(c.Status != 0 && (c.Status < 100 || c.Status > 599)) || checkText(c.Content) != nil {
					t.Fatalf("accepted %+v from %q", c, src)
				}
			}
		}
	})
}
