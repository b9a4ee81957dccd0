package pybuild

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// PythonVersion reads which Python the project in dir asks for, from the
// first of: .python-version (its first line that is not a comment: 3.12,
// 3.12.4, cpython-3.12), runtime.txt (python-3.12.4), pyproject.toml's
// [project] requires-python (or Poetry's [tool.poetry.dependencies]
// python), Pipfile's [requires] python_full_version or python_version.
// request is a version (3.12, 3.12.4) or a specifier (>=3.11,<3.13) for
// MatchVersion; it is "" when the project names none. source names the
// file (and key) it came from.
func PythonVersion(dir string) (request, source string, err error) {
	return pythonVersion(dir, ".")
}

func pythonVersion(root, sub string) (string, string, error) {
	read := func(name string, max int64) ([]byte, error) {
		data, err := readFile(root, join(sub, name), max)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return data, err
	}

	data, err := read(".python-version", maxSmall)
	if err != nil {
		return "", "", err
	}
	if data != nil {
		if line := firstLine(data); line != "" {
			req, err := parseVersionRequest(line)
			if err != nil {
				return "", "", invalidf(".python-version: %v", err)
			}
			if req != "" {
				return req, ".python-version", nil
			}
		}
	}

	if data, err = read("runtime.txt", maxSmall); err != nil {
		return "", "", err
	}
	if data != nil {
		line := firstLine(data)
		v, ok := strings.CutPrefix(line, "python-")
		if !ok || parseVersion(v) == nil {
			return "", "", invalidf("runtime.txt: %q is not python-X.Y or python-X.Y.Z", line)
		}
		return v, "runtime.txt", nil
	}

	if data, err = read("pyproject.toml", maxManifest); err != nil {
		return "", "", err
	}
	if data != nil {
		var p pyproject
		if err := toml.Unmarshal(data, &p); err != nil {
			return "", "", invalidf("pyproject.toml: %v", tomlProblem(err))
		}
		if rp := strings.TrimSpace(p.Project.RequiresPython); rp != "" {
			if _, err := parseSpecifier(rp); err != nil {
				return "", "", invalidf("pyproject.toml requires-python %q: %v", rp, err)
			}
			return compact(rp), "pyproject.toml (requires-python)", nil
		}
		if py := poetryPython(p.Tool.Poetry.Dependencies["python"]); py != "" {
			if _, err := parseSpecifier(py); err != nil {
				return "", "", invalidf("pyproject.toml [tool.poetry.dependencies] python %q: %v", py, err)
			}
			return compact(py), "pyproject.toml ([tool.poetry.dependencies] python)", nil
		}
	}

	if data, err = read("Pipfile", maxManifest); err != nil {
		return "", "", err
	}
	if data != nil {
		var pf struct {
			Requires struct {
				PythonVersion     string `toml:"python_version"`
				PythonFullVersion string `toml:"python_full_version"`
			} `toml:"requires"`
		}
		if err := toml.Unmarshal(data, &pf); err != nil {
			return "", "", invalidf("Pipfile: %v", tomlProblem(err))
		}
		for _, kv := range [][2]string{{pf.Requires.PythonFullVersion, "python_full_version"}, {pf.Requires.PythonVersion, "python_version"}} {
			if v := strings.TrimSpace(kv[0]); v != "" {
				if parseVersion(v) == nil {
					return "", "", invalidf("Pipfile [requires] %s: %q is not a Python version", kv[1], v)
				}
				return v, "Pipfile ([requires] " + kv[1] + ")", nil
			}
		}
	}
	return "", "", nil
}

// poetryPython reads Poetry's python constraint: a string or a table with
// a version.
func poetryPython(v any) string {
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case map[string]any:
		s, _ := v["version"].(string)
		return strings.TrimSpace(s)
	}
	return ""
}

// firstLine is the first line of data that is neither blank nor a comment.
func firstLine(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff"))))
	sc.Buffer(make([]byte, 4096), maxSmall)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	return ""
}

