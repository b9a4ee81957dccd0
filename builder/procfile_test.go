package builder

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hasadna/conductor/pybuild"
)

// TestReadProcfile: the app directory's Procfile, else the top's (as Dokku
// reads it), else none; the top's is not read for an app at the top twice.
func TestReadProcfile(t *testing.T) {
	for _, c := range []struct {
		name          string
		appDir        string
		files         map[string]string
		wantWeb       string
		wantAtTop     bool
		wantNoProcess bool
	}{
		{"app dir's", "backend", map[string]string{"backend/Procfile": "web: gunicorn sub.wsgi\n", "Procfile": "web: gunicorn top.wsgi\n"}, "gunicorn sub.wsgi", false, false},
		{"the top's for an app in a subdirectory", "backend", map[string]string{"Procfile": "web: gunicorn top.wsgi\nworker: python w.py\n"}, "gunicorn top.wsgi", true, false},
		{"the top's for an app at the top", ".", map[string]string{"Procfile": "web: gunicorn top.wsgi\n"}, "gunicorn top.wsgi", false, false},
		{"none", "backend", map[string]string{"backend/manage.py": ""}, "", false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range c.files {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			d := &deployment{dir: dir, build: &pybuild.Build{AppDir: c.appDir}}
			if err := d.readProcfile(); err != nil {
				t.Fatal(err)
			}
			if d.procfile == nil || d.procfile["web"] != c.wantWeb || d.topProcfile != c.wantAtTop {
				t.Errorf("procfile = %v, at top %v; want web %q, at top %v", d.procfile, d.topProcfile, c.wantWeb, c.wantAtTop)
			}
			if c.wantNoProcess && len(d.procfile.Types()) != 0 {
				t.Errorf("procfile = %v, want none", d.procfile)
			}
		})
	}
}

// TestSettingsOverride: the Procfile commands that set DJANGO_SETTINGS_MODULE
// themselves, and some that only mention it.
func TestSettingsOverride(t *testing.T) {
	for cmd, want := range map[string]bool{
		"DJANGO_SETTINGS_MODULE=proj.settings.production gunicorn proj.wsgi":   true,
		"export DJANGO_SETTINGS_MODULE=proj.settings.prod; gunicorn proj.wsgi": true,
		"cd src && DJANGO_SETTINGS_MODULE=x python manage.py migrate":          true,
		"gunicorn proj.wsgi --env DJANGO_SETTINGS_MODULE=proj.settings.prod":   true,
		"gunicorn proj.wsgi --env=DJANGO_SETTINGS_MODULE=proj.settings.prod":   true,
		"gunicorn proj.wsgi -e 'DJANGO_SETTINGS_MODULE=proj.settings.prod'":    true,
		"gunicorn proj.wsgi --log-file -":                                      false,
		"python -c 'import os; print(os.environ[\"DJANGO_SETTINGS_MODULE\"])'": false,
		"MY_DJANGO_SETTINGS_MODULE=x gunicorn proj.wsgi":                       false,
	} {
		if got := settingsOverride.MatchString(cmd); got != want {
			t.Errorf("%q: override %v, want %v", cmd, got, want)
		}
	}
}
