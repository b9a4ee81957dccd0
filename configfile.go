package conductor

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/hasadna/conductor/internal/lazyre"
)

// ConfigFile describes a file stored with config:file: placed at Path,
// relative to the app directory (where manage.py is), in every release,
// 0600 and owned by the app user. Its content is never part of it: only
// the builder (ConfigFileContent) and config:file:get read that.
type ConfigFile struct {
	Path      string    `json:"path"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"` // hex
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// MaxConfigFileSize bounds one config file. A worker on another host reads
// it in one NATS reply (1 MiB by default) as base64 inside JSON, which
// leaves room for 512 KiB.
const MaxConfigFileSize = 512 << 10

// MaxConfigFiles bounds the config files of one app.
const MaxConfigFiles = 64

// ConfigFileReader is what a builder reads of an app's config files and
// records of where it placed them.
type ConfigFileReader interface {
	// ConfigFiles lists an app's config files, by path, without content.
	ConfigFiles(ctx context.Context, appID int64) ([]*ConfigFile, error)
	// ConfigFileContent is one file's content (ENOTFOUND if none).
	ConfigFileContent(ctx context.Context, appID int64, path string) ([]byte, error)
	// PlacedConfigFiles are the paths Conductor wrote into the release
	// directory dir and has not removed since: a restart or rollback that
	// runs that directory again removes those no longer configured
	// without touching the repository's own files.
	PlacedConfigFiles(ctx context.Context, appID int64, dir string) ([]string, error)
	// SetPlacedConfigFiles records the paths placed in dir, replacing the
	// earlier record.
	SetPlacedConfigFiles(ctx context.Context, appID int64, dir string, paths []string) error
}

// ConfigFileStore stores config files (config:file, config:file:remove).
type ConfigFileStore interface {
	// PutConfigFile stores content at path, replacing an earlier file at
	// that path; an app may have at most MaxConfigFiles.
	PutConfigFile(ctx context.Context, appID int64, path string, content []byte, by string) (*ConfigFile, error)
	// RemoveConfigFile forgets the file at path (ENOTFOUND if none).
	RemoveConfigFile(ctx context.Context, appID int64, path string) error
}

var configPathComponentRE = lazyre.New(`^[A-Za-z0-9._@+-]+$`)

// reservedConfigPaths are the files Conductor itself writes or reads in the
// app directory before config files are placed: a config file there would
// be overwritten, or would differ from what the release was built with.
var reservedConfigPaths = map[string]string{
	"local_settings.py": "Conductor writes local_settings.py itself",
	"manage.py":         "Conductor runs the repository's manage.py",
	"Procfile":          "Conductor reads the Procfile from the repository",
}

// ValidateConfigFilePath checks where a config file goes: a relative path
// below the app directory, in clean form, of ordinary file-name characters
// (letters, digits, . _ - + @), not into staticfiles/ (nginx serves it to
// anyone, and collectstatic replaces it) and not one of Conductor's own
// files.
func ValidateConfigFilePath(p string) error {
	switch {
	case p == "":
		return Errorf(EINVALID, "empty config file path")
	case len(p) > 200:
		return Errorf(EINVALID, "config file path is %d bytes, more than the 200 allowed", len(p))
	case strings.HasPrefix(p, "/"):
		return Errorf(EINVALID, "config file path %q is absolute: give it relative to the app directory (where manage.py is)", truncate(p))
	case strings.HasSuffix(p, "/"):
		return Errorf(EINVALID, "config file path %q names a directory: give the file's name", truncate(p))
	}
	comps := strings.Split(p, "/")
	for _, c := range comps {
		switch {
		case c == "":
			return Errorf(EINVALID, "config file path %q has an empty component (//)", truncate(p))
		case c == "." || c == "..":
			return Errorf(EINVALID, "config file path %q may not contain %q: it stays below the app directory", truncate(p), c)
		case !configPathComponentRE.MatchString(c):
			return Errorf(EINVALID, "config file path %q may only hold letters, digits, '.', '_', '-', '+', '@' and '/'", truncate(strconv.QuoteToASCII(p)))
		}
	}
	if comps[0] == "staticfiles" {
		return Errorf(EINVALID, "config file path %q is in staticfiles/, which nginx serves to anyone", truncate(p))
	}
	if comps[0] == "__pycache__" {
		return Errorf(EINVALID, "config file path %q is in __pycache__/, Python's own", truncate(p))
	}
	if why, ok := reservedConfigPaths[p]; ok {
		return Errorf(EINVALID, "config file path %q is reserved: %s", p, why)
	}
	return nil
}

// MaxBodyVar is the config var that sets nginx's client_max_body_size for
// the app (the largest request body, an upload, nginx lets through).
const MaxBodyVar = "CONDUCTOR_MAX_BODY"

// DefaultMaxBody is the app's client_max_body_size without MaxBodyVar.
const DefaultMaxBody = "100m"

// maxBodyRE is nginx's size syntax: a number, optionally k, m or g.
var maxBodyRE = lazyre.New(`^([0-9]{1,12})([kKmMgG]?)$`)

// maxMaxBody bounds MaxBodyVar: nginx buffers a request body on the host's
// disk before the app sees it, so an app's developer may not lift the
// limit (nginx's 0) or set it beyond what a host should hold for one
// request.
const maxMaxBody = 10 << 30

// ValidateMaxBody checks a MaxBodyVar value: nginx's size syntax ("250m",
// "1g", "512k", bytes), more than 0 and at most 10g.
func ValidateMaxBody(v string) error {
	m := maxBodyRE.FindStringSubmatch(v)
	if m == nil {
		return Errorf(EINVALID, "%s=%q is not a size: write it as nginx does, e.g. 250m, 1g or 512k", MaxBodyVar, truncate(v))
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return Errorf(EINVALID, "%s=%q is too large: at most 10g", MaxBodyVar, truncate(v))
	}
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30}[strings.ToLower(m[2])]
	if n == 0 {
		return Errorf(EINVALID, "%s=%s would lift the limit: give a size, at most 10g", MaxBodyVar, v)
	}
	if n > maxMaxBody>>shift {
		return Errorf(EINVALID, "%s=%s is too large: at most 10g", MaxBodyVar, v)
	}
	return nil
}
