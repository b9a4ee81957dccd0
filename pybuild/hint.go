package pybuild

import (
	"fmt"
	"path"
	"strings"

	"github.com/hasadna/conductor/internal/lazyre"
)

// A failed install's output is uv's; the hints here turn the failures a
// push can fix into what to change, for the builder to add to the push's
// error. uv wraps its messages to a width and the build log indents them,
// so the output is read as one line of single spaces.

const pySpec = `[<>=!~]=?\s*[0-9][0-9a-z.*+]*(?:\s*,\s*[<>=!~]=?\s*[0-9][0-9a-z.*+]*)*`

// uv reports an interpreter a dependency refuses in one of two ways.
// The uv Conductor installs (0.13): "Using Python 3.11.7 environment at:
// venv" and then "Because django>=6.1 requires Python >=3.12 and you
// require django>=6.1, ..." ("all versions of django require ..."). Other
// versions: "Because the current Python version (3.11.2) does not satisfy
// Python>=3.12 and django>=6.1 depends on Python>=3.12, ...".
var (
	requiresPythonRE = lazyre.New(`((?:all versions of )?[A-Za-z0-9][^\s]*) (requires?) Python ?(` + pySpec + `)`)
	usingPythonRE    = lazyre.New(`Using Python ([0-9][^\s]*) environment`)
	currentPythonRE  = lazyre.New(`the current Python version \(([0-9][^)\s]*)\) does not satisfy Python ?(` + pySpec + `)` +
		`(?: and ((?:all versions of )?\S+ depends? on Python ?` + pySpec + `))?`)
)

var ansiRE = lazyre.New("\x1b\\[[0-9;]*[A-Za-z]")

// pythonMismatch reads uv's report of a Python a dependency refuses: the
// interpreter's version ("" when the output does not say), the
// specifier it fails and who asks for it ("" when uv does not say).
func pythonMismatch(output string) (current, need, why string, ok bool) {
	text := strings.Join(strings.Fields(ansiRE.ReplaceAllString(output, "")), " ")
	if m := currentPythonRE.FindStringSubmatch(text); m != nil {
		return m[1], compact(m[2]), m[3], true
	}
	m := requiresPythonRE.FindStringSubmatch(text)
	if m == nil {
		return "", "", "", false
	}
	need = compact(m[3])
	why = m[1] + " " + m[2] + " Python" + need
	if u := usingPythonRE.FindStringSubmatch(text); u != nil {
		current = u[1]
	}
	return current, need, why, true
}

// InstallHint says what to change when the install commands failed with
// output (what they printed, or its end) because the Python the virtualenv
// was made with does not satisfy a dependency's Requires-Python; "" for
// any other failure. It names a version the project can ask for, not one
// the host has: pythons.Find tells that when the push asks for it.
func (b *Build) InstallHint(output string) string {
	current, need, why, ok := pythonMismatch(output)
	if !ok {
		return ""
	}
	var s strings.Builder
	switch {
	case b.Python != "" && current != "":
		fmt.Fprintf(&s, "Python %s (chosen for %s from %s)", current, b.Python, b.PythonSource)
	case b.Python != "":
		fmt.Fprintf(&s, "the Python chosen for %s from %s", b.Python, b.PythonSource)
	case current != "":
		fmt.Fprintf(&s, "the app names no Python version, and the host's default, Python %s,", current)
	default:
		s.WriteString("the app names no Python version, and the host's default Python")
	}
	fmt.Fprintf(&s, " does not satisfy Python%s", need)
	if why != "" {
		fmt.Fprintf(&s, " (%s)", why)
	}
	// .python-version is read first, and in the app's directory first:
	// it wins over whatever chose the Python that failed.
	file := join(b.AppDir, ".python-version")
	if path.Base(b.PythonSource) == ".python-version" {
		file = b.PythonSource
	}
	suggest := ""
	if v := satisfyingMinor(current, need); v != "" {
		suggest = " (" + v + ", say)"
	}
	switch b.PythonSource {
	case file:
		fmt.Fprintf(&s, ": change %s to a Python version that does%s and push again", file, suggest)
	case "":
		fmt.Fprintf(&s, ": name a Python version that does in %s%s and push again", file, suggest)
	default:
		fmt.Fprintf(&s, ": name a Python version that does in %s%s, which wins over %s, and push again", file, suggest, b.PythonSource)
	}
	return s.String()
}

// satisfyingMinor is the first Python 3 release after current that spec
// accepts, as X.Y for .python-version; "" when none. Only newer ones: uv
// does not hold an interpreter against a Requires-Python upper bound.
func satisfyingMinor(current, spec string) string {
	sp, err := parseSpecifier(spec)
	cv := parseVersion(strings.SplitN(current, "+", 2)[0])
	if err != nil || cv == nil || cv[0] != 3 || cv[1] < 0 {
		return ""
	}
	// X.Y.0: .python-version's X.Y may get any X.Y.z, the first too.
	ok := func(minor int) bool { return sp.match(version{3, minor, 0}) }
	for m := cv[1] + 1; m <= cv[1]+10; m++ {
		if ok(m) {
			return fmt.Sprintf("3.%d", m)
		}
	}
	return ""
}
