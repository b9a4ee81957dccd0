package pybuild

import "strings"

// A small, tolerant scanner for Python source, enough to find the value
// given to DJANGO_SETTINGS_MODULE however a manage.py or wsgi.py sets it:
//
//	os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
//	os.environ['DJANGO_SETTINGS_MODULE'] = 'mysite.settings.dev'
//	DEFAULTS = {"DJANGO_SETTINGS_MODULE": "blog.settings"}
//	os.environ.update(DJANGO_SETTINGS_MODULE="shop.settings")
//	os.environ.setdefault(
//	    "DJANGO_SETTINGS_MODULE",
//	    os.getenv("SETTINGS", "legacy.settings"),  # a default's default
//	)
//
// It never runs or imports anything: it turns the source into tokens
// (names, string literals, operators; comments and line breaks dropped) and
// looks for those shapes around the key, so quoting, spacing, comments and
// line splits do not matter, and a mention in a comment or a docstring
// does not count.

type tokKind int

const (
	tName tokKind = iota
	tString
	tFString // an f-string or a bytes literal: not a usable value
	tOp
	tOther // numbers and anything unrecognised
)

type token struct {
	kind tokKind
	text string // a name, an operator, or a string's contents
}

// maxTokens bounds the work on one file (its size is bounded already).
const maxTokens = 1 << 20

// tokenize splits Python source into tokens. It is forgiving: an
// unterminated string ends at the end of its line (or of the file for a
// triple-quoted one), unknown bytes become tOther.
func tokenize(src string) []token {
	var toks []token
	i := 0
	for i < len(src) && len(toks) < maxTokens {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\\':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case isNameStart(c):
			j := i
			for j < len(src) && isNameByte(src[j]) {
				j++
			}
			word := src[i:j]
			if j < len(src) && (src[j] == '"' || src[j] == '\'') && isStringPrefix(word) {
				s, end := scanString(src, j, strings.ContainsAny(word, "rR"))
				kind := tString
				if strings.ContainsAny(word, "fFbBtT") {
					kind = tFString
				}
				toks = append(toks, token{kind, s})
				i = end
				continue
			}
			toks = append(toks, token{tName, word})
			i = j
		case c == '"' || c == '\'':
			s, end := scanString(src, i, false)
			toks = append(toks, token{tString, s})
			i = end
		case c >= '0' && c <= '9':
			j := i
			for j < len(src) && (isNameByte(src[j]) || src[j] == '.') {
				j++
			}
			toks = append(toks, token{tOther, src[i:j]})
			i = j
		default:
			if i+1 < len(src) && strings.Contains(" == != <= >= := += -= *= /= -> ** // << >> ", " "+src[i:i+2]+" ") {
				toks = append(toks, token{tOp, src[i : i+2]})
				i += 2
				continue
			}
			if strings.IndexByte("()[]{},:;=.+-*/%<>|&^~@!", c) >= 0 {
				toks = append(toks, token{tOp, string(c)})
			} else {
				toks = append(toks, token{tOther, string(c)})
			}
			i++
		}
	}
	return joinStrings(toks)
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

func isNameByte(c byte) bool {
	return isNameStart(c) || (c >= '0' && c <= '9')
}

func isStringPrefix(w string) bool {
	if len(w) > 2 {
		return false
	}
	for _, c := range strings.ToLower(w) {
		if !strings.ContainsRune("rbuft", c) {
			return false
		}
	}
	return true
}

// scanString reads the literal whose opening quote is at src[i] and
// returns its contents (escapes kept as written unless they are \' \" or
// \\ in a non-raw string) and the index after it.
func scanString(src string, i int, raw bool) (string, int) {
	q := src[i]
	triple := i+2 < len(src) && src[i+1] == q && src[i+2] == q
	j := i + 1
	if triple {
		j = i + 3
	}
	var b strings.Builder
	for j < len(src) {
		c := src[j]
		switch {
		case c == '\\' && j+1 < len(src):
			if !raw && (src[j+1] == q || src[j+1] == '\\') {
				b.WriteByte(src[j+1])
			} else if src[j+1] != '\n' {
				b.WriteByte(c)
				b.WriteByte(src[j+1])
			}
			j += 2
			continue
		case c == q && !triple:
			return b.String(), j + 1
		case c == q && triple && j+2 < len(src) && src[j+1] == q && src[j+2] == q:
			return b.String(), j + 3
		case c == '\n' && !triple:
			return b.String(), j
		}
		b.WriteByte(c)
		j++
	}
	return b.String(), j
}

