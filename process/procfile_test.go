package process

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

func TestParseProcfile(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    Procfile
		errPart string // non-empty: parsing must fail with EINVALID and this in the message
	}{
		{
			name: "simple",
			src:  "web: gunicorn hello.wsgi --log-file -\n",
			want: Procfile{"web": "gunicorn hello.wsgi --log-file -"},
		},
		{
			name: "comments blank lines and spacing",
			src: "# the processes\n\n   \n" +
				"web:gunicorn hello.wsgi\n" +
				"  # indented comment\n" +
				"worker :   celery -A hello worker   \n" +
				"release: python manage.py migrate --noinput\n",
			want: Procfile{
				"web":     "gunicorn hello.wsgi",
				"worker":  "celery -A hello worker",
				"release": "python manage.py migrate --noinput",
			},
		},
		{
			name: "CRLF line endings",
			src:  "web: gunicorn x\r\nclock: python clock.py\r\n",
			want: Procfile{"web": "gunicorn x", "clock": "python clock.py"},
		},
		{
			name: "colon in command",
			src:  "web: gunicorn --bind 127.0.0.1:$PORT x.wsgi\n",
			want: Procfile{"web": "gunicorn --bind 127.0.0.1:$PORT x.wsgi"},
		},
		{
			name: "quoted arguments",
			src:  `worker: python -c "print('a: b')"` + "\n",
			want: Procfile{"worker": `python -c "print('a: b')"`},
		},
		{name: "no trailing newline", src: "web: a", want: Procfile{"web": "a"}},
		{name: "empty file", src: "", want: Procfile{}},
		{name: "only comments", src: "# nothing\n\n", want: Procfile{}},
		{name: "duplicate type", src: "web: a\nworker: b\nweb: c\n", errPart: "line 3: process type \"web\" declared twice"},
		{name: "dash in type", src: "my-worker: a\n", errPart: "line 1: invalid process type"},
		{name: "uppercase type", src: "Web: a\n", errPart: "invalid process type"},
		{name: "digit first", src: "1web: a\n", errPart: "invalid process type"},
		{name: "space in type", src: "web worker: a\n", errPart: "invalid process type"},
		{name: "empty type", src: ": a\n", errPart: "invalid process type"},
		{name: "missing command", src: "web:\n", errPart: "line 1: want \"type: command\""},
		{name: "blank command", src: "web:    \n", errPart: "want \"type: command\""},
		{name: "no colon", src: "\n# c\nweb gunicorn\n", errPart: "line 3: want \"type: command\""},
		{name: "shell and", src: "web: python manage.py migrate && gunicorn x\n", want: Procfile{"web": "python manage.py migrate && gunicorn x"}},
		{name: "shell pipe", src: "release: yes \"yes\" | python manage.py migrate\n", want: Procfile{"release": `yes "yes" | python manage.py migrate`}},
		{name: "assignment prefix", src: "worker: REMAP_SIGTERM=SIGQUIT celery -A x worker\n", want: Procfile{"worker": "REMAP_SIGTERM=SIGQUIT celery -A x worker"}},
		{name: "NUL byte", src: "web: a\x00b\n", errPart: "line 1: the command holds a NUL byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pf, err := ParseProcfile([]byte(tt.src))
			if tt.errPart != "" {
				if err == nil {
					t.Fatalf("ParseProcfile(%q) = %v, want error containing %q", tt.src, pf, tt.errPart)
				}
				if code := conductor.ErrorCode(err); code != conductor.EINVALID {
					t.Errorf("error code %q, want %q (%v)", code, conductor.EINVALID, err)
				}
				if msg := conductor.ErrorMessage(err); !strings.Contains(msg, tt.errPart) {
					t.Errorf("message %q does not contain %q", msg, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseProcfile(%q): %v", tt.src, err)
			}
			if !reflect.DeepEqual(pf, tt.want) {
				t.Errorf("ParseProcfile(%q) = %#v, want %#v", tt.src, pf, tt.want)
			}
		})
	}
}

func TestProcfileTypes(t *testing.T) {
	tests := []struct {
		pf   Procfile
		want []string
	}{
		{Procfile{"web": "a"}, []string{"web"}},
		{Procfile{"worker": "a", "beat": "b", "web": "c", "release": "d", "clock": "e"}, []string{"web", "beat", "clock", "worker"}},
		{Procfile{"zeta": "a", "alpha": "b"}, []string{"alpha", "zeta"}},
		{Procfile{"release": "a"}, nil},
		{Procfile{"web": "a", "webhooks": "b", "aaa": "c"}, []string{"web", "aaa", "webhooks"}},
		{Procfile{}, nil},
		{nil, nil},
	}
	for _, tt := range tests {
		// Map order is random: repeat to catch an order that depends on it.
		for i := 0; i < 20; i++ {
			if got := tt.pf.Types(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("%v.Types() = %v, want %v", tt.pf, got, tt.want)
			}
		}
	}
}

func TestReadProcfile(t *testing.T) {
	dir := t.TempDir()
	pf, err := ReadProcfile(filepath.Join(dir, "Procfile"))
	if err != nil || pf != nil {
		t.Fatalf("ReadProcfile(missing) = %v, %v; want nil, nil", pf, err)
	}
	path := filepath.Join(dir, "Procfile")
	if err := os.WriteFile(path, []byte("web: gunicorn x.wsgi\nworker: celery\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pf, err = ReadProcfile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Procfile{"web": "gunicorn x.wsgi", "worker": "celery"}); !reflect.DeepEqual(pf, want) {
		t.Errorf("ReadProcfile = %v, want %v", pf, want)
	}
	if err := os.WriteFile(path, []byte("web: a\nweb: b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadProcfile(path); conductor.ErrorCode(err) != conductor.EINVALID {
		t.Errorf("ReadProcfile(duplicate) error = %v, want EINVALID", err)
	}
	// A directory named Procfile is an error, not "no Procfile".
	dirPath := filepath.Join(dir, "sub", "Procfile")
	if err := os.MkdirAll(dirPath, 0o755); err != nil {
		t.Fatal(err)
	}
	if pf, err := ReadProcfile(dirPath); err == nil {
		t.Errorf("ReadProcfile(a directory) = %v, nil; want an error", pf)
	}
}
