package pybuild

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hasadna/conductor/process"
)

// TestCorpusServes builds and serves every example app of examples/ the
// way the builder will once pybuild is wired in, outside Conductor: Detect,
// a virtualenv of the chosen interpreter, the install commands with uv
// (lock files converted here), gunicorn when the app has no server, the
// npm build, a settings wrapper like Conductor's local_settings.py,
// check, migrate, collectstatic, bin/post_compile, then the Procfile's web
// process (or gunicorn <wsgi module>) and a GET of / that must show the
// example's page. It needs the network (the package index), uv and npm on
// PATH and the interpreters, so it runs only when asked:
//
//	CONDUCTOR_CORPUS_TEST=1 \
//	CONDUCTOR_PYTHONS=$(echo /root/.pyenv/versions/3.1[0-3]*/bin/python | tr ' ' ,) \
//	go test ./pybuild -run TestCorpusServes -v
//
// CONDUCTOR_PYTHONS lists interpreters (comma-separated paths); the first
// is the default for apps that name no version.
func TestCorpusServes(t *testing.T) {
	if os.Getenv("CONDUCTOR_CORPUS_TEST") == "" {
		t.Skip("set CONDUCTOR_CORPUS_TEST=1 (network, uv, npm and CONDUCTOR_PYTHONS needed)")
	}
	pythons := map[string]string{}
	var versions []string
	var defaultPython string
	for _, p := range strings.Split(os.Getenv("CONDUCTOR_PYTHONS"), ",") {
		if p == "" {
			continue
		}
		out, err := exec.Command(p, "-c", "import platform; print(platform.python_version())").Output()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		v := strings.TrimSpace(string(out))
		pythons[v] = p
		versions = append(versions, v)
		if defaultPython == "" {
			defaultPython = p
		}
	}
	if defaultPython == "" {
		t.Fatal("CONDUCTOR_PYTHONS names no interpreter")
	}

	tests := []struct {
		dir    string
		config map[string]string
		want   []string
	}{
		{"hello", nil, []string{"Hello from Conductor v1"}},
		{"cookiecutter-uv", nil, []string{"Bakery: a cookiecutter-style Django project", "python: 3.13.", "settings: local_settings", "celery broker: redis"}},
		{"cookiecutter-uv", map[string]string{"DJANGO_SETTINGS_MODULE": "config.settings.production", "DJANGO_SECRET_KEY": "x" + strings.Repeat("y", 50), "DJANGO_SECURE_SSL_REDIRECT": "False"},
			[]string{"Bakery: a cookiecutter-style Django project"}},
		{"wagtail-requirements", nil, []string{"Welcome to mysite, a Wagtail-style project", "python: 3.12.", "django: 6.0."}},
		{"poetry-subdir", nil, []string{"Shop backend: Poetry project in a subdirectory", "django: 6.0.", "database: sqlite3"}},
		{"pipenv", nil, []string{"Blog: a Pipenv project", "python: 3.12."}},
		{"python310", nil, []string{"Legacy app pinned to Python 3.10", "python: 3.10.", "django: 4.2."}},
		{"compressor-offline", nil, []string{"Styled with django-compressor, compressed offline", `href="/static/CACHE/css/output.`}},
		{"npm-assets", nil, []string{"Assets built by npm run build"}},
		{"no-gunicorn", nil, []string{"Plain Django, no gunicorn in its requirements"}},
		{"pyproject-plain", nil, []string{"Notes: pyproject.toml without a lock file", "settings: local_settings"}},
	}
	for i, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			tree := filepath.Join(t.TempDir(), "release")
			if err := os.CopyFS(tree, os.DirFS(filepath.Join("..", "examples", tt.dir))); err != nil {
				t.Fatal(err)
			}
			b, err := Detect(tree, tt.config)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("detected: %s", b)
			python := defaultPython
			if b.Python != "" {
				v, err := MatchVersion(b.Python, versions)
				if err != nil {
					t.Fatal(err)
				}
				python = pythons[v]
			}
			work := t.TempDir()
			venv := filepath.Join(work, "venv")
			run(t, work, nil, python, "-m", "venv", venv)
			env := map[string]string{
				"VIRTUAL_ENV": venv, "PATH": filepath.Join(venv, "bin") + ":" + os.Getenv("PATH"),
				"UV_PYTHON_DOWNLOADS": "never", "PYTHONDONTWRITEBYTECODE": "1",
			}
			for k, v := range tt.config {
				env[k] = v
			}
			reqFile := filepath.Join(work, "requirements.txt")
			if r := b.Install.Requirements(); r != nil {
				if err := os.WriteFile(reqFile, r, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range b.Install.Commands(reqFile) {
				run(t, filepath.Join(tree, b.InstallDir), env, c[0], c[1:]...)
			}
			if _, ok := HasWSGIServer(b.Install); !ok {
				run(t, tree, env, "uv", "pip", "install", "gunicorn==23.0.0")
			}
			app := filepath.Join(tree, b.AppDir)
			if data, err := os.ReadFile(filepath.Join(app, "package.json")); err == nil && strings.Contains(string(data), `"build"`) {
				run(t, app, env, "npm", "ci", "--no-audit", "--no-fund")
				run(t, app, env, "npm", "run", "build")
			}
			wrapper := fmt.Sprintf("from %s import *  # noqa\n\nDEBUG = False\nSECRET_KEY = %q\nALLOWED_HOSTS = [\"corpus.localhost\"]\n"+
				"DATABASES = {\"default\": {\"ENGINE\": \"django.db.backends.sqlite3\", \"NAME\": %q}}\n"+
				"STATIC_URL = \"/static/\"\nSTATIC_ROOT = %q\nMEDIA_ROOT = %q\n"+
				"SECURE_PROXY_SSL_HEADER = (\"HTTP_X_FORWARDED_PROTO\", \"https\")\n",
				b.Settings, strings.Repeat("k", 50), filepath.Join(work, "db.sqlite3"), filepath.Join(tree, "staticfiles"), filepath.Join(work, "media"))
			if err := os.WriteFile(filepath.Join(app, "local_settings.py"), []byte(wrapper), 0o644); err != nil {
				t.Fatal(err)
			}
			env["DJANGO_SETTINGS_MODULE"] = "local_settings"
			run(t, app, env, "python", "manage.py", "check")
			run(t, app, env, "python", "manage.py", "migrate", "--noinput")
			run(t, app, env, "python", "manage.py", "collectstatic", "--noinput", "-v", "0")
			if _, err := os.Stat(filepath.Join(app, "bin", "post_compile")); err == nil {
				run(t, app, env, filepath.Join(app, "bin", "post_compile"))
			}

			web := ""
			if pf, err := process.ReadProcfile(filepath.Join(app, "Procfile")); err != nil {
				t.Fatal(err)
			} else if pf != nil {
				web = pf["web"]
			}
			if web == "" {
				m, err := wsgiModule(tree, b.AppDir, b.Settings)
				if err != nil {
					t.Fatal(err)
				}
				web = "gunicorn " + m
			}
			port := freePort(t, 20000+i)
			env["GUNICORN_CMD_ARGS"] = fmt.Sprintf("--bind 127.0.0.1:%d --workers 1", port)
			body := serve(t, app, env, process.ShellArgv(web), port) // as circus runs it
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("the page lacks %q:\n%s", w, body)
				}
			}
		})
	}
}

func environ(env map[string]string) []string {
	out := os.Environ()
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func run(t *testing.T, dir string, env map[string]string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(lookPath(name, env), args...)
	cmd.Dir, cmd.Env = dir, environ(env)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s: ok", name, strings.Join(args, " "))
}

// lookPath finds a command in env's PATH (exec.Command looks in the
// test's own).
func lookPath(name string, env map[string]string) string {
	if strings.Contains(name, "/") || env["PATH"] == "" {
		return name
	}
	for _, d := range filepath.SplitList(env["PATH"]) {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

func freePort(t *testing.T, from int) int {
	for p := from; p < from+1000; p += 37 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// serve starts argv, GETs / until it answers (30 s at most) and returns
// the body; the server's process group is killed at the end.
func serve(t *testing.T, dir string, env map[string]string, argv []string, port int) string {
	t.Helper()
	var log strings.Builder
	cmd := exec.Command(lookPath(argv[0], env), argv[1:]...)
	cmd.Dir, cmd.Env = dir, environ(env)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		req.Host = "corpus.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET / = %s\n%s\nserver log:\n%s", resp.Status, body, log.String())
			}
			return string(body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%q did not answer on port %d:\n%s", argv, port, log.String())
	return ""
}
