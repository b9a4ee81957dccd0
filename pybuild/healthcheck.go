package pybuild

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hasadna/conductor/internal/safefs"
)

// ConfigHealthcheck overrides app.json's web health checks: "none" skips
// the check, "/path" (optionally followed by whitespace and the content
// the answer must hold, as in Dokku's CHECKS file) replaces it.
const ConfigHealthcheck = "CONDUCTOR_HEALTHCHECK"

// Healthcheck is one HTTP check of the new release's web process, the
// part of Dokku's app.json "healthchecks" Conductor runs.
type Healthcheck struct {
	Name    string
	Path    string // path and query, starting with "/"
	Content string // the answer's body must hold it ("" for any body)
	Status  int    // the answer's exact status (0: see Accepts)
	// Attempts is how many answers (or timeouts) may fail before the
	// check does; 0 for no limit (the default check, bounded by the
	// check step's time bound only). A refused connection is not an
	// attempt: the process is still starting, and one that crashes is
	// caught by its restarts.
	Attempts     int
	Timeout      time.Duration // per request
	Wait         time.Duration // between failed attempts
	InitialDelay time.Duration // before the first request
	// Default marks Conductor's own check: any answer below 500 passes.
	Default bool
}

// DefaultHealthcheck is the check of an app that configures none: GET /
// until the process answers, any answer below 500 being up (a redirect
// to https or a login page is an answer: the process is serving).
var DefaultHealthcheck = Healthcheck{Name: "default", Path: "/", Timeout: 5 * time.Second, Wait: 50 * time.Millisecond, Default: true}

// Defaults of a configured check's fields, as Dokku's where they make
// sense for a local process.
const (
	defaultAttempts = 5
	defaultTimeout  = 5 * time.Second
	defaultWait     = 1 * time.Second
)

// Accepts tells whether an answer passes the check, and if not, why.
// Without an expected status, a configured check wants 2xx or 3xx (a
// redirect is not followed); with content, it wants a 2xx whose body
// holds the content.
func (h Healthcheck) Accepts(status int, body []byte) error {
	switch {
	case h.Status != 0 && status != h.Status:
		return fmt.Errorf("answered %d, not %d", status, h.Status)
	case h.Status == 0 && h.Default && status >= 500:
		return fmt.Errorf("answered %d", status)
	case h.Status == 0 && !h.Default && h.Content != "" && (status < 200 || status > 299):
		return fmt.Errorf("answered %d, not 2xx", status)
	case h.Status == 0 && !h.Default && status >= 400:
		return fmt.Errorf("answered %d", status)
	case h.Content != "" && !bytes.Contains(body, []byte(h.Content)):
		return fmt.Errorf("answered %d without %q", status, h.Content)
	}
	return nil
}

// Describe says what the check asks, for the build output.
func (h Healthcheck) Describe() string {
	s := "GET " + h.Path
	switch {
	case h.Default:
		s += " (any answer below 500)"
	case h.Status != 0 && h.Content != "":
		s += fmt.Sprintf(" expecting %d and %q", h.Status, h.Content)
	case h.Status != 0:
		s += fmt.Sprintf(" expecting %d", h.Status)
	case h.Content != "":
		s += fmt.Sprintf(" expecting %q", h.Content)
	}
	if h.Attempts > 0 {
		s += fmt.Sprintf(", %d attempts", h.Attempts)
	}
	return s
}

// WebChecks is how a release's web process is checked before traffic
// goes to it.
type WebChecks struct {
	None   bool          // skip the check (CONDUCTOR_HEALTHCHECK=none)
	Checks []Healthcheck // run in order, each must pass; empty: the default
	Source string        // where they came from, for the build output
	Notes  []string      // what of app.json is not run, for the build output
}

