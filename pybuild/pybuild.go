// Package pybuild is what a pushed Python/Django source tree needs to build:
// its settings module, Python version, package manager and the inputs that
// decide its virtualenv.
//
// Everything here is pure logic over a release directory. A pushed
// repository is hostile input, so every read is confined to the tree
// (symlinks are followed only while they stay inside it, see
// safefs.ReadFileConfined), reads regular files only, and is bounded in
// size; directory walks are shallow and bounded too. Nothing is executed:
// the install commands are returned as argv lists for the builder to run as
// the app's user.
package pybuild

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
)

// Config vars that steer the build.
const (
	// ConfigSettingsModule names the app's Django settings module, as on
	// Heroku; it wins over what manage.py says.
	ConfigSettingsModule = "DJANGO_SETTINGS_MODULE"
	// ConfigAppDir names the directory holding manage.py, for an app in a
	// subdirectory of its repository; it wins over app.json.
	ConfigAppDir = "CONDUCTOR_APP_DIR"
)

// Bounds on what is read of a pushed tree.
const (
	maxSmall    = 64 << 10 // .python-version, runtime.txt, app.json
	maxSource   = 1 << 20  // manage.py, wsgi.py, asgi.py
	maxManifest = 4 << 20  // pyproject.toml, Pipfile, requirements files
	maxLock     = 32 << 20 // uv.lock, poetry.lock, Pipfile.lock
	maxIncludes = 100      // requirements files reached through -r/-c
)

// readFile reads root/rel confined to root, at most max bytes. A missing
// file (or a link to nothing inside the tree) is fs.ErrNotExist; anything
// else that keeps it from being read (a link out of the tree, a FIFO, a
// directory, a file too large) is an EINVALID error naming rel.
func readFile(root, rel string, max int64) ([]byte, error) {
	data, err := safefs.ReadFileConfined(root, filepath.FromSlash(rel), max)
	if err == nil {
		return data, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return nil, conductor.Errorf(conductor.EINVALID, "%s: %s", rel, readProblem(err))
}

// readProblem says in words why a file of the tree could not be read,
// without the server-side path of the release.
func readProblem(err error) string {
	var pe *fs.PathError
	switch {
	case errors.Is(err, safefs.ErrNotRegular):
		return "not a regular file"
	case errors.As(err, &pe) && pe.Op == "read":
		return pe.Err.Error()
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent":
		return "a link that leads out of the repository"
	case errors.As(err, &pe):
		return pe.Err.Error()
	}
	return err.Error()
}

// isFile tells whether root/rel is a regular file reached inside root.
func isFile(root, rel string) bool {
	r, err := os.OpenRoot(root)
	if err != nil {
		return false
	}
	defer r.Close()
	fi, err := r.Stat(filepath.FromSlash(rel))
	return err == nil && fi.Mode().IsRegular()
}

// exists tells whether something is at root/rel (a dangling or escaping
// link counts: it is there, and reading it will say what is wrong).
func exists(root, rel string) bool {
	r, err := os.OpenRoot(root)
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = r.Lstat(filepath.FromSlash(rel))
	return err == nil
}

// join joins a directory of the tree (slash-separated, "." for the top)
// with a name, for the paths shown to users and passed to the readers.
func join(sub, name string) string {
	return path.Join(sub, name)
}

// where names a directory of the tree for messages.
func where(sub string) string {
	if sub == "." || sub == "" {
		return "at the top of the repository"
	}
	return "in " + sub + "/"
}

func invalidf(format string, args ...any) error {
	return conductor.Errorf(conductor.EINVALID, format, args...)
}

// Build is what Detect found in a release: everything the builder needs to
// know before it creates the virtualenv.
type Build struct {
	// AppDir is the directory holding manage.py, relative to the tree and
	// slash-separated ("." for the top); AppDirReason says where that came
	// from ("" for the top by default).
	AppDir, AppDirReason string
	// Settings is the dotted settings module, importable from AppDir;
	// SettingsReason says where it was found ("from manage.py").
	Settings, SettingsReason string
	// Python is the requested interpreter version or specifier ("" when
	// the app names none: use the host's default); PythonSource names the
	// file it came from.
	Python, PythonSource string
	// InstallDir is where Install's files are and its commands run,
	// relative to the tree: AppDir, or the top when AppDir has none.
	InstallDir string
	Install    *Install
}

// Detect reads a release tree the way the builder needs it: the app's
// directory (ConfigAppDir, else app.json, else the top), its settings
// module (ConfigSettingsModule, else manage.py, else wsgi.py/asgi.py), the
// Python version it asks for and its package manager, each looked for in
// the app's directory first and then at the top of the repository (a
// pyproject.toml at the top with the Django project in src/ is as common as
// a self-contained backend/). config is the app's config vars.
func Detect(dir string, config map[string]string) (*Build, error) {
	b := &Build{}
	var err error
	if b.AppDir, b.AppDirReason, err = appDir(dir, config[ConfigAppDir]); err != nil {
		return nil, err
	}
	if b.Settings, b.SettingsReason, err = settingsModule(dir, b.AppDir, config[ConfigSettingsModule]); err != nil {
		return nil, err
	}
	for _, sub := range searchDirs(b.AppDir) {
		if b.Python, b.PythonSource, err = pythonVersion(dir, sub); err != nil {
			return nil, err
		}
		if b.Python != "" {
			b.PythonSource = join(sub, b.PythonSource)
			break
		}
	}
	for _, sub := range searchDirs(b.AppDir) {
		b.Install, err = installer(dir, sub)
		if errors.Is(err, errNoDependencies) {
			continue
		} else if err != nil {
			return nil, err
		}
		b.InstallDir = sub
		return b, nil
	}
	if b.AppDir != "." {
		return nil, invalidf("no requirements.txt, pyproject.toml, Pipfile or lock file in %s/ or at the top of the repository", b.AppDir)
	}
	return nil, invalidf("no requirements.txt, pyproject.toml, Pipfile or lock file at the top of the repository")
}

// searchDirs is the app's directory, then the top of the tree.
func searchDirs(app string) []string {
	if app == "." {
		return []string{"."}
	}
	return []string{app, "."}
}

// String describes b in one line for the build output.
func (b *Build) String() string {
	py := "the host's default Python"
	if b.Python != "" {
		py = fmt.Sprintf("Python %s from %s", b.Python, b.PythonSource)
	}
	return fmt.Sprintf("settings %s (%s), %s, %s", b.Settings, b.SettingsReason, py, b.Install.Describe())
}