// parseVersionRequest reads a .python-version line: a version, possibly
// prefixed with the implementation (cpython-3.12, cpython@3.12, and uv's
// cpython-3.12.4-linux-x86_64-gnu), or a specifier (>=3.12). "system"
// names no version. Other implementations and free-threaded builds are
// refused: only CPython is installed here.
func parseVersionRequest(line string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(line))
	if s == "system" {
		return "", nil
	}
	for _, p := range []string{"cpython-", "cpython@", "cpython", "python-", "python@", "python"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			break
		}
	}
	if v, _, ok := strings.Cut(s, "-"); ok && parseVersion(v) != nil {
		s = v // cpython-3.12.4-linux-x86_64-gnu
	}
	if parseVersion(s) != nil {
		return s, nil
	}
	if strings.ContainsAny(s, "<>=!~^*") {
		if _, err := parseSpecifier(s); err == nil {
			return compact(s), nil
		}
	}
	switch {
	case strings.HasPrefix(s, "pypy") || strings.HasPrefix(s, "graalpy"):
		return "", fmt.Errorf("%q: only CPython is supported", line)
	case strings.HasSuffix(s, "t") && parseVersion(strings.TrimSuffix(s, "t")) != nil:
		return "", fmt.Errorf("%q: free-threaded Python is not supported", line)
	}
	return "", fmt.Errorf("%q is not a Python version (like 3.12 or 3.12.4)", line)
}

