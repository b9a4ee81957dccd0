package provision

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// pyDecode reads one Python 3 str literal the way Python does, for the
// escapes strconv.QuoteToASCII emits (\a \b \f \n \r \t \v \\ \" \xNN
// \uNNNN \UNNNNNNNN). Python reads \xNN as the code point NN, not a byte.
// Anything else — a raw control character, a non-ASCII byte, an unknown
// escape (Python would keep its backslash), trailing text — is an error,
// so the fuzz target fails if pyString ever emits it.
func pyDecode(lit string) (string, error) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", fmt.Errorf("not a double-quoted literal: %q", lit)
	}
	body := lit[1 : len(lit)-1]
	var out strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '"':
			return "", fmt.Errorf("unescaped quote at %d ends the literal early", i)
		case c < 0x20 || c >= 0x7f:
			return "", fmt.Errorf("raw byte %#x at %d", c, i)
		case c != '\\':
			out.WriteByte(c)
			continue
		}
		i++
		if i >= len(body) {
			return "", fmt.Errorf("trailing backslash")
		}
		simple := map[byte]byte{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v', '\\': '\\', '"': '"'}
		if r, ok := simple[body[i]]; ok {
			out.WriteByte(r)
			continue
		}
		digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[body[i]]
		if digits == 0 || i+1+digits > len(body) {
			return "", fmt.Errorf("escape \\%c at %d is not one Python reads the same way", body[i], i)
		}
		n, err := strconv.ParseUint(body[i+1:i+1+digits], 16, 32)
		if err != nil {
			return "", fmt.Errorf("escape at %d: %w", i, err)
		}
		if n > utf8.MaxRune || (n >= 0xD800 && n <= 0xDFFF) {
			return "", fmt.Errorf("escape at %d: %#x is not a character", i, n)
		}
		out.WriteRune(rune(n))
		i += digits
	}
	return out.String(), nil
}

func TestPyDecode(t *testing.T) {
	for lit, want := range map[string]string{
		`"a\"b\\c"`: `a"b\c`, `"\n\x00\x7f"`: "\n\x00\x7f", `"\u00e9\U0001f600"`: "é😀",
	} {
		if got, err := pyDecode(lit); err != nil || got != want {
			t.Errorf("pyDecode(%s) = %q, %v; want %q", lit, got, err, want)
		}
	}
	for _, bad := range []string{`"a"b"`, `"\q"`, "\"\n\"", `"\x4"`, `"\ud800"`, `'a'`, `"é"`, `"\"`} {
		if got, err := pyDecode(bad); err == nil {
			t.Errorf("pyDecode(%s) = %q, want an error", bad, got)
		}
	}
}

// FuzzSettingsLiteral renders local_settings.py with fuzzed values: each
// value's literal stays on its own line and reads back, with Python's
// escape rules, as exactly the value (invalid UTF-8 becomes U+FFFD), and
// no value changes the file's shape.
func FuzzSettingsLiteral(f *testing.F) {
	for _, s := range []string{"plain", `a"b`, `x\"; import os; os.system("id") #`, "line\nDEBUG = True", "\x00\x7f\r",
		"é中😀", "\xff\xfe", `\N{BULLET}`, "\\x41", "'''", "$(id) `id`", "\u2028\u2029"} {
		f.Add(s, s)
	}
	render := func(secret, host, password string) string {
		var buf bytes.Buffer
		err := templates.ExecuteTemplate(&buf, "local_settings.py.tmpl", Settings{
			App: "hello", Release: "r1", Module: "hello.settings", SecretKey: secret, Hosts: []string{"hello.localhost", host},
			DBs:        []Database{{Alias: "default", Engine: "django.db.backends.postgresql", Name: "hello", Host: "127.0.0.1", Port: "5432", User: "hello", Password: password}},
			StaticRoot: "/srv/static", MediaRoot: "/srv/media",
		})
		if err != nil {
			f.Fatal(err)
		}
		return buf.String()
	}
	baseLines := strings.Count(render("k", "h", "p"), "\n")
	f.Fuzz(func(t *testing.T, secret, password string) {
		want := func(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
		lit := pyString(secret)
		if strings.ContainsAny(lit, "\n\r") {
			t.Fatalf("literal of %q spans lines: %s", secret, lit)
		}
		if got, err := pyDecode(lit); err != nil || got != want(secret) {
			t.Fatalf("literal of %q reads back as %q, %v", secret, got, err)
		}
		conf := render(secret, secret, password)
		if n := strings.Count(conf, "\n"); n != baseLines {
			t.Fatalf("values changed the file from %d to %d lines:\n%s", baseLines, n, conf)
		}
		found := 0
		for _, line := range strings.Split(conf, "\n") {
			line = strings.TrimSpace(line)
			var lit, value string
			switch {
			case strings.HasPrefix(line, "SECRET_KEY = "):
				lit, value = strings.TrimPrefix(line, "SECRET_KEY = "), secret
			case strings.HasPrefix(line, `"PASSWORD": `):
				lit, value = strings.TrimSuffix(strings.TrimPrefix(line, `"PASSWORD": `), ","), password
			case strings.HasPrefix(line, `ALLOWED_HOSTS = ["hello.localhost", `):
				lit, value = strings.TrimSuffix(strings.TrimPrefix(line, `ALLOWED_HOSTS = ["hello.localhost", `), "]"), secret
			default:
				continue
			}
			if got, err := pyDecode(lit); err != nil || got != want(value) {
				t.Fatalf("line %q reads back as %q, %v; want %q", line, got, err, want(value))
			}
			found++
		}
		if found != 3 {
			t.Fatalf("found %d of the 3 fuzzed lines in:\n%s", found, conf)
		}
	})
}
