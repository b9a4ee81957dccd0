package pybuild

import (
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/hasadna/conductor/internal/lazyre"
)

// reqFiles follows a requirements file and everything it includes with
// -r/--requirement and -c/--constraint (paths relative to the including
// file, as pip reads them), confined to the tree and each read once, so an
// include cycle ends. It records every file's content, in the order
// reached, and the names of the distributions the requirement (not
// constraint) files name.
type reqFiles struct {
	root, sub string
	files     []input
	seen      map[string]bool
	names     []string
	local     []string // requirements that are paths in the tree
}

// input is one file that decides what gets installed, relative to the
// install directory.
type input struct {
	name string
	data []byte
}

func (r *reqFiles) add(rel string, constraint bool, from string) error {
	if r.seen[rel] {
		return nil
	}
	if len(r.seen) >= maxIncludes {
		return invalidf("%s: more than %d requirements files are included", from, maxIncludes)
	}
	r.seen[rel] = true
	data, err := readFile(r.root, join(r.sub, rel), maxManifest)
	if errors.Is(err, fs.ErrNotExist) {
		if from == "" {
			return invalidf("%s: a link to nothing in the repository", rel)
		}
		return invalidf("%s includes %s, which is not in the repository", from, rel)
	} else if err != nil {
		return err
	}
	r.files = append(r.files, input{rel, data})
	for _, line := range logicalLines(string(data)) {
		opt, arg := splitOption(line)
		switch opt {
		case "-r", "--requirement", "-c", "--constraint":
			if arg == "" || strings.Contains(arg, "://") || strings.Contains(arg, "${") {
				continue // a URL or a variable: pip reads it, the line is hashed with the file
			}
			inc := path.Join(path.Dir(rel), arg)
			if full := join(r.sub, inc); strings.HasPrefix(arg, "/") || !filepath.IsLocal(full) || full == "." {
				return invalidf("%s includes %q, which is outside the repository", rel, arg)
			}
			if err := r.add(inc, constraint || opt == "-c" || opt == "--constraint", rel); err != nil {
				return err
			}
		case "-e", "--editable":
			if !constraint {
				if n := eggName(arg); n != "" {
					r.names = append(r.names, n)
				}
				if isLocalPath(arg) {
					r.local = append(r.local, arg)
				}
			}
		case "":
			if constraint {
				continue
			}
			name, _, _ := parseRequirement(line)
			if name != "" {
				r.names = append(r.names, name)
			} else if n := eggName(line); n != "" {
				r.names = append(r.names, n)
			}
			if _, url, ok := strings.Cut(line, "@"); ok && name != "" {
				if u := strings.TrimSpace(url); strings.HasPrefix(u, "file:") {
					r.local = append(r.local, firstField(u))
				}
			} else if name == "" && isLocalPath(firstField(line)) {
				r.local = append(r.local, firstField(line))
			}
		}
	}
	return nil
}

// logicalLines joins continued lines (ending in a backslash) and drops
// comments (a # at the start of a line or after whitespace) and blanks.
func logicalLines(src string) []string {
	var out []string
	var cur strings.Builder
	src = strings.TrimPrefix(src, "\ufeff")
	for _, raw := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		if strings.HasSuffix(raw, "\\") {
			cur.WriteString(strings.TrimSuffix(raw, "\\"))
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(raw)
		line := cur.String()
		cur.Reset()
		if i := commentStart(line); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

func commentStart(line string) int {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return i
		}
	}
	return -1
}

// splitOption splits an option line ("-r base.txt", "-rbase.txt",
// "--requirement=base.txt") into the option and its argument; a
// requirement line gives "".
func splitOption(line string) (opt, arg string) {
	if !strings.HasPrefix(line, "-") {
		return "", ""
	}
	if strings.HasPrefix(line, "--") {
		name, rest, _ := strings.Cut(line, " ")
		if n, v, ok := strings.Cut(name, "="); ok {
			return n, strings.TrimSpace(v)
		}
		return name, firstField(rest)
	}
	if len(line) < 2 {
		return line, ""
	}
	opt, rest := line[:2], line[2:]
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return opt, firstField(rest) // -rbase.txt
	}
	return opt, firstField(rest)
}

func firstField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// isLocalPath tells whether a requirement names a path rather than a
// distribution or a URL: ".", "./libs/x", "../pkg.whl", "/opt/x",
// "file:///x", "src/pkg".
func isLocalPath(s string) bool {
	if s == "" || strings.HasPrefix(s, "file:") {
		return s != ""
	}
	if strings.Contains(s, "://") || strings.HasPrefix(s, "git+") {
		return false
	}
	return strings.HasPrefix(s, ".") || strings.HasPrefix(s, "/") || strings.Contains(s, "/") ||
		strings.HasSuffix(s, ".whl") || strings.HasSuffix(s, ".tar.gz") || strings.HasSuffix(s, ".zip")
}

var eggRE = lazyre.New(`#(?:.*&)?egg=([A-Za-z0-9][A-Za-z0-9._-]*)`)

func eggName(s string) string {
	if m := eggRE.FindStringSubmatch(s); m != nil {
		return normName(m[1])
	}
	return ""
}

var reqNameRE = lazyre.New(`^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[([^\]]*)\])?\s*(.*)$`)

// parseRequirement reads a PEP 508 requirement ("celery[redis]>=5 ;
// python_version >= '3.10'", "django (>=5.2,<6.0)", "pkg @ https://...")
// into its normalized name, its extras and its marker ("" if none). A line
// that is not one (a path, a URL) gives "".
func parseRequirement(s string) (name string, extras []string, marker string) {
	s = strings.TrimSpace(s)
	body := s
	if i := markerStart(s); i >= 0 {
		body, marker = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
	}
	m := reqNameRE.FindStringSubmatch(body)
	if m == nil {
		return "", nil, ""
	}
	rest := strings.TrimSpace(m[3])
	if rest != "" && !strings.ContainsAny(rest[:1], "=<>!~(@") {
		return "", nil, "" // "./pkg.whl", "pkg.tar.gz" and other paths
	}
	for _, e := range strings.Split(m[2], ",") {
		if e = strings.TrimSpace(e); e != "" {
			extras = append(extras, normName(e))
		}
	}
	return normName(m[1]), extras, marker
}

// markerStart finds the ";" that starts a requirement's marker: in a URL
// requirement it must follow whitespace (a URL may hold ";").
func markerStart(s string) int {
	url := strings.Contains(s, "@")
	for i := 0; i < len(s); i++ {
		if s[i] == ';' && (!url || (i > 0 && (s[i-1] == ' ' || s[i-1] == '\t'))) {
			return i
		}
	}
	return -1
}

var nameSepRE = lazyre.New(`[-_.]+`)

// normName normalizes a distribution name as PEP 503 does.
func normName(s string) string {
	return strings.ToLower(nameSepRE.ReplaceAllString(s, "-"))
}
