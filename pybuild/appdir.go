package pybuild

import (
	"encoding/json"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hasadna/conductor/internal/safefs"
)

// appJSON is the part of app.json Conductor reads:
//
//	{"conductor": {"directory": "backend"}}
//
// app.json is Heroku's app manifest, so a repository may already have one;
// Conductor's key lives under its own name beside Heroku's.
type appJSON struct {
	Conductor struct {
		Directory string `json:"directory"`
	} `json:"conductor"`
}

// AppDir finds the directory of the tree dir that holds manage.py: the
// configured one (the CONDUCTOR_APP_DIR config var, pass "" if unset), else
// app.json's "conductor": {"directory": ...}, else the top. sub is
// slash-separated and relative to dir ("." for the top); reason says where
// it came from ("" for the top by default). The directory must be inside
// the tree, reached without symlinks, and hold manage.py.
func AppDir(dir, configured string) (sub, reason string, err error) {
	return appDir(dir, configured)
}

func appDir(dir, configured string) (string, string, error) {
	sub, reason := ".", ""
	if configured != "" {
		sub, reason = configured, "from the "+ConfigAppDir+" config var"
	} else {
		data, err := readFile(dir, "app.json", maxSmall)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", "", err
		}
		if err == nil {
			var a appJSON
			if err := json.Unmarshal(data, &a); err != nil {
				return "", "", invalidf("app.json: %v", jsonProblem(err))
			}
			if a.Conductor.Directory != "" {
				sub, reason = a.Conductor.Directory, `from app.json ("conductor": {"directory": ...})`
			}
		}
	}
	clean, err := cleanSubdir(sub)
	if err != nil {
		return "", "", invalidf("app directory %q (%s): %v", sub, reason, err)
	}
	if clean != "." {
		d, err := safefs.OpenDir(dir, filepath.FromSlash(clean))
		if err != nil {
			return "", "", invalidf("app directory %q (%s): %s", clean, reason, dirProblem(err))
		}
		d.Close()
	}
	if !exists(dir, join(clean, "manage.py")) {
		if clean != "." {
			return "", "", invalidf("no manage.py in %s/ (the app directory, %s)", clean, reason)
		}
		msg := "no manage.py at the top of the repository: is this a Django project?"
		if found := findManagePy(dir); found != "" {
			msg += ` There is one in ` + found + `/: name that directory in app.json ({"conductor": {"directory": "` + found + `"}}) or the ` + ConfigAppDir + ` config var.`
		}
		return "", "", invalidf("%s", msg)
	}
	return clean, reason, nil
}

// cleanSubdir validates a directory named by the app's developers: a
// relative path that stays inside the tree.
func cleanSubdir(sub string) (string, error) {
	if strings.ContainsRune(sub, 0) || strings.Contains(sub, "\\") {
		return "", errors.New("not a plain relative path")
	}
	clean := path.Clean(strings.TrimSuffix(sub, "/"))
	if path.IsAbs(clean) || !filepath.IsLocal(clean) {
		return "", errors.New("must be a directory inside the repository")
	}
	return clean, nil
}

func dirProblem(err error) string {
	switch {
	case errors.Is(err, safefs.ErrSymlink):
		return "it (or a directory on its way) is a symbolic link"
	case errors.Is(err, fs.ErrNotExist):
		return "no such directory in the repository"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error() + " (at byte " + strconv.FormatInt(se.Offset, 10) + ")"
	}
	return err.Error()
}

// findManagePy looks one and two levels down for a single manage.py, to
// suggest the app directory.
func findManagePy(dir string) string {
	var found []string
	walk(dir, ".", 2, func(rel string, isDir bool) {
		if !isDir && path.Base(rel) == "manage.py" && path.Dir(rel) != "." {
			found = append(found, path.Dir(rel))
		}
	})
	if len(found) == 1 {
		return found[0]
	}
	return ""
}
