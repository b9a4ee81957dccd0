package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// corpus is the real-world shapes of examples/ (issue 15): each is pushed
// as it is and must serve its page, built with the Python it asks for.
var corpus = []struct {
	example, app string
	want         []string // in GET /
	build        []string // in the push's output
}{
	{"cookiecutter-uv", "bakery",
		[]string{"Bakery: a cookiecutter-style Django project", "python: 3.13."},
		[]string{"Settings: config.settings.local (from manage.py)", "Python: 3.13 (from .python-version)", "uv.lock"}},
	{"wagtail-requirements", "mysite",
		[]string{"Welcome to mysite, a Wagtail-style project", "python: 3.12.", "django: 6.0."},
		[]string{"Settings: mysite.settings.dev", "Python: 3.12 (from .python-version)"}},
	{"poetry-subdir", "shop",
		[]string{"Shop backend: Poetry project in a subdirectory"},
		[]string{"App directory: backend/", "poetry.lock"}},
	{"pipenv", "blog",
		[]string{"Blog: a Pipenv project", "python: 3.12."},
		[]string{"Pipfile.lock"}},
	{"python310", "legacy",
		[]string{"Legacy app pinned to Python 3.10", "python: 3.10.", "django: 4.2."},
		[]string{"Python: 3.10 (from runtime.txt)"}},
	{"compressor-offline", "styled",
		[]string{"Styled with django-compressor, compressed offline", "/static/CACHE/css/output."},
		[]string{"Running bin/post_compile"}},
	{"npm-assets", "assets",
		[]string{"Assets built by npm run build"},
		[]string{"Building assets: npm ci, then npm run build"}},
	{"no-gunicorn", "plain",
		[]string{"Plain Django, no gunicorn in its requirements"},
		[]string{"adding gunicorn=="}},
	{"pyproject-plain", "notes",
		[]string{"Notes: pyproject.toml without a lock file"},
		[]string{"Settings: notes.config (from notes/wsgi.py)"}},
}

// TestCorpus pushes every example of the corpus to one conductor: settings
// packages, uv/Poetry/Pipenv/pyproject dependencies, Python 3.10/3.12/3.13
// from the registered interpreters, an app in a subdirectory, bin/
// hooks, an npm build and an app without gunicorn.
func TestCorpus(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	for _, c := range corpus {
		t.Run(c.example, func(t *testing.T) {
			work := in.WorkTree(c.example)
			r := in.Push(work, c.app, "main")
			if r.Code != 0 {
				t.Fatalf("push of %s failed: %s", c.example, r)
			}
			for _, w := range c.build {
				if !strings.Contains(r.Stderr, w) {
					t.Errorf("push output lacks %q:\n%s", w, r.Stderr)
				}
			}
			code, body, _ := in.Get(c.app, "/")
			if code != 200 {
				t.Fatalf("GET / = %d %q", code, body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("GET / lacks %q:\n%s", w, body)
				}
			}
		})
	}
	// A project that names no Python version gets the host's default
	// (3.11 on Debian 12); a Django that needs a newer one fails the push
	// with what to change, not only the resolver's report.
	t.Run("no Python version named", func(t *testing.T) {
		work := in.WorkTree("wagtail-requirements")
		in.mustGit(work, "rm", "-q", ".python-version")
		in.Commit(work, "no .python-version")
		r := in.Push(work, "nopython", "main")
		if r.Code == 0 {
			t.Fatalf("push of a Django 6 project on the default Python succeeded: %s", r)
		}
		for _, w := range []string{"installing the dependencies failed", "the app names no Python version", "name a Python version that does in .python-version"} {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("push output lacks %q:\n%s", w, r.Stderr)
			}
		}
	})
	// A DJANGO_SETTINGS_MODULE config var wins over manage.py, as on
	// Heroku: the restart it causes builds the wrapper on production's.
	t.Run("settings from a config var", func(t *testing.T) {
		r := in.SSH(in.AdminKey, "config:set bakery DJANGO_SETTINGS_MODULE=config.settings.production DJANGO_SECRET_KEY=not-a-secret-for-tests DJANGO_SECURE_SSL_REDIRECT=False")
		if r.Code != 0 {
			t.Fatalf("config:set: %s", r)
		}
		if !strings.Contains(r.Stderr+r.Stdout, "Settings: config.settings.production (from the DJANGO_SETTINGS_MODULE config var)") {
			t.Errorf("the restart did not take the config var's settings module: %s", r)
		}
		if code, body, _ := in.Get("bakery", "/"); code != 200 || !strings.Contains(body, "Bakery") {
			t.Fatalf("GET / with production settings = %d %q", code, body)
		}
	})
	// SECURE_SSL_REDIRECT on (cookiecutter's production default): the app
	// answers plain HTTP with a redirect to https, and the health check
	// takes that as up instead of following it.
	t.Run("health check with an HTTPS redirect", func(t *testing.T) {
		r := in.SSH(in.AdminKey, "config:set bakery DJANGO_SECURE_SSL_REDIRECT=True")
		if r.Code != 0 {
			t.Fatalf("config:set: %s", r)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+in.HTTPAddr+"/", nil)
		req.Host = "bakery.localhost"
		noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(resp.Header.Get("Location"), "https://bakery.localhost") {
			t.Errorf("GET / = %d to %q, want a redirect to https", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}
