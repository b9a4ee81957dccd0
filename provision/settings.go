package provision

import (
	"bytes"
	"embed"
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"unicode/utf8"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/lazyre"
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
	Alias                                    string // Django's: conductor.DefaultAlias or one db:create added
	Engine, Name, Host, Port, User, Password string
	URL                                      string // DATABASE_URL for the environment
}

// SQLiteDatabase is an app's SQLite file in its persistent data dir.
func SQLiteDatabase(l Layout, app string) Database {
	path := filepath.Join(l.DataDir(app), "db.sqlite3")
	return Database{Alias: conductor.DefaultAlias, Engine: "django.db.backends.sqlite3", Name: path, URL: "sqlite:///" + path}
}

// Settings is the input of local_settings.py.
type Settings struct {
	App, Release string
	// Module is the app's own settings module, dotted
	// ("config.settings.production"): the generated settings import it
	// and override only what Conductor owns.
	Module    string
	SecretKey string
	Hosts     []string
	// DBs are the databases Conductor manages, the default first: each
	// alias is set in DATABASES, the app's other aliases stay.
	DBs                   []Database
	StaticRoot, MediaRoot string
}

var moduleRE = lazyre.New(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// WriteSettings writes local_settings.py into the release dir, readable only
// by the app user (it holds the secret key and database password).
//
// appDir is the directory holding manage.py, relative to the release
// ("." for its top): the file goes there, beside manage.py, so
// DJANGO_SETTINGS_MODULE=local_settings imports it from the processes'
// working directory.
func WriteSettings(s Settings, releaseDir, appDir string, u *AppUser) error {
	if !moduleRE.MatchString(s.Module) {
		return conductor.Errorf(conductor.EINVALID, "invalid Django settings module %q", s.Module)
	}
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, "local_settings.py.tmpl", s); err != nil {
		return err
	}
	// The release dir is the app user's and the repository may hold a
	// local_settings.py symlink: the file is replaced, never written
	// through.
	if err := safefs.WriteFile(releaseDir, path.Join(appDir, "local_settings.py"), buf.Bytes(), 0o600, u.UID, u.GID); err != nil {
		return fmt.Errorf("write local_settings.py: %w", err)
	}
	return nil
}
