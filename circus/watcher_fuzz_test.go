package circus

import (
	"strings"
	"testing"
)

// iniSections reads an ini file the way Python's configparser does for
// what matters here: "[name]" lines open sections, "#" and ";" lines are
// comments, "key = value" lines set keys, and an indented line continues
// the previous value (so it counts as a problem here).
func iniSections(t *testing.T, ini string) map[string]map[string][]string {
	t.Helper()
	sections := map[string]map[string][]string{}
	var cur map[string][]string
	for _, line := range strings.Split(ini, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';':
		case line[0] == ' ' || line[0] == '\t':
			t.Fatalf("continuation line %q in:\n%s", line, ini)
		case line[0] == '[':
			cur = map[string][]string{}
			sections[strings.TrimSuffix(line[1:], "]")] = cur
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || cur == nil {
				t.Fatalf("line %q is not a key in a section:\n%s", line, ini)
			}
			k = strings.ToLower(strings.TrimSpace(k)) // configparser folds key case
			cur[k] = append(cur[k], strings.TrimSpace(v))
		}
	}
	return sections
}

// FuzzWatcherIni renders a watcher from fuzzed values. Whatever watcherIni
// accepts gives one section, [watcher:<name>], in which every key of the
// template appears exactly once, and the values come back as given.
func FuzzWatcherIni(f *testing.F) {
	keys := func(user bool) []string {
		k := []string{"cmd", "args", "working_dir", "copy_env", "numprocesses", "stop_signal", "stop_children", "graceful_timeout",
			"hooks.before_signal", "max_retry", "respawn", "stdout_stream.class", "stdout_stream.filename", "stdout_stream.max_bytes",
			"stdout_stream.backup_count", "stdout_stream.time_format"}
		if user {
			k = append(k, "uid", "gid")
		}
		return k
	}
	for _, s := range []string{"hello", "hello-web", "/srv/x", "a\n[watcher:evil]\ncmd = /bin/sh", "a]\nb", "x=y", "%(here)s",
		"a b", "a;b", "#x", "\tcont", "hello\r\nuid = root"} {
		f.Add(s, s, s, s, "")
		f.Add(s, "hello-web", "/bin/conductor", "/srv/spec.json", s)
	}
	f.Fuzz(func(t *testing.T, app, name, cmd, path, user string) {
		w := Watcher{App: app, Name: name, Cmd: cmd, Spec: path, WorkingDir: path, User: user, LogFile: path,
			NumProcesses: 2, LogMaxBytes: 1 << 20, LogBackups: 3}
		out, err := watcherIni(w)
		if err != nil {
			return
		}
		ini := string(out)
		sections := iniSections(t, ini)
		sec, ok := sections["watcher:"+name]
		if len(sections) != 1 || !ok {
			t.Fatalf("want only [watcher:%s], got sections %v in:\n%s", name, sections, ini)
		}
		want := keys(user != "")
		if len(sec) != len(want) {
			t.Fatalf("want keys %v, got %v in:\n%s", want, sec, ini)
		}
		for _, k := range want {
			if len(sec[k]) != 1 {
				t.Fatalf("key %s appears %d times in:\n%s", k, len(sec[k]), ini)
			}
		}
		for k, v := range map[string]string{"cmd": cmd, "working_dir": path, "stdout_stream.filename": path,
			"args": "run-process " + path + " $(circus.wid)"} {
			if sec[k][0] != v {
				t.Fatalf("%s = %q, want %q", k, sec[k][0], v)
			}
		}
		if user != "" && (sec["uid"][0] != user || sec["gid"][0] != user) {
			t.Fatalf("uid/gid = %v/%v, want %q", sec["uid"], sec["gid"], user)
		}
	})
}
