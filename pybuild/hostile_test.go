package pybuild

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostileTree reads a pushed tree made to hurt the reader: links out
// of the tree, a FIFO where a file should be, a 100 MB file, link loops
// and a crowd of files. Every read must stay inside the tree, end, and
// fail with a message instead of reading what it should not.
func TestHostileTree(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret.txt")
	if err := os.WriteFile(secret, []byte("django-secret-of-root==1.0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := func(dir, name string) {
		t.Helper()
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(100 << 20); err != nil { // sparse: costs no disk
			t.Fatal(err)
		}
	}
	fifo := func(dir, name string) {
		t.Helper()
		if err := syscall.Mkfifo(filepath.Join(dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		files   map[string]string
		setup   func(dir string)
		run     func(dir string) error
		wantErr []string
	}{
		{name: "requirements.txt links out", files: map[string]string{"requirements.txt": "->" + secret},
			run: installerErr, wantErr: []string{"requirements.txt", "leads out of the repository"}},
		{name: "an include links out", files: map[string]string{"requirements.txt": "-r base.txt\n", "base.txt": "->" + secret},
			run: installerErr, wantErr: []string{"base.txt", "leads out of the repository"}},
		{name: "an include through a directory link", files: map[string]string{"requirements.txt": "-r reqs/base.txt\n", "reqs": "->" + outside},
			run: installerErr, wantErr: []string{"reqs/base.txt", "leads out of the repository"}},
		{name: "a link inside the tree is fine", files: map[string]string{"requirements.txt": "->requirements/prod.txt", "requirements/prod.txt": "gunicorn\n"},
			run: func(dir string) error {
				in, err := Installer(dir)
				if err == nil && !in.Has("gunicorn") {
					err = fmt.Errorf("packages %q", in.Packages)
				}
				return err
			}},
		{name: "requirements.txt is a FIFO", setup: func(dir string) { fifo(dir, "requirements.txt") },
			run: installerErr, wantErr: []string{"requirements.txt", "not a regular file"}},
		{name: "requirements.txt is 100 MB", setup: func(dir string) { big(dir, "requirements.txt") },
			run: installerErr, wantErr: []string{"requirements.txt", "larger than"}},
		{name: "poetry.lock is 100 MB", files: map[string]string{"pyproject.toml": "[project]\n"}, setup: func(dir string) { big(dir, "poetry.lock") },
			run: installerErr, wantErr: []string{"poetry.lock", "larger than"}},
		{name: "Pipfile.lock links to /dev/zero", files: map[string]string{"Pipfile.lock": "->/dev/zero"},
			run: installerErr, wantErr: []string{"Pipfile.lock", "leads out of the repository"}},
		{name: "manage.py is 100 MB", setup: func(dir string) { big(dir, "manage.py") },
			run: settingsErr, wantErr: []string{"manage.py", "larger than"}},
		{name: "manage.py is a FIFO", setup: func(dir string) { fifo(dir, "manage.py") },
			run: settingsErr, wantErr: []string{"manage.py", "not a regular file"}},
		{name: "manage.py links out", files: map[string]string{"manage.py": "->" + secret},
			run: settingsErr, wantErr: []string{"manage.py", "leads out of the repository"}},
		{name: "settings module through a link out", files: map[string]string{
			"manage.py": manage("config.settings"), "config": "->" + outside,
		}, setup: func(string) {
			if err := os.WriteFile(filepath.Join(outside, "settings.py"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, run: settingsErr, wantErr: []string{"config.settings", "is not in the repository"}},
		{name: "wsgi search through link loops and a crowd", files: map[string]string{
			"loop": "->.", "a/up": "->..", "out": "->/", "deep/1/2/3/4/5/wsgi.py": `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "deep.s")`,
		}, setup: func(dir string) {
			for i := range 6000 {
				if err := os.WriteFile(filepath.Join(dir, "a", fmt.Sprintf("f%04d", i)), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}, run: settingsErr, wantErr: []string{"there is no wsgi.py or asgi.py"}},
		{name: ".python-version links out", files: map[string]string{".python-version": "->" + secret},
			run: func(dir string) error { _, _, err := PythonVersion(dir); return err }, wantErr: []string{".python-version", "leads out of the repository"}},
		{name: "runtime.txt is a directory", files: map[string]string{"runtime.txt/": ""},
			run: func(dir string) error { _, _, err := PythonVersion(dir); return err }, wantErr: []string{"runtime.txt", "not a regular file"}},
		{name: "app.json is a FIFO", files: map[string]string{"manage.py": ""}, setup: func(dir string) { fifo(dir, "app.json") },
			run: func(dir string) error { _, _, err := AppDir(dir, ""); return err }, wantErr: []string{"app.json", "not a regular file"}},
		{name: "app.json names a link out", files: map[string]string{"app.json": `{"conductor": {"directory": "app"}}`, "app": "->" + outside},
			run: func(dir string) error { _, _, err := AppDir(dir, ""); return err }, wantErr: []string{"symbolic link"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			if tt.setup != nil {
				tt.setup(dir)
			}
			done := make(chan error, 1)
			go func() { done <- tt.run(dir) }()
			select {
			case err := <-done:
				checkErr(t, err, tt.wantErr...)
				if err != nil && strings.Contains(err.Error(), "secret-of-root") {
					t.Errorf("the error shows a file outside the tree: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the read did not end")
			}
		})
	}
}

func installerErr(dir string) error {
	_, err := Installer(dir)
	return err
}

func settingsErr(dir string) error {
	_, _, err := SettingsModule(dir, "")
	return err
}