// WebHealthchecks reads how the release at dir is checked: the
// CONDUCTOR_HEALTHCHECK config var, else app.json's "healthchecks" at the
// top of the repository (read without following a link), else the
// default. A mistake in either fails with a message naming the field.
func WebHealthchecks(dir string, config map[string]string) (*WebChecks, error) {
	if v, ok := config[ConfigHealthcheck]; ok && strings.TrimSpace(v) != "" {
		return ParseHealthcheckVar(v)
	}
	data, err := safefs.ReadFile(dir, "app.json", maxSmall)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &WebChecks{}, nil
	case errors.Is(err, safefs.ErrSymlink):
		return nil, invalidf("app.json is a symbolic link: it must be a regular file")
	case err != nil:
		return nil, invalidf("app.json: %s", readProblem(err))
	}
	return ParseAppJSONHealthchecks(data)
}

// ParseHealthcheckVar parses the CONDUCTOR_HEALTHCHECK config var.
func ParseHealthcheckVar(v string) (*WebChecks, error) {
	v = strings.TrimSpace(v)
	src := "from the " + ConfigHealthcheck + " config var"
	if strings.EqualFold(v, "none") {
		return &WebChecks{None: true, Source: src}, nil
	}
	path, content := v, ""
	if i := strings.IndexAny(v, " \t"); i >= 0 {
		path, content = v[:i], strings.TrimSpace(v[i:])
	}
	if err := checkPath(path); err != nil {
		return nil, invalidf("%s=%q: %v (want none, or a path such as /health, optionally followed by the text the answer must hold)", ConfigHealthcheck, v, err)
	}
	if err := checkText(content); err != nil {
		return nil, invalidf("%s: the expected content %v", ConfigHealthcheck, err)
	}
	return &WebChecks{Source: src, Checks: []Healthcheck{{
		Name: ConfigHealthcheck, Path: path, Content: content,
		Attempts: defaultAttempts, Timeout: defaultTimeout, Wait: defaultWait,
	}}}, nil
}

