package pybuild

import (
	"sort"
	"strings"

	"github.com/hasadna/conductor/internal/lazyre"
)

// Environment markers carried through a lock file's dependency graph.
// A package's marker is the "or" of the paths that reach it, each path the
// "and" of its edges' markers. uv evaluates the result; here markers are
// only combined as text, with a bound: past maxAlternatives paths the
// package is installed unconditionally (installing a package that is not
// needed is safe; leaving out one that is is not).

const maxAlternatives = 8

// markerSet is a disjunction of conjunctions of marker terms.
type markerSet struct {
	always bool
	alts   map[string][]string // key: the conjunction's terms joined
}

// add adds one conjunction (sorted, unique terms; none means always) and
// tells whether the set changed.
func (m *markerSet) add(terms []string) bool {
	if m.always {
		return false
	}
	if len(terms) == 0 || len(m.alts) >= maxAlternatives {
		m.always, m.alts = true, nil
		return true
	}
	k := strings.Join(terms, "\x00")
	if m.alts == nil {
		m.alts = map[string][]string{}
	}
	if _, ok := m.alts[k]; ok {
		return false
	}
	m.alts[k] = terms
	return true
}

// each calls fn with each conjunction (nil for always).
func (m *markerSet) each(fn func(terms []string)) {
	if m.always {
		fn(nil)
		return
	}
	keys := make([]string, 0, len(m.alts))
	for k := range m.alts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fn(m.alts[k])
	}
}

func (m *markerSet) String() string {
	if m.always || len(m.alts) == 0 {
		return ""
	}
	var alts []string
	m.each(func(terms []string) {
		parts := make([]string, len(terms))
		for i, t := range terms {
			parts[i] = paren(t)
		}
		a := strings.Join(parts, " and ")
		if len(m.alts) > 1 && len(terms) > 1 {
			a = "(" + a + ")"
		}
		alts = append(alts, a)
	})
	return strings.Join(alts, " or ")
}

// with returns terms plus the marker term (dropped when empty), sorted and
// unique.
func with(terms []string, marker string) []string {
	out := append([]string(nil), terms...)
	if marker = strings.TrimSpace(marker); marker != "" {
		out = append(out, marker)
	}
	sort.Strings(out)
	return compactStrings(out)
}

func paren(t string) string {
	if strings.Contains(t, " or ") || strings.Contains(t, " and ") {
		if !(strings.HasPrefix(t, "(") && strings.HasSuffix(t, ")") && balanced(t[1:len(t)-1])) {
			return "(" + t + ")"
		}
	}
	return t
}

// balanced tells whether s's parentheses close in order.
func balanced(s string) bool {
	d := 0
	for _, c := range s {
		switch c {
		case '(':
			d++
		case ')':
			if d--; d < 0 {
				return false
			}
		}
	}
	return d == 0
}

var extraTermRE = lazyre.New(`^\(?\s*extra\s*==\s*("[^"]*"|'[^']*')\s*\)?$`)

// dropExtra removes the `extra == "x"` terms from a lock file's marker:
// they say which of its parent's extras pulled a package in, which the
// graph walk already decided, and mean nothing in a requirements file.
// A marker that mixes extras into an "or" with other terms gives "": the
// package is then installed whenever its parent is.
func dropExtra(marker string) string {
	if !strings.Contains(marker, "extra") {
		return strings.TrimSpace(marker)
	}
	var keep []string
	for _, term := range splitTop(marker, " and ") {
		t := strings.TrimSpace(term)
		onlyExtras, anyExtra := true, false
		inner := t
		if strings.HasPrefix(inner, "(") && strings.HasSuffix(inner, ")") && balanced(inner[1:len(inner)-1]) {
			inner = inner[1 : len(inner)-1]
		}
		for _, alt := range splitTop(inner, " or ") {
			if extraTermRE.MatchString(strings.TrimSpace(alt)) {
				anyExtra = true
			} else {
				onlyExtras = false
			}
		}
		switch {
		case onlyExtras:
		case anyExtra:
			return ""
		default:
			keep = append(keep, t)
		}
	}
	return strings.Join(keep, " and ")
}

// splitTop splits s at sep where it is outside parentheses and quotes.
func splitTop(s, sep string) []string {
	var out []string
	depth, start := 0, 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && strings.HasPrefix(s[i:], sep):
			out = append(out, s[start:i])
			start = i + len(sep)
			i += len(sep) - 1
		}
	}
	return append(out, s[start:])
}

// pythonMarker turns a Poetry python constraint of a dependency ("<3.11",
// "^3.8", ">=3.8,<3.11 || >=3.12") into a marker; "" when it cannot.
func pythonMarker(constraint string) string {
	constraint = strings.TrimSpace(constraint)
	if constraint == "" || constraint == "*" {
		return ""
	}
	spec, err := parseSpecifier(constraint)
	if err != nil {
		return ""
	}
	var alts []string
	for _, all := range spec {
		var terms []string
		for _, c := range all {
			v := c.v.String()
			field := "python_version"
			if c.v.len() > 2 {
				field = "python_full_version"
			}
			op := c.op
			switch {
			case op == "prefix" || (c.wildcard && op == "=="):
				op, v = "==", v+".*"
			case c.wildcard && op == "!=":
				v += ".*"
			case op == "===":
				op = "=="
			}
			terms = append(terms, field+" "+op+" \""+v+"\"")
		}
		if len(terms) == 0 {
			return ""
		}
		alts = append(alts, strings.Join(terms, " and "))
	}
	if len(alts) == 1 {
		return alts[0]
	}
	for i, a := range alts {
		alts[i] = paren(a)
	}
	return strings.Join(alts, " or ")
}
