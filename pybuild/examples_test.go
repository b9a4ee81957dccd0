package pybuild

import (
	"testing"
)

// TestExamples detects the example apps of the repository (examples/),
// each a shape real projects have (issue 15), as the builder will.
func TestExamples(t *testing.T) {
	tests := []struct {
		dir                string
		config             map[string]string
		appDir, settings   string
		settingsReason     string
		python, pythonFrom string
		installDir         string
		kind               Kind
		wsgiServer         string
		wsgiModule         string
		matched            string // MatchVersion against pyenv's versions
	}{
		{dir: "hello", appDir: ".", settings: "hello.settings", settingsReason: "from manage.py",
			installDir: ".", kind: KindRequirements, wsgiServer: "gunicorn", wsgiModule: "hello.wsgi"},
		{dir: "cookiecutter-uv", appDir: ".", settings: "config.settings.local", settingsReason: "from manage.py",
			python: "3.13", pythonFrom: ".python-version", installDir: ".", kind: KindUV, wsgiServer: "gunicorn", wsgiModule: "config.wsgi", matched: "3.13.0"},
		{dir: "cookiecutter-uv", config: map[string]string{"DJANGO_SETTINGS_MODULE": "config.settings.production"},
			appDir: ".", settings: "config.settings.production", settingsReason: "from the DJANGO_SETTINGS_MODULE config var",
			python: "3.13", pythonFrom: ".python-version", installDir: ".", kind: KindUV, wsgiServer: "gunicorn", wsgiModule: "config.wsgi", matched: "3.13.0"},
		{dir: "wagtail-requirements", appDir: ".", settings: "mysite.settings.dev", settingsReason: "from manage.py",
			python: "3.12", pythonFrom: ".python-version", installDir: ".", kind: KindRequirements, wsgiServer: "gunicorn", wsgiModule: "mysite.wsgi", matched: "3.12.1"},
		{dir: "poetry-subdir", appDir: "backend", settings: "shop.settings", settingsReason: "from manage.py",
			python: ">=3.12,<4.0", pythonFrom: "backend/pyproject.toml (requires-python)", installDir: "backend", kind: KindPoetry,
			wsgiServer: "gunicorn", wsgiModule: "shop.wsgi", matched: "3.13.0"},
		{dir: "pipenv", appDir: ".", settings: "blog.settings", settingsReason: "from manage.py",
			python: "3.12", pythonFrom: "Pipfile ([requires] python_version)", installDir: ".", kind: KindPipenv, wsgiServer: "gunicorn", wsgiModule: "blog.wsgi", matched: "3.12.1"},
		{dir: "python310", appDir: ".", settings: "legacy.settings", settingsReason: "from manage.py",
			python: "3.10", pythonFrom: "runtime.txt", installDir: ".", kind: KindRequirements, wsgiServer: "gunicorn", wsgiModule: "legacy.wsgi", matched: "3.10.13"},
		{dir: "compressor-offline", appDir: ".", settings: "styled.settings", settingsReason: "from manage.py",
			installDir: ".", kind: KindRequirements, wsgiServer: "gunicorn", wsgiModule: "styled.wsgi"},
		{dir: "npm-assets", appDir: ".", settings: "assets.settings", settingsReason: "from manage.py",
			installDir: ".", kind: KindRequirements, wsgiServer: "gunicorn", wsgiModule: "assets.wsgi"},
		{dir: "no-gunicorn", appDir: ".", settings: "plain.settings", settingsReason: "from manage.py",
			installDir: ".", kind: KindRequirements, wsgiServer: "", wsgiModule: "plain.wsgi"},
		{dir: "pyproject-plain", appDir: ".", settings: "notes.config", settingsReason: "from notes/wsgi.py",
			python: ">=3.12", pythonFrom: "pyproject.toml (requires-python)", installDir: ".", kind: KindPyproject, wsgiServer: "gunicorn", wsgiModule: "notes.wsgi", matched: "3.13.0"},
	}
	pyenv := []string{"3.10.13", "3.11.7", "3.12.1", "3.13.0"}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			dir := "../examples/" + tt.dir
			b, err := Detect(dir, tt.config)
			if err != nil {
				t.Fatal(err)
			}
			if b.AppDir != tt.appDir || b.Settings != tt.settings || b.SettingsReason != tt.settingsReason ||
				b.Python != tt.python || b.PythonSource != tt.pythonFrom || b.InstallDir != tt.installDir || b.Install.Kind != tt.kind {
				t.Errorf("Detect = %+v (%s)", *b, b.Install.Kind)
			}
			if s, _ := HasWSGIServer(b.Install); s != tt.wsgiServer {
				t.Errorf("HasWSGIServer = %q, want %q", s, tt.wsgiServer)
			}
			if m, err := wsgiModule(dir, b.AppDir, b.Settings); err != nil || m != tt.wsgiModule {
				t.Errorf("WSGIModule = %q, %v; want %q", m, err, tt.wsgiModule)
			}
			if tt.python != "" {
				if m, err := MatchVersion(b.Python, pyenv); err != nil || m != tt.matched {
					t.Errorf("MatchVersion(%q) = %q, %v; want %q", b.Python, m, err, tt.matched)
				}
			}
			t.Log(b)
		})
	}
}
