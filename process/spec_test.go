package process

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	env := map[string]string{"PORT": "8123", "APP": "hello", "EMPTY": ""}
	tests := []struct {
		name    string
		cmd     string
		env     map[string]string
		want    []string
		errPart string
	}{
		{"plain", "gunicorn hello.wsgi --log-file -", env, []string{"gunicorn", "hello.wsgi", "--log-file", "-"}, ""},
		{"extra spaces", "  a   b\tc  ", env, []string{"a", "b", "c"}, ""},
		{"$PORT", "gunicorn --bind 127.0.0.1:$PORT x.wsgi", env, []string{"gunicorn", "--bind", "127.0.0.1:8123", "x.wsgi"}, ""},
		{"${PORT}", "gunicorn -b 0.0.0.0:${PORT} --name=${APP}_web", env, []string{"gunicorn", "-b", "0.0.0.0:8123", "--name=hello_web"}, ""},
		{"unset var is empty", "run --x=$NOPE --y=${EMPTY}", env, []string{"run", "--x=", "--y="}, ""},
		{"nil env keeps $PORT", "gunicorn -b :$PORT", nil, []string{"gunicorn", "-b", ":$PORT"}, ""},
		{"double quotes", `python -c "print('hi there')"`, env, []string{"python", "-c", "print('hi there')"}, ""},
		{"single quotes", `echo 'a  b' "c d"`, env, []string{"echo", "a  b", "c d"}, ""},
		{"escaped space", `echo a\ b`, env, []string{"echo", "a b"}, ""},
		{"quoted var", `echo "port $PORT"`, env, []string{"echo", "port 8123"}, ""},
		{"ampersand inside a word", "curl http://x/?a=1&b=2", env, []string{"curl", "http://x/?a=1&b=2"}, ""},
		{"and", "python manage.py migrate && gunicorn x", env, nil, "shell operators"},
		{"or", "a || b", env, nil, "shell operators"},
		{"pipe", "a | b", env, nil, "shell operators"},
		{"semicolon", "a ; b", env, nil, "shell operators"},
		{"background", "a &", env, nil, "shell operators"},
		{"redirect out", "a > log", env, nil, "shell operators"},
		{"append", "a >> log", env, nil, "shell operators"},
		{"redirect in", "a < in", env, nil, "shell operators"},
		{"empty", "", env, nil, "empty command"},
		{"blank", "   ", env, nil, "empty command"},
		{"comment only", "# nothing", env, nil, "empty command"},
		{"unclosed quote", `echo "oops`, env, nil, "cannot split command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitCommand(tt.cmd, tt.env)
			if tt.errPart != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errPart) {
					t.Fatalf("SplitCommand(%q) = %q, %v; want an error containing %q", tt.cmd, got, err, tt.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("SplitCommand(%q): %v", tt.cmd, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitCommand(%q) = %q, want %q", tt.cmd, got, tt.want)
			}
		})
	}
}

// TestSplitCommandExpandedValuesAreData checks that a config value expanded
// into a command is data, as in a shell: its quotes and operator-looking
// words must not change how the command line is split. Config values come
// from `config:set`, so any value must be usable.
func TestSplitCommandExpandedValuesAreData(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		env  map[string]string
		want []string
	}{
		{"apostrophe in value", "gunicorn x.wsgi --name $NAME", map[string]string{"NAME": "it's"}, []string{"gunicorn", "x.wsgi", "--name", "it's"}},
		{"double quote in quoted value", `run --greeting "$GREETING"`, map[string]string{"GREETING": `say "hi"`}, []string{"run", "--greeting", `say "hi"`}},
		{"operator in value", `run "$ARGS"`, map[string]string{"ARGS": "a && b"}, []string{"run", "a && b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SplitCommand(tt.cmd, tt.env)
			if err != nil {
				t.Fatalf("SplitCommand(%q, %q): %v; want %q", tt.cmd, tt.env, err, tt.want)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitCommand(%q, %q) = %q, want %q", tt.cmd, tt.env, got, tt.want)
			}
		})
	}
}

