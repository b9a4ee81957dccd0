package process

import (
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

// FuzzParseProcfile: any bytes parse without a panic; an accepted Procfile
// has only valid process types, at most one per line, each with a command
// bash can be given (not empty, no NUL byte).
func FuzzParseProcfile(f *testing.F) {
	for _, s := range []string{
		"web: gunicorn hello.wsgi\nworker: python manage.py worker\n",
		"# comment\n\nrelease: python manage.py migrate",
		"web: gunicorn x; rm -rf /", "web: a && b", "web: a | b", "web: $(id)", "web: `id`", "Web: x", "web x",
		"web: 'unbalanced", "web: a\nweb: b", "web:", ": x", "web: a\x00b", "\xff: x", "web: a >/etc/passwd",
	} {
		f.Add([]byte(s))
	}
	f.Add([]byte("web: " + strings.Repeat("a", 70000))) // longer than bufio.Scanner's line limit
	f.Fuzz(func(t *testing.T, src []byte) {
		pf, err := ParseProcfile(src)
		if err != nil {
			if conductor.ErrorCode(err) != conductor.EINVALID || !strings.HasPrefix(conductor.ErrorMessage(err), "Procfile") {
				t.Fatalf("refusal without a clear Procfile error: %v", err)
			}
			return
		}
		if len(pf) > strings.Count(string(src), "\n")+1 {
			t.Fatalf("%d types from %d lines", len(pf), strings.Count(string(src), "\n")+1)
		}
		for typ, cmd := range pf {
			if err := conductor.ValidateProcessType(typ); err != nil {
				t.Fatalf("accepted type %q: %v", typ, err)
			}
			if err := ValidateCommand(cmd); err != nil {
				t.Fatalf("accepted command %q: %v", cmd, err)
			}
		}
	})
}