func compact(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// version is a release version: up to three numbers, the missing ones -1.
type version [3]int

// parseVersion reads "3", "3.12" or "3.12.4" (nothing else: no
// pre-releases), nil if it is not one.
func parseVersion(s string) *version {
	parts := strings.Split(s, ".")
	if len(parts) == 0 || len(parts) > 3 {
		return nil
	}
	v := version{-1, -1, -1}
	for i, p := range parts {
		if p == "" || len(p) > 4 || strings.TrimLeft(p, "0123456789") != "" {
			return nil
		}
		v[i], _ = strconv.Atoi(p)
	}
	return &v
}

func (v version) String() string {
	var parts []string
	for _, n := range v {
		if n < 0 {
			break
		}
		parts = append(parts, strconv.Itoa(n))
	}
	return strings.Join(parts, ".")
}

// len is how many numbers v has.
func (v version) len() int {
	n := 0
	for _, x := range v {
		if x >= 0 {
			n++
		}
	}
	return n
}

// cmp compares a and b as PEP 440 does release versions (missing numbers
// are zeros).
func cmp(a, b version) int {
	for i := range a {
		x, y := max(a[i], 0), max(b[i], 0)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// prefixMatch tells whether v starts with p's numbers (3.12.7 is 3.12).
func prefixMatch(v, p version) bool {
	for i := 0; i < p.len(); i++ {
		if v[i] != p[i] {
			return false
		}
	}
	return true
}

// clause is one comparison of a specifier.
type clause struct {
	op       string
	v        version
	wildcard bool // ==3.12.* or !=3.12.*
}

func (c clause) match(v version) bool {
	switch c.op {
	case "==", "===":
		if c.wildcard {
			return prefixMatch(v, c.v)
		}
		return cmp(v, c.v) == 0
	case "!=":
		if c.wildcard {
			return !prefixMatch(v, c.v)
		}
		return cmp(v, c.v) != 0
	case ">=":
		return cmp(v, c.v) >= 0
	case "<=":
		return cmp(v, c.v) <= 0
	case ">":
		return cmp(v, c.v) > 0
	case "<":
		return cmp(v, c.v) < 0
	case "prefix": // a bare version in a request: 3.12 is any 3.12.x
		return prefixMatch(v, c.v)
	}
	return false
}

// specifier is alternatives (Poetry's ||) of clauses that must all hold.
type specifier [][]clause

func (s specifier) match(v version) bool {
	for _, all := range s {
		ok := true
		for _, c := range all {
			if !c.match(v) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// parseSpecifier reads a Python version request: a bare version (3.12:
// any 3.12.x), a PEP 440 specifier set (>=3.11,<3.13, ~=3.12, ==3.12.*),
// or a Poetry constraint (^3.11, ~3.11, >=3.8,<3.11 || >=3.12, *).
func parseSpecifier(s string) (specifier, error) {
	var spec specifier
	for _, alt := range strings.Split(s, "||") {
		var all []clause
		for _, part := range strings.FieldsFunc(alt, func(r rune) bool { return r == ',' }) {
			part = compact(part)
			if part == "" {
				continue
			}
			cs, err := parseClause(part)
			if err != nil {
				return nil, err
			}
			all = append(all, cs...)
		}
		if len(all) == 0 {
			return nil, fmt.Errorf("%q is not a version specifier", s)
		}
		spec = append(spec, all)
	}
	if len(spec) == 0 {
		return nil, fmt.Errorf("empty version specifier")
	}
	return spec, nil
}

func parseClause(p string) ([]clause, error) {
	if p == "*" {
		return []clause{{op: ">=", v: version{0, -1, -1}}}, nil
	}
	op := ""
	for _, o := range []string{"===", "~=", "==", "!=", ">=", "<=", ">", "<", "^", "~", "="} {
		if strings.HasPrefix(p, o) {
			op = o
			break
		}
	}
	rest := strings.TrimPrefix(p, op)
	wildcard := false
	if r, ok := strings.CutSuffix(rest, ".*"); ok {
		rest, wildcard = r, true
	}
	v := parseVersion(rest)
	if v == nil {
		return nil, fmt.Errorf("%q is not a version specifier", p)
	}
	if wildcard && op != "==" && op != "!=" && op != "" {
		return nil, fmt.Errorf("%q: a wildcard goes only with == or !=", p)
	}
	switch op {
	case "":
		if wildcard {
			return []clause{{op: "==", v: *v, wildcard: true}}, nil
		}
		return []clause{{op: "prefix", v: *v}}, nil
	case "=":
		return []clause{{op: "==", v: *v, wildcard: wildcard}}, nil
	case "~=": // ~=3.11 is >=3.11,==3.*; ~=3.11.2 is >=3.11.2,==3.11.*
		if v.len() < 2 {
			return nil, fmt.Errorf("%q: ~= needs at least two numbers", p)
		}
		up := *v
		up[v.len()-1] = -1
		return []clause{{op: ">=", v: *v}, {op: "==", v: up, wildcard: true}}, nil
	case "^": // Poetry: ^3.11 is >=3.11,<4
		up := version{v[0] + 1, -1, -1}
		if v[0] == 0 && v.len() > 1 {
			up = version{0, v[1] + 1, -1}
		}
		return []clause{{op: ">=", v: *v}, {op: "<", v: up}}, nil
	case "~": // Poetry: ~3.11 is >=3.11,<3.12; ~3 is >=3,<4
		up := version{v[0] + 1, -1, -1}
		if v.len() > 1 {
			up = version{v[0], v[1] + 1, -1}
		}
		return []clause{{op: ">=", v: *v}, {op: "<", v: up}}, nil
	}
	return []clause{{op: op, v: *v, wildcard: wildcard}}, nil
}

// MatchVersion chooses among the available interpreter versions (3.12.7,
// or cpython-3.12.7) the newest that request accepts: a bare version
// matches by prefix (3.12 is any 3.12.x, 3.12.4 only itself), a specifier
// (>=3.11,<3.13, ~=3.12, ^3.11) by its clauses. It returns the available
// entry as given. The error lists what is available.
func MatchVersion(request string, available []string) (string, error) {
	spec, err := parseSpecifier(strings.TrimSpace(request))
	if err != nil {
		return "", invalidf("Python %q: %v", request, err)
	}
	best, bestV := "", version{}
	var have []string
	for _, a := range available {
		s, err := parseVersionRequest(a)
		v := parseVersion(s)
		if err != nil || v == nil {
			continue
		}
		have = append(have, v.String())
		if spec.match(*v) && (best == "" || cmp(*v, bestV) > 0) {
			best, bestV = a, *v
		}
	}
	if best != "" {
		return best, nil
	}
	sort.Slice(have, func(i, j int) bool { return cmp(*parseVersion(have[i]), *parseVersion(have[j])) < 0 })
	if len(have) == 0 {
		return "", invalidf("Python %s is not available: no Python is installed for apps", request)
	}
	return "", invalidf("Python %s is not available: installed are %s", request, strings.Join(have, ", "))
}