// joinStrings merges adjacent literals, as Python does:
// "config." "settings" is "config.settings".
func joinStrings(toks []token) []token {
	out := toks[:0]
	for _, t := range toks {
		if n := len(out); n > 0 && (t.kind == tString || t.kind == tFString) &&
			(out[n-1].kind == tString || out[n-1].kind == tFString) {
			if t.kind == tFString {
				out[n-1].kind = tFString
			}
			out[n-1].text += t.text
			continue
		}
		out = append(out, t)
	}
	return out
}

// settingsCandidates returns, in source order, the values src gives to
// DJANGO_SETTINGS_MODULE that are plain strings (or names bound to one).
func settingsCandidates(src string) []string {
	toks := tokenize(src)
	names := stringNames(toks)
	at := func(i int) token {
		if i >= 0 && i < len(toks) {
			return toks[i]
		}
		return token{kind: tOther}
	}
	isOp := func(i int, op string) bool { t := at(i); return t.kind == tOp && t.text == op }
	var out []string
	for i, t := range toks {
		var v int // index of the value's first token, 0 for none
		switch {
		case t.kind == tString && t.text == ConfigSettingsModule:
			switch {
			case isOp(i+1, ","): // setdefault(k, v), putenv(k, v), getenv(k, default)
				v = i + 2
				if at(v).kind == tName && isOp(v+1, "=") { // env("K", default="v")
					v += 2
				}
			case isOp(i+1, ":"): // {"K": v}
				v = i + 2
			case isOp(i+1, "]") && isOp(i+2, "="): // environ["K"] = v
				v = i + 3
			}
		case t.kind == tName && t.text == ConfigSettingsModule && isOp(i+1, "=") && !isOp(i-1, "."):
			v = i + 2 // update(K=v), dict(K=v), or a variable K = v
		}
		if v == 0 {
			continue
		}
		if s, ok := valueAt(toks, v, names); ok {
			out = append(out, s)
		}
	}
	return out
}

// valueAt reads the expression starting at toks[i] as a string: a literal
// (in parentheses or not), a name bound to a literal, or a call whose last
// of two or more arguments is a literal (os.getenv("X", "default")).
func valueAt(toks []token, i int, names map[string]string) (string, bool) {
	for i < len(toks) && toks[i].kind == tOp && toks[i].text == "(" {
		i++
	}
	if i >= len(toks) {
		return "", false
	}
	switch t := toks[i]; t.kind {
	case tString:
		if i+1 < len(toks) && toks[i+1].kind == tOp && strings.Contains("%.+[", toks[i+1].text) {
			return "", false // "x.%s" % y, "x".format(...), "x" + y
		}
		return t.text, true
	case tName:
		j := i
		for j+2 < len(toks) && toks[j+1].kind == tOp && toks[j+1].text == "." && toks[j+2].kind == tName {
			j += 2
		}
		if j+1 < len(toks) && toks[j+1].kind == tOp && toks[j+1].text == "(" {
			return lastStringArg(toks, j+1)
		}
		if j == i {
			s, ok := names[t.text]
			return s, ok
		}
	}
	return "", false
}

// lastStringArg reads the call whose "(" is at toks[open]: with two or
// more arguments of which the last is a literal (or default="literal"),
// that literal.
func lastStringArg(toks []token, open int) (string, bool) {
	depth := 0
	var args [][]token
	var cur []token
	for i := open; i < len(toks); i++ {
		t := toks[i]
		if t.kind == tOp {
			switch t.text {
			case "(", "[", "{":
				if depth++; depth == 1 {
					continue
				}
			case ")", "]", "}":
				if depth--; depth == 0 {
					if len(cur) > 0 {
						args = append(args, cur)
					}
					if len(args) < 2 {
						return "", false
					}
					last := args[len(args)-1]
					if len(last) == 3 && last[0].kind == tName && last[1].kind == tOp && last[1].text == "=" {
						last = last[2:]
					}
					if len(last) == 1 && last[0].kind == tString {
						return last[0].text, true
					}
					return "", false
				}
			case ",":
				if depth == 1 {
					args = append(args, cur)
					cur = nil
					continue
				}
			}
		}
		cur = append(cur, t)
	}
	return "", false
}

// stringNames maps the names bound to a plain string literal at the top of
// an assignment (NAME = "..."), the last binding winning.
func stringNames(toks []token) map[string]string {
	m := map[string]string{}
	for i := 0; i+2 < len(toks); i++ {
		if toks[i].kind != tName || toks[i+1].kind != tOp || toks[i+1].text != "=" || toks[i+2].kind != tString {
			continue
		}
		if i > 0 && toks[i-1].kind == tOp && (toks[i-1].text == "." || toks[i-1].text == "," || toks[i-1].text == "(") {
			continue // an attribute, or a keyword argument
		}
		if i+3 < len(toks) && toks[i+3].kind == tOp && strings.Contains("%.+[", toks[i+3].text) {
			continue
		}
		m[toks[i].text] = toks[i+2].text
	}
	return m
}