func TestEnviron(t *testing.T) {
	got := Environ(map[string]string{"PATH": "/bin", "A": "x=y", "EMPTY": "", "Z": "multi\nline"})
	want := []string{"A=x=y", "EMPTY=", "PATH=/bin", "Z=multi\nline"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Environ = %q, want %q", got, want)
	}
	if got := Environ(nil); len(got) != 0 {
		t.Errorf("Environ(nil) = %q", got)
	}
}

func TestWriteSpec(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		spec Spec
	}{
		{"web", Spec{
			Argv: []string{"gunicorn", "hello.wsgi", "--bind", "127.0.0.1:9000"},
			Env:  map[string]string{"PORT": "9000", "PATH": "/venv/bin:/usr/bin", "HOME": "/srv/projects/hello"},
			Dir:  "/srv/projects/hello/releases/r1",
		}},
		{"hostile values", Spec{
			Argv: []string{"python", "-c", "print(\"it's\")", "$(id)", "a;b", "%(here)s", "\t\n"},
			Env: map[string]string{
				"QUOTES":  `"'\`,
				"NEWLINE": "a\nb\r\n[watcher:evil]\ncmd = /bin/sh",
				"PERCENT": "%(ENV_HOME)s %%",
				"DOLLAR":  "$HOME ${PATH}",
				"UNICODE": "שלום 🌍 \u2028",
				"EMPTY":   "",
			},
			Dir: "/srv/dir with spaces/'q'",
		}},
		{"minimal", Spec{Argv: []string{"true"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".json")
			// Writing twice replaces the file.
			for i := 0; i < 2; i++ {
				if err := WriteSpec(path, &tt.spec, os.Getuid(), os.Getgid()); err != nil {
					t.Fatalf("WriteSpec: %v", err)
				}
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if mode := fi.Mode().Perm(); mode != 0o640 {
				t.Errorf("spec mode = %o, want 640 (root's, the app's group reads it)", mode)
			}
			if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("temporary file left behind: %v", err)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var got Spec
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatalf("spec is not valid JSON: %v\n%s", err, data)
			}
			if !reflect.DeepEqual(got, tt.spec) {
				t.Errorf("round trip = %#v, want %#v", got, tt.spec)
			}
			// The field names are what run-process reads.
			var raw map[string]json.RawMessage
			if err := json.Unmarshal(data, &raw); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"argv", "env", "dir"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("spec JSON has no %q key: %s", k, data)
				}
			}
		})
	}
	if err := WriteSpec(filepath.Join(dir, "missing", "x.json"), &Spec{Argv: []string{"a"}}, os.Getuid(), os.Getgid()); err == nil {
		t.Error("WriteSpec into a missing directory succeeded")
	}
}

// TestWriteSpecReplacesPlantedLinks: a link planted where the spec (or its
// temporary file) goes is replaced; its target keeps its content and mode.
func TestWriteSpecReplacesPlantedLinks(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	target := filepath.Join(outside, "target")
	if err := os.WriteFile(target, []byte("root's"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "web.json")
	for _, link := range []string{path, path + ".tmp", filepath.Join(dir, ".web.json."+strconv.Itoa(os.Getpid())+".tmp")} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteSpec(path, &Spec{Argv: []string{"true"}}, 12345, 12345); err != nil {
		t.Fatalf("WriteSpec: %v", err)
	}
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("spec is %v, %v; want a regular file", fi, err)
	}
	tfi, _ := os.Stat(target)
	if b, _ := os.ReadFile(target); string(b) != "root's" || tfi.Mode().Perm() != 0o600 {
		t.Fatalf("the link's target changed: %q %v", b, tfi.Mode())
	}
	if os.Geteuid() == 0 {
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 12345 {
			t.Errorf("spec owner = %d:%d, want 0:12345", st.Uid, st.Gid)
		}
		if tst := tfi.Sys().(*syscall.Stat_t); tst.Uid != 0 {
			t.Errorf("the link's target was chowned to %d", tst.Uid)
		}
	}
}

func TestLookPath(t *testing.T) {
	base := t.TempDir()
	first := filepath.Join(base, "first")
	second := filepath.Join(base, "second")
	for _, d := range []string{first, second, filepath.Join(first, "isdir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(first, "noexec"), 0o644)
	write(filepath.Join(second, "noexec"), 0o755)
	write(filepath.Join(first, "both"), 0o755)
	write(filepath.Join(second, "both"), 0o755)
	write(filepath.Join(second, "isdir"), 0o700)
	write(filepath.Join(second, "only2"), 0o500)
	write(filepath.Join(first, "plain"), 0o644)

	path := first + string(filepath.ListSeparator) + second
	tests := []struct {
		name, path, want string // want "" means not found
	}{
		{"both", path, filepath.Join(first, "both")},
		{"noexec", path, filepath.Join(second, "noexec")},
		{"isdir", path, filepath.Join(second, "isdir")},
		{"only2", path, filepath.Join(second, "only2")},
		{"plain", path, ""},
		{"missing", path, ""},
		{"both", "", ""},
		{"both", second, filepath.Join(second, "both")},
		{"both", filepath.Join(base, "nonexistent") + string(filepath.ListSeparator) + first, filepath.Join(first, "both")},
	}
	for _, tt := range tests {
		got, err := LookPath(tt.name, tt.path)
		if tt.want == "" {
			if err == nil {
				t.Errorf("LookPath(%q, %q) = %q, want not found", tt.name, tt.path, got)
				continue
			}
			if !errors.Is(err, exec.ErrNotFound) {
				t.Errorf("LookPath(%q, %q) error = %v, want exec.ErrNotFound", tt.name, tt.path, err)
			}
			var ee *exec.Error
			if !errors.As(err, &ee) || ee.Name != tt.name {
				t.Errorf("LookPath(%q) error %#v does not name the command", tt.name, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("LookPath(%q, %q) = %q, %v; want %q", tt.name, tt.path, got, err, tt.want)
		}
	}
}

func TestSplitProcfileCommand(t *testing.T) {
	env := map[string]string{"PORT": "8123"}
	for _, tt := range []struct {
		cmd     string
		argv    []string
		assigns map[string]string
		err     bool
	}{
		{"celery worker", []string{"celery", "worker"}, map[string]string{}, false},
		{"REMAP_SIGTERM=SIGQUIT celery -A x worker", []string{"celery", "-A", "x", "worker"}, map[string]string{"REMAP_SIGTERM": "SIGQUIT"}, false},
		{"A=1 B='two words' run --port=$PORT", []string{"run", "--port=8123"}, map[string]string{"A": "1", "B": "two words"}, false},
		{"WEB_CONCURRENCY=$PORT gunicorn", []string{"gunicorn"}, map[string]string{"WEB_CONCURRENCY": "8123"}, false},
		{"run A=1", []string{"run", "A=1"}, map[string]string{}, false}, // only leading words assign
		{"A=1 B=2", nil, nil, true},
		{"1A=x run", []string{"1A=x", "run"}, map[string]string{}, false}, // not a name: the command
	} {
		argv, assigns, err := SplitProcfileCommand(tt.cmd, env)
		if (err != nil) != tt.err || !reflect.DeepEqual(argv, tt.argv) || (!tt.err && !reflect.DeepEqual(assigns, tt.assigns)) {
			t.Errorf("SplitProcfileCommand(%q) = %q, %v, %v; want %q, %v, error %v", tt.cmd, argv, assigns, err, tt.argv, tt.assigns, tt.err)
		}
	}
}