// ParseAppJSONHealthchecks reads the "healthchecks" key of app.json in
// Dokku's shape:
//
//	{"healthchecks": {"web": [{"type": "startup", "name": "ready", "path": "/health",
//	  "content": "ok", "attempts": 5, "timeout": 5, "wait": 1, "initialDelay": 0}]}}
//
// The web process's startup checks are run; its liveness, readiness and
// uptime checks are noted and not run. Other process types' checks are
// left to the process check (their uptime). "status" (the exact status
// wanted) is Conductor's own.
func ParseAppJSONHealthchecks(data []byte) (*WebChecks, error) {
	var doc struct {
		Healthchecks json.RawMessage `json:"healthchecks"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, invalidf("app.json: %v", jsonProblem(err))
	}
	wc := &WebChecks{}
	if len(doc.Healthchecks) == 0 || string(doc.Healthchecks) == "null" {
		return wc, nil
	}
	var types map[string]json.RawMessage
	if err := json.Unmarshal(doc.Healthchecks, &types); err != nil {
		return nil, invalidf("app.json healthchecks: want an object of process types, each a list of checks")
	}
	names := make([]string, 0, len(types))
	for t := range types {
		names = append(names, t)
	}
	sort.Strings(names)
	for _, typ := range names {
		if typ != "web" {
			// Other types' checks (their uptime) are the process check's
			// (builder/processes.go).
			continue
		}
		var list []json.RawMessage
		if err := json.Unmarshal(types[typ], &list); err != nil {
			return nil, invalidf("app.json healthchecks.%s: want a list of checks", typ)
		}
		for i, raw := range list {
			field := fmt.Sprintf("healthchecks.%s[%d]", typ, i)
			h, kind, err := parseCheck(raw, field)
			if err != nil {
				return nil, invalidf("app.json %v", err)
			}
			switch {
			case kind != "startup":
				wc.Notes = append(wc.Notes, fmt.Sprintf("app.json %s: %s checks are not run (only startup checks, at deploy)", field, kind))
			case h.Path == "":
				wc.Notes = append(wc.Notes, fmt.Sprintf("app.json %s: an uptime check of web is not run: its HTTP check shows it serving", field))
			default:
				wc.Checks = append(wc.Checks, h)
			}
		}
	}
	if len(wc.Checks) > 0 {
		wc.Source = "from app.json"
	}
	return wc, nil
}

// parseCheck reads one check, naming the field of any mistake.
func parseCheck(raw json.RawMessage, field string) (Healthcheck, string, error) {
	h := Healthcheck{Attempts: defaultAttempts, Timeout: defaultTimeout, Wait: defaultWait}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return h, "", fmt.Errorf("%s: want an object", field)
	}
	str := func(k string) (string, error) {
		var s string
		if err := json.Unmarshal(m[k], &s); err != nil {
			return "", fmt.Errorf("%s.%s: want a string", field, k)
		}
		return s, nil
	}
	num := func(k string, lo, hi int) (int, error) {
		var f float64
		if err := json.Unmarshal(m[k], &f); err != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
			return 0, fmt.Errorf("%s.%s: want a whole number from %d to %d", field, k, lo, hi)
		}
		return int(f), nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kind, uptime := "startup", false
	for _, k := range keys {
		var err error
		var n int
		switch k {
		case "type":
			if kind, err = str(k); err == nil && kind != "startup" && kind != "liveness" && kind != "readiness" {
				err = fmt.Errorf("%s.type: %q is not startup, liveness or readiness", field, kind)
			}
		case "name":
			if h.Name, err = str(k); err == nil {
				err = checkText(h.Name)
				if err != nil {
					err = fmt.Errorf("%s.name: %v", field, err)
				}
			}
		case "description":
			_, err = str(k)
		case "path":
			if h.Path, err = str(k); err == nil {
				if perr := checkPath(h.Path); perr != nil {
					err = fmt.Errorf("%s.path: %v", field, perr)
				}
			}
		case "content":
			if h.Content, err = str(k); err == nil {
				if terr := checkText(h.Content); terr != nil {
					err = fmt.Errorf("%s.content: %v", field, terr)
				}
			}
		case "status":
			h.Status, err = num(k, 100, 599)
		case "attempts":
			h.Attempts, err = num(k, 1, 100)
		case "timeout":
			n, err = num(k, 1, 600)
			h.Timeout = time.Duration(n) * time.Second
		case "wait":
			n, err = num(k, 0, 600)
			h.Wait = time.Duration(n) * time.Second
		case "initialDelay":
			n, err = num(k, 0, 600)
			h.InitialDelay = time.Duration(n) * time.Second
		case "port":
			_, err = num(k, 1, 65535) // the check goes to the port the release was given ($PORT)
		case "scheme":
			var s string
			if s, err = str(k); err == nil && s != "http" {
				err = fmt.Errorf("%s.scheme: %q is not supported: the check speaks plain http to the process, as nginx does", field, s)
			}
		case "uptime":
			_, err = num(k, 0, 600) // the web check is HTTP: noted, not run
			uptime = true
		case "command", "listening":
			err = fmt.Errorf("%s.%s: not supported: Conductor runs HTTP checks (\"path\")", field, k)
		default:
			err = fmt.Errorf("%s.%s: unknown field", field, k)
		}
		if err != nil {
			return h, "", err
		}
	}
	if kind == "startup" && h.Path == "" && !uptime {
		return h, "", fmt.Errorf("%s.path: missing: a startup check needs the path to GET", field)
	}
	if h.Name == "" {
		h.Name = h.Path
	}
	return h, kind, nil
}

// checkPath validates a check's request path: an absolute path (and
// query) on the app's own host, nothing that could name another host.
func checkPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > 2048:
		return errors.New("longer than 2048 bytes")
	case !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//"):
		return fmt.Errorf("%q must start with a single /", p)
	case strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' || r == '\\' }):
		return fmt.Errorf("%q holds a space, control character, # or backslash", p)
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return fmt.Errorf("%q is not a request path", p)
	}
	return nil
}

// checkText validates a name or expected content: short, printable text.
func checkText(s string) error {
	switch {
	case len(s) > 4096:
		return errors.New("is longer than 4096 bytes")
	case !utf8.ValidString(s):
		return errors.New("is not UTF-8")
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }):
		return errors.New("holds a control character")
	}
	return nil
}
