package nginx

import (
	"encoding/json"
	"fmt"
	"path/filepath"
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

// aliasValues are the unquoted values of the alias directives under
// "location <loc> {", in order.
func aliasValues(conf, loc string) []string {
	var vals []string
	for _, part := range strings.Split(conf, "location "+loc+" {")[1:] {
		_, v, ok := strings.Cut(part, "alias ")
		if !ok {
			continue
		}
		v, _, _ = strings.Cut(v, ";\n")
		vals = append(vals, unquote(v))
	}
	return vals
}

// directiveValues are the unquoted values of every directive name.
func directiveValues(conf, name string) []string {
	var vals []string
	for _, line := range strings.Split(conf, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			vals = append(vals, unquote(strings.TrimSuffix(v, ";")))
		}
	}
	return vals
}

// unquote reads one nginx double-quoted string: the quotes go, and a
// backslash keeps the character after it.
func unquote(v string) string {
	v = strings.TrimPrefix(strings.TrimSuffix(v, `"`), `"`)
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// FuzzSiteConf renders server blocks from fuzzed values, without and with
// a TLS host (its certificate path fuzzed too). Whatever siteConf accepts
// gives exactly the template's statements — the same server blocks and
// directives in the same order — and the static dir and certificate path
// come back as given: no value can add a directive or a block.
func FuzzSiteConf(f *testing.F) {
	n := &Nginx{Dir: "/data/nginx", Listen: "127.0.0.1:8080", HTTPSListen: "127.0.0.1:8443"}
	render := func(app, release, host, static, tlsHost, cert string) ([]byte, error) {
		s := Site{App: app, Release: release, Hosts: []string{"a.localhost", host}, Port: 9000, StaticDir: static}
		if tlsHost != "" {
			s.Hosts = append(s.Hosts, tlsHost)
			s.TLS = []TLSHost{{Host: tlsHost, Cert: cert, Key: cert}}
		}
		return n.siteConf(s)
	}
	want := map[bool][]string{}
	for _, secure := range []bool{false, true} {
		tlsHost := ""
		if secure {
			tlsHost = "secure.example.org"
		}
		base, err := render("hello", "r1", "b.localhost", "/srv/static", tlsHost, "/data/certs/secure.example.org.pem")
		if err != nil {
			f.Fatal(err)
		}
		if want[secure], err = confTokens(string(base)); err != nil {
			f.Fatal(err)
		}
		blocks := map[bool]int{false: 1, true: 3}[secure] // plain; + redirect and HTTPS
		if got := strings.Count(strings.Join(want[secure], " "), "server{"); got != blocks {
			f.Fatalf("the template renders %d server blocks with TLS=%v, want %d: %v", got, secure, blocks, want[secure])
		}
	}
	for _, s := range []string{"hello", "a.b", "evil.com;\n}\nserver {", `/srv/x"; root /;`, `/srv/a\"b`, "x\nadd_header a b",
		"r1 always; root /", "/srv/static/{}", "a#b", "/srv/#x;", "b.localhost", "/c\"; ssl_certificate_key /etc/shadow"} {
		f.Add(s, s, s, s, s, s)
	}
	f.Fuzz(func(t *testing.T, app, release, host, static, tlsHost, cert string) {
		// The plain host a.localhost must keep its plain block.
		if tlsHost == "a.localhost" {
			return
		}
		for _, secure := range []bool{false, true} {
			th := ""
			if secure {
				th = tlsHost
			}
			if secure && th == "" {
				continue
			}
			conf, err := render(app, release, host, static, th, cert)
			if err != nil {
				continue
			}
			got, err := confTokens(string(conf))
			if err != nil {
				t.Fatalf("site for app %q release %q host %q static %q tls %q cert %q does not parse: %v\n%s", app, release, host, static, th, cert, err, conf)
			}
			if strings.Join(got, " ") != strings.Join(want[secure], " ") {
				t.Fatalf("app %q release %q host %q static %q tls %q cert %q changed the statements:\n got %v\nwant %v\n%s", app, release, host, static, th, cert, got, want[secure], conf)
			}
			aliases := aliasValues(string(conf), "/static/")
			if len(aliases) != map[bool]int{false: 1, true: 2}[secure] {
				t.Fatalf("static aliases %q: want one per app server block", aliases)
			}
			for _, v := range aliases {
				if v != "$conductor_static" {
					t.Fatalf("static alias %q: want the route's $conductor_static", v)
				}
			}
			// The static dir goes to the route file, JSON that conductor.js
			// parses: it reads back as given (cleaned, "/" added).
			if rt, err := siteRoute(Site{App: app, Release: release, Port: 9000, StaticDir: static}); err == nil {
				var r route
				if err := json.Unmarshal(rt, &r); err != nil || r.Static != filepath.Clean(static)+"/" || r.Release != release {
					t.Fatalf("route of static %q release %q reads back as %+v (%v)", static, release, r, err)
				}
			}
			if secure {
				for _, d := range []string{"ssl_certificate", "ssl_certificate_key"} {
					if v := directiveValues(string(conf), d); len(v) != 1 || v[0] != cert {
						t.Fatalf("certificate path %q reads back from %s as %q", cert, d, v)
					}
				}
			}
		}
	})
}
