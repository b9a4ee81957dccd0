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

// TestShellCommands runs Procfile commands the way circus does (run-process
// on a spec), as Heroku and Dokku run them: by bash, so pipes, &&,
// VAR=value prefixes and $PORT work, while a config value expanded into the
// command stays one piece of data. The last simple command replaces bash:
// the pid in the start line is the command's own, which circus signals.
func TestShellCommands(t *testing.T) {
	env := map[string]string{"PATH": "/usr/bin:/bin", "PORT": "8123", "VALUE": `it's "a && b"; $(id) | x`}
	for _, tt := range []struct {
		name, cmd, want string
	}{
		{"pipe", "echo yes | tr y Y", "Yes\n"},
		{"and", "true && echo second", "second\n"},
		{"or", "false || echo fallback", "fallback\n"},
		{"assignment prefix", `GREETING=hi sh -c 'echo "$GREETING"'`, "hi\n"},
		{"port", "echo port=$PORT ${PORT}", "port=8123 8123\n"},
		{"value is data", `printf '%s\n' "$VALUE"`, `it's "a && b"; $(id) | x` + "\n"},
		{"yes piped into a prompt", `yes yes | head -n 2`, "yes\nyes\n"},
		{"redirect", "echo to-stderr >&2", "to-stderr\n"}, // stderr joins stdout
		{"exec semantics", `A=1 sh -c 'echo "pid $$"'`, "pid PID\n"},
		{"exec after a list", `cd / && A=1 sh -c 'echo "pid $$"'`, "pid PID\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runProcess(t, writeShellSpec(t, tt.cmd, env))
			start, rest, _ := strings.Cut(out, "\n")
			prefix := StartLinePrefix + "web.1 (pid "
			pid, shown, ok := strings.Cut(strings.TrimPrefix(start, prefix), "): ")
			if err != nil || !strings.HasPrefix(start, prefix) || !ok || shown != tt.cmd {
				t.Fatalf("run-process %q: %v; start line %q, want %s<pid>): %s\n%s", tt.cmd, err, start, prefix, tt.cmd, out)
			}
			if want := strings.ReplaceAll(tt.want, "PID", pid); rest != want {
				t.Errorf("run-process %q printed %q, want %q", tt.cmd, rest, want)
			}
		})
	}
}

// writeShellSpec writes the spec the builder writes for a Procfile command:
// as root, root's spec naming the nobody user; else the caller's own.
func writeShellSpec(t *testing.T, cmd string, env map[string]string) string {
	t.Helper()
	s := &Spec{Type: "web", Argv: ShellArgv(cmd), Command: cmd, Env: env, Dir: "/"}
	if os.Geteuid() == 0 {
		s.UID, s.GID = nobody, nobody
		return writeTestSpec(t, t.TempDir(), s, 0, 0, 0o600)
	}
	return writeTestSpec(t, t.TempDir(), s, os.Getuid(), os.Getgid(), 0o600)
}

func TestValidateCommand(t *testing.T) {
	for _, tt := range []struct {
		cmd, errPart string
	}{
		{"gunicorn hello.wsgi", ""},
		{"yes yes | python manage.py migrate && gunicorn x", ""},
		{"REMAP_SIGTERM=SIGQUIT celery -A x worker", ""},
		{"echo 'unclosed", ""}, // bash says so in the process's log
		{"", "empty command"},
		{"  \t", "empty command"},
		{"a\x00b", "NUL"},
	} {
		err := ValidateCommand(tt.cmd)
		if (tt.errPart == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.errPart)) {
			t.Errorf("ValidateCommand(%q) = %v, want error containing %q", tt.cmd, err, tt.errPart)
		}
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
