package nginx

import (
	"fmt"
	"strings"
	"testing"
)

// confTokens splits nginx config text into statements the way nginx reads
// it: # comments to the end of the line, "…" strings with \ escapes, and
// ';', '{', '}' ending a directive or opening/closing a block. It returns
// each statement's name (first word), blocks as "name{", and "}" for
// block ends.
func confTokens(conf string) ([]string, error) {
	var directives, words []string
	var word strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(conf); i++ {
		c := conf[i]
		switch {
		case c == '#' && !inWord:
			for i < len(conf) && conf[i] != '\n' {
				i++
			}
		case c == '"':
			inWord = true
			for i++; i < len(conf) && conf[i] != '"'; i++ {
				if conf[i] == '\\' {
					i++
				}
				if i < len(conf) {
					word.WriteByte(conf[i])
				}
			}
			if i >= len(conf) {
				return nil, fmt.Errorf("unterminated string")
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush()
		case c == ';' || c == '{':
			flush()
			if len(words) == 0 {
				return nil, fmt.Errorf("empty statement at %d", i)
			}
			name := words[0]
			if c == '{' {
				name += "{"
			}
			directives = append(directives, name)
			words = words[:0]
		case c == '}':
			flush()
			if len(words) != 0 {
				return nil, fmt.Errorf("unfinished statement before }")
			}
			directives = append(directives, "}")
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	return directives, nil
}

// aliasValue is the unquoted value of the one alias directive.
func aliasValue(conf string) string {
	_, v, ok := strings.Cut(conf, "alias ")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, ";\n")
	return strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(strings.Trim(v, `"`))
}

// FuzzSiteConf renders a server block from fuzzed values. Whatever
// siteConf accepts gives exactly the template's statements — one server
// block, the same directives in the same order — and the static dir comes
// back as given: no value can add a directive or a block.
func FuzzSiteConf(f *testing.F) {
	n := &Nginx{Listen: "127.0.0.1:8080"}
	base, err := n.siteConf(Site{App: "hello", Release: "r1", Hosts: []string{"a.localhost", "b.localhost"}, Port: 9000, StaticDir: "/srv/static"})
	if err != nil {
		f.Fatal(err)
	}
	want, err := confTokens(string(base))
	if err != nil {
		f.Fatal(err)
	}
	if strings.Count(strings.Join(want, " "), "server{") != 1 {
		f.Fatalf("the template itself has no single server block: %v", want)
	}
	for _, s := range []string{"hello", "a.b", "evil.com;\n}\nserver {", `/srv/x"; root /;`, `/srv/a\"b`, "x\nadd_header a b",
		"r1 always; root /", "/srv/static/{}", "a#b", "/srv/#x;"} {
		f.Add(s, s, s, s)
	}
	f.Fuzz(func(t *testing.T, app, release, host, static string) {
		conf, err := n.siteConf(Site{App: app, Release: release, Hosts: []string{"a.localhost", host}, Port: 9000, StaticDir: static})
		if err != nil {
			return
		}
		got, err := confTokens(string(conf))
		if err != nil {
			t.Fatalf("site for app %q release %q host %q static %q does not parse: %v\n%s", app, release, host, static, err, conf)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("app %q release %q host %q static %q changed the statements:\n got %v\nwant %v\n%s", app, release, host, static, got, want, conf)
		}
		if v := aliasValue(string(conf)); v != static+"/" {
			t.Fatalf("static dir %q reads back as %q", static, v)
		}
	})
}
