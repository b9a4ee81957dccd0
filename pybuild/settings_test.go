package pybuild

import (
	"testing"
)

func TestSettingsModule(t *testing.T) {
	cookiecutter := map[string]string{
		"manage.py":                     manage("config.settings.local"),
		"config/__init__.py":            "",
		"config/settings/__init__.py":   "",
		"config/settings/base.py":       "import environ\n",
		"config/settings/local.py":      "from .base import *\n",
		"config/settings/production.py": "from .base import *\n",
		"config/wsgi.py":                `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")`,
	}
	tests := []struct {
		name       string
		files      map[string]string
		configVar  string
		want       string
		wantReason string
		wantErr    []string
	}{
		{name: "cookiecutter", files: cookiecutter, want: "config.settings.local", wantReason: "from manage.py"},
		{name: "config var wins", files: cookiecutter, configVar: "config.settings.production",
			want: "config.settings.production", wantReason: "from the DJANGO_SETTINGS_MODULE config var"},
		{name: "config var missing module", files: cookiecutter, configVar: "config.settings.staging",
			wantErr: []string{"DJANGO_SETTINGS_MODULE config var", "config.settings.staging", "config/settings/staging.py"}},
		{name: "config var not a module", files: cookiecutter, configVar: "config/settings.py",
			wantErr: []string{"not a Python module path"}},
		{name: "config var keyword", files: cookiecutter, configVar: "config.import.x",
			wantErr: []string{"keyword"}},
		{name: "wagtail package with empty __init__", files: map[string]string{
			"manage.py":                   manage("mysite.settings.dev"),
			"mysite/settings/__init__.py": "",
			"mysite/settings/base.py":     "",
			"mysite/settings/dev.py":      "from .base import *\n",
			"mysite/wsgi.py":              `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings.production")`,
		}, want: "mysite.settings.dev", wantReason: "from manage.py"},
		{name: "settings package itself", files: map[string]string{
			"manage.py":                 manage("proj.settings"),
			"proj/settings/__init__.py": "from .base import *\n",
		}, want: "proj.settings", wantReason: "from manage.py"},
		{name: "top-level module", files: map[string]string{
			"manage.py":   manage("settings"),
			"settings.py": "",
		}, want: "settings", wantReason: "from manage.py"},
		{name: "manage.py names a missing module, wsgi.py a real one", files: map[string]string{
			"manage.py":        manage("proj.settings.local"),
			"proj/settings.py": "",
			"proj/wsgi.py":     `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings")`,
		}, want: "proj.settings", wantReason: "from proj/wsgi.py"},
		{name: "manage.py without it, asgi only", files: map[string]string{
			"manage.py":         "from notes.environment import configure\nconfigure()\n",
			"notes/config.py":   "",
			"notes/asgi.py":     `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notes.config")`,
			"notes/__init__.py": "",
		}, want: "notes.config", wantReason: "from notes/asgi.py"},
		{name: "wsgi before asgi, shallow before deep", files: map[string]string{
			"a/asgi.py":              `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a.s")`,
			"a/s.py":                 "",
			"b/c/wsgi.py":            `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "b.c.s")`,
			"b/c/s.py":               "",
			"z/wsgi.py":              `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "z.s")`,
			"z/s.py":                 "",
			"node_modules/x/wsgi.py": `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "a.s")`,
		}, want: "z.s", wantReason: "from z/wsgi.py"},
		{name: "nothing found lists what was tried", files: map[string]string{
			"manage.py":    manage("proj.settings.local"),
			"proj/wsgi.py": "application = None\n",
		}, wantErr: []string{`manage.py sets "proj.settings.local"`, "proj/settings/local.py", "proj/wsgi.py does not set DJANGO_SETTINGS_MODULE", "set the DJANGO_SETTINGS_MODULE config var"}},
		{name: "no manage.py, no wsgi.py", files: map[string]string{"README": ""},
			wantErr: []string{"there is no manage.py", "there is no wsgi.py or asgi.py"}},
		{name: "invalid module in manage.py", files: map[string]string{
			"manage.py": manage("my-site.settings"),
		}, wantErr: []string{`"my-site.settings"`, "not a Python module path"}},
		{name: "module is a directory", files: map[string]string{
			"manage.py":         manage("proj.settings"),
			"proj/settings.py/": "",
		}, wantErr: []string{"is not in the repository"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			got, reason, err := SettingsModule(dir, tt.configVar)
			checkErr(t, err, tt.wantErr...)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("SettingsModule = %q, %q; want %q, %q", got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

func TestWSGIModule(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		settings string
		want     string
		wantErr  []string
	}{
		{"beside the settings package", map[string]string{"config/wsgi.py": "", "other/wsgi.py": ""}, "config.settings.local", "config.wsgi", nil},
		{"shallowest otherwise", map[string]string{"a/b/wsgi.py": "", "web/wsgi.py": ""}, "settings", "web.wsgi", nil},
		{"none", map[string]string{"manage.py": ""}, "x.settings", "", []string{"no wsgi.py"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := WSGIModule(writeTree(t, tt.files), tt.settings)
			checkErr(t, err, tt.wantErr...)
			if got != tt.want {
				t.Errorf("WSGIModule = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppDir(t *testing.T) {
	top := map[string]string{"manage.py": manage("a.settings")}
	sub := map[string]string{
		"app.json":          `{"name": "shop", "conductor": {"directory": "backend"}}`,
		"backend/manage.py": manage("shop.settings"),
		"frontend/":         "",
	}
	tests := []struct {
		name       string
		files      map[string]string
		configured string
		want       string
		wantReason string
		wantErr    []string
	}{
		{name: "top", files: top, want: "."},
		{name: "app.json", files: sub, want: "backend", wantReason: `from app.json ("conductor": {"directory": ...})`},
		{name: "config var wins", files: map[string]string{"app.json": sub["app.json"], "src/manage.py": ""}, configured: "src/",
			want: "src", wantReason: "from the CONDUCTOR_APP_DIR config var"},
		{name: "heroku app.json without our key", files: map[string]string{"app.json": `{"name": "x", "buildpacks": []}`, "manage.py": ""}, want: "."},
		{name: "no manage.py there", files: sub, configured: "frontend", wantErr: []string{"no manage.py in frontend/"}},
		{name: "suggests the one below", files: map[string]string{"backend/manage.py": ""},
			wantErr: []string{"no manage.py at the top", "There is one in backend/", `"directory": "backend"`}},
		{name: "escape", files: top, configured: "../x", wantErr: []string{"inside the repository"}},
		{name: "absolute", files: top, configured: "/etc", wantErr: []string{"inside the repository"}},
		{name: "missing", files: top, configured: "nope", wantErr: []string{"no such directory"}},
		{name: "symlinked dir", files: map[string]string{"real/manage.py": "", "app": "->real"}, configured: "app", wantErr: []string{"symbolic link"}},
		{name: "symlink out", files: map[string]string{"manage.py": "", "app": "->/"}, configured: "app", wantErr: []string{"symbolic link"}},
		{name: "bad app.json", files: map[string]string{"app.json": `{"conductor": `, "manage.py": ""}, wantErr: []string{"app.json"}},
		{name: "app.json wrong type", files: map[string]string{"app.json": `{"conductor": {"directory": 3}}`, "manage.py": ""}, wantErr: []string{"app.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := AppDir(writeTree(t, tt.files), tt.configured)
			checkErr(t, err, tt.wantErr...)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("AppDir = %q, %q; want %q, %q", got, reason, tt.want, tt.wantReason)
			}
		})
	}
}
