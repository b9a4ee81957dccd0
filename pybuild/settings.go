package pybuild

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// SettingsModule finds the Django settings module of the project in dir,
// in the order Heroku's users expect: the app's DJANGO_SETTINGS_MODULE
// config var (configVar, "" if unset), else the default manage.py gives
// it, else the one a wsgi.py or asgi.py of the tree gives it. The module
// must be a dotted Python module path that exists in the tree (a/b/c.py or
// a/b/c/__init__.py, relative to dir). reason says where it came from, for
// the build output ("from manage.py"). When nothing fits, the error lists
// what was tried.
func SettingsModule(dir, configVar string) (module, reason string, err error) {
	return settingsModule(dir, ".", configVar)
}

// settingsModule is SettingsModule for the app directory sub of the tree
// root: reads stay confined to root.
func settingsModule(root, sub, configVar string) (string, string, error) {
	if configVar != "" {
		if problem := checkModule(root, sub, configVar); problem != "" {
			return "", "", invalidf("the %s config var is %q, which %s", ConfigSettingsModule, configVar, problem)
		}
		return configVar, "from the " + ConfigSettingsModule + " config var", nil
	}
	var tried []string
	try := func(file string) (string, bool, error) {
		src, err := readFile(root, join(sub, file), maxSource)
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, nil
		} else if err != nil {
			return "", false, err
		}
		cands := settingsCandidates(string(src))
		if len(cands) == 0 {
			tried = append(tried, file+" does not set "+ConfigSettingsModule)
		}
		for _, c := range cands {
			if problem := checkModule(root, sub, c); problem != "" {
				tried = append(tried, fmt.Sprintf("%s sets %q, which %s", file, c, problem))
				continue
			}
			return c, true, nil
		}
		return "", false, nil
	}
	if m, ok, err := try("manage.py"); err != nil {
		return "", "", err
	} else if ok {
		return m, "from manage.py", nil
	}
	if !isFile(root, join(sub, "manage.py")) {
		tried = append(tried, "there is no manage.py")
	}
	entry := entryPoints(root, sub)
	for _, file := range entry {
		if m, ok, err := try(file); err != nil {
			return "", "", err
		} else if ok {
			return m, "from " + file, nil
		}
	}
	if len(entry) == 0 {
		tried = append(tried, "there is no wsgi.py or asgi.py")
	}
	app := ""
	if sub != "." {
		app = " of the app in " + sub + "/"
	}
	return "", "", invalidf("cannot find the Django settings module%s: %s; set the %s config var to it (config.settings.production, say)",
		app, strings.Join(tried, "; "), ConfigSettingsModule)
}

// entryPoints lists the wsgi.py and asgi.py files of the app directory,
// three levels deep at most: wsgi.py before asgi.py (gunicorn serves the
// WSGI one), then the shallowest first, then in lexical order. Paths are
// relative to sub.
func entryPoints(root, sub string) []string {
	type ep struct {
		rel   string
		asgi  bool
		depth int
	}
	var eps []ep
	walk(root, sub, 3, func(rel string, isDir bool) {
		base := path.Base(rel)
		if isDir || (base != "wsgi.py" && base != "asgi.py") {
			return
		}
		if sub != "." {
			rel = strings.TrimPrefix(rel, sub+"/")
		}
		eps = append(eps, ep{rel, base == "asgi.py", strings.Count(rel, "/")})
	})
	sort.SliceStable(eps, func(i, j int) bool {
		if eps[i].asgi != eps[j].asgi {
			return !eps[i].asgi
		}
		if eps[i].depth != eps[j].depth {
			return eps[i].depth < eps[j].depth
		}
		return eps[i].rel < eps[j].rel
	})
	out := make([]string, len(eps))
	for i, e := range eps {
		out[i] = e.rel
	}
	return out
}

// checkModule says what is wrong with m as the settings module of the app
// directory sub, "" if nothing.
func checkModule(root, sub, m string) string {
	if err := ValidModule(m); err != nil {
		return err.Error()
	}
	file, pkg := modulePaths(m)
	if isFile(root, join(sub, file)) || isFile(root, join(sub, pkg)) {
		return ""
	}
	if sub != "." {
		return fmt.Sprintf("is not in the repository (neither %s nor %s is in %s/)", file, pkg, sub)
	}
	return fmt.Sprintf("is not in the repository (neither %s nor %s exists)", file, pkg)
}

// modulePaths are the two files that can hold module m: a/b/c.py and
// a/b/c/__init__.py.
func modulePaths(m string) (file, pkg string) {
	p := strings.ReplaceAll(m, ".", "/")
	return p + ".py", p + "/__init__.py"
}

// pythonKeywords cannot be module names.
var pythonKeywords = map[string]bool{
	"False": true, "None": true, "True": true, "and": true, "as": true, "assert": true,
	"async": true, "await": true, "break": true, "class": true, "continue": true,
	"def": true, "del": true, "elif": true, "else": true, "except": true,
	"finally": true, "for": true, "from": true, "global": true, "if": true,
	"import": true, "in": true, "is": true, "lambda": true, "nonlocal": true,
	"not": true, "or": true, "pass": true, "raise": true, "return": true,
	"try": true, "while": true, "with": true, "yield": true,
}

// ValidModule checks that m is a dotted Python module path of ASCII
// identifiers ("config.settings.production"), which makes it safe to put
// in an import statement and an environment variable.
func ValidModule(m string) error {
	if m == "" || len(m) > 200 {
		return errors.New("is not a Python module path (like config.settings.production)")
	}
	for _, part := range strings.Split(m, ".") {
		if !isIdentifier(part) {
			return errors.New("is not a Python module path (like config.settings.production)")
		}
		if pythonKeywords[part] {
			return fmt.Errorf("is not a Python module path: %q is a keyword", part)
		}
	}
	return nil
}

func isIdentifier(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// WSGIModule names the module holding the WSGI application of the project
// in dir whose settings module is settings, for a default web process
// (gunicorn <module>): the wsgi.py beside the settings' top package
// (config.settings.local → config.wsgi), else the shallowest wsgi.py of
// the tree.
func WSGIModule(dir, settings string) (string, error) {
	return wsgiModule(dir, ".", settings)
}

// WSGIModuleIn is WSGIModule for the app directory sub (Build.AppDir) of
// the tree dir: reads stay confined to the whole tree, so a link the app's
// processes swap in for sub cannot lead them out of it.
func WSGIModuleIn(dir, sub, settings string) (string, error) {
	return wsgiModule(dir, sub, settings)
}

func wsgiModule(root, sub, settings string) (string, error) {
	if top, _, ok := strings.Cut(settings, "."); ok && isFile(root, join(sub, top+"/wsgi.py")) {
		return top + ".wsgi", nil
	}
	for _, rel := range entryPoints(root, sub) {
		if path.Base(rel) != "wsgi.py" {
			continue
		}
		m := strings.ReplaceAll(strings.TrimSuffix(rel, ".py"), "/", ".")
		if ValidModule(m) == nil {
			return m, nil
		}
	}
	return "", invalidf("no wsgi.py %s: add a web process to the Procfile", where(sub))
}
