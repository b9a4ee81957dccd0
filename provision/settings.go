package provision

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{"py": pyString}).ParseFS(templateFS, "templates/*.tmpl"))

// pyString renders any value as a Python str literal. Go's strconv.Quote
// output (\", \\, \n, \xNN, \uNNNN, \UNNNNNNNN) is valid Python 3 escape
// syntax, so a value can never end the literal or span lines.
func pyString(v any) string {
	s := fmt.Sprint(v)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strconv.QuoteToASCII(s)
}

// Database is what Django needs to reach an app's database.
type Database struct {
	Engine, Name, Host, Port, User, Password string
	URL                                      string // DATABASE_URL for the environment
}

// SQLiteDatabase is an app's SQLite file in its persistent data dir.
func SQLiteDatabase(l Layout, app string) Database {
	path := filepath.Join(l.DataDir(app), "db.sqlite3")
	return Database{Engine: "django.db.backends.sqlite3", Name: path, URL: "sqlite:///" + path}
}

// Settings is the input of local_settings.py.
type Settings struct {
	App, Release, Project string
	SecretKey             string
	Hosts                 []string
	DB                    Database
	StaticRoot, MediaRoot string
}

var moduleRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// WriteSettings writes local_settings.py into the release dir, readable only
// by the app user (it holds the secret key and database password).
func WriteSettings(s Settings, releaseDir string, u *AppUser) error {
	if !moduleRE.MatchString(s.Project) {
		return conductor.Errorf(conductor.EINVALID, "invalid Django project module %q", s.Project)
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "local_settings.py.tmpl", s); err != nil {
		return err
	}
	// The release dir is the app user's and the repository may hold a
	// local_settings.py symlink: the file is replaced, never written
	// through.
	if err := safefs.WriteFile(releaseDir, "local_settings.py", buf.Bytes(), 0o600, u.UID, u.GID); err != nil {
		return fmt.Errorf("write local_settings.py: %w", err)
	}
	return nil
}

var settingsModuleRE = regexp.MustCompile(`DJANGO_SETTINGS_MODULE["']\s*,\s*["']([A-Za-z_][A-Za-z0-9_]*)\.settings["']`)

// ProjectModule finds the Django project package from manage.py's
// `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "<project>.settings")`.
func ProjectModule(releaseDir string) (string, error) {
	src, err := safefs.ReadFile(releaseDir, "manage.py", 1<<20)
	if errors.Is(err, safefs.ErrSymlink) || errors.Is(err, safefs.ErrNotRegular) {
		return "", conductor.Errorf(conductor.EINVALID, "manage.py %v: it must be a regular file", errors.Unwrap(err))
	} else if err != nil {
		return "", conductor.Errorf(conductor.EINVALID, "no manage.py at the top of the repository: is this a Django project?")
	}
	m := settingsModuleRE.FindSubmatch(src)
	if m == nil {
		return "", conductor.Errorf(conductor.EINVALID, "manage.py does not set DJANGO_SETTINGS_MODULE to <project>.settings")
	}
	return string(m[1]), nil
}
