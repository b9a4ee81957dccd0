package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hasadna/conductor/internal/safefs"
)

type tarEntry struct {
	name     string
	typ      byte
	mode     int64
	body     string
	linkname string
}

func tarFile(name, body string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeReg, mode: 0o644, body: body}
}
func tarExe(name, body string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeReg, mode: 0o755, body: body}
}
func tarDir(name string) tarEntry { return tarEntry{name: name, typ: tar.TypeDir, mode: 0o755} }
func tarSymlink(name, target string) tarEntry {
	return tarEntry{name: name, typ: tar.TypeSymlink, mode: 0o777, linkname: target}
}

func tarGz(t *testing.T, entries ...tarEntry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.linkname, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if e.typ == tar.TypeXGlobalHeader {
			h.PAXRecords = map[string]string{"comment": "0123456789abcdef0123456789abcdef01234567"}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.name, err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestExtractTarGz(t *testing.T) {
	dst := t.TempDir()
	archive := tarGz(t,
		tarEntry{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
		tarDir("app/"),
		tarFile("app/a.txt", "hello\n"),
		tarExe("app/run.sh", "#!/bin/sh\necho hi\n"),
		tarFile("deep/er/path/b.txt", "no dir entries before me"),
		tarSymlink("app/link", "a.txt"),
		tarSymlink("applink", "app"),
		tarSymlink("dangling", "does-not-exist"),
		tarFile("./dot/c.txt", "cleaned"),
		tarFile("manage.py", `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hello.settings")`),
		tarFile("empty", ""),
	)
	if _, err := extractTarGz(archive, dst, safefs.Keep, safefs.Keep); err != nil {
		t.Fatalf("extractTarGz: %v", err)
	}

	files := []struct {
		path, body string
		exec       bool
	}{
		{"app/a.txt", "hello\n", false},
		{"app/run.sh", "#!/bin/sh\necho hi\n", true},
		{"deep/er/path/b.txt", "no dir entries before me", false},
		{"app/link", "hello\n", false},
		{"applink/a.txt", "hello\n", false},
		{"dot/c.txt", "cleaned", false},
		{"manage.py", `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hello.settings")`, false},
		{"empty", "", false},
	}
	for _, f := range files {
		p := filepath.Join(dst, f.path)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Errorf("read %s: %v", f.path, err)
			continue
		}
		if string(data) != f.body {
			t.Errorf("%s = %q, want %q", f.path, data, f.body)
		}
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm()&0o111 != 0; got != f.exec {
			t.Errorf("%s mode %v: executable = %v, want %v", f.path, fi.Mode(), got, f.exec)
		}
		if fi.Mode().Perm()&0o400 == 0 {
			t.Errorf("%s mode %v is not readable by its owner", f.path, fi.Mode())
		}
	}
	links := map[string]string{"app/link": "a.txt", "applink": "app", "dangling": "does-not-exist"}
	for name, target := range links {
		got, err := os.Readlink(filepath.Join(dst, name))
		if err != nil || got != target {
			t.Errorf("Readlink(%s) = %q, %v; want %q", name, got, err, target)
		}
	}
	for _, d := range []string{"app", "deep/er/path", "dot"} {
		if fi, err := os.Lstat(filepath.Join(dst, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s is not a directory: %v", d, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dst, "pax_global_header")); err == nil {
		t.Error("pax_global_header was extracted as a file")
	}
}

// TestExtractTarGzRealGitArchive unpacks what `git archive` really produces.
func TestExtractTarGzRealGitArchive(t *testing.T) {
	repo := t.TempDir()
	git := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return out
	}
	git("init", "-q", "-b", "main")
	if err := os.MkdirAll(filepath.Join(repo, "pkg"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "pkg", "mod.py"), []byte("X = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "bin.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pkg/mod.py", filepath.Join(repo, "alias.py")); err != nil {
		t.Fatal(err)
	}
	git("add", "-A")
	git("commit", "-q", "-m", "x")
	archive := git("archive", "--format=tar.gz", "HEAD")

	dst := t.TempDir()
	if _, err := extractTarGz(bytes.NewReader(archive), dst, safefs.Keep, safefs.Keep); err != nil {
		t.Fatalf("extractTarGz(git archive): %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(dst, "alias.py")); err != nil || string(data) != "X = 1\n" {
		t.Errorf("alias.py = %q, %v", data, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "bin.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("bin.sh lost its executable bit: %v %v", fi, err)
	}
}

func TestExtractTarGzRefusesEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries func(outside string) []tarEntry
	}{
		{"dot-dot file", func(string) []tarEntry { return []tarEntry{tarFile("../evil", "x")} }},
		{"dot-dot dir", func(string) []tarEntry { return []tarEntry{tarDir("../evildir/")} }},
		{"dot-dot in the middle", func(string) []tarEntry { return []tarEntry{tarFile("a/../../evil", "x")} }},
		{"absolute path", func(outside string) []tarEntry { return []tarEntry{tarFile(filepath.Join(outside, "abs"), "x")} }},
		{"absolute dir", func(outside string) []tarEntry { return []tarEntry{tarDir(filepath.Join(outside, "absdir") + "/")} }},
		{"dot-dot symlink name", func(string) []tarEntry { return []tarEntry{tarSymlink("../evil", "/etc/passwd")} }},
		{"file through absolute symlink", func(outside string) []tarEntry {
			return []tarEntry{tarSymlink("link", outside), tarFile("link/file", "x")}
		}},
		{"file through relative symlink", func(string) []tarEntry {
			return []tarEntry{tarSymlink("link", "../../outside"), tarFile("link/file", "x")}
		}},
		{"nested file through symlink", func(outside string) []tarEntry {
			return []tarEntry{tarSymlink("link", outside), tarFile("link/sub/dir/file", "x")}
		}},
		{"dir through symlink", func(outside string) []tarEntry {
			return []tarEntry{tarSymlink("link", outside), tarDir("link/sub/")}
		}},
		{"symlink through symlink", func(outside string) []tarEntry {
			return []tarEntry{tarSymlink("link", outside), tarSymlink("link/planted", "/etc/passwd")}
		}},
		{"file through symlinked parent chain", func(string) []tarEntry {
			return []tarEntry{tarDir("a/"), tarSymlink("a/up", ".."), tarSymlink("a/up2", "up/.."), tarFile("a/up2/outside/file", "x")}
		}},
		{"overwrite through dangling symlink", func(outside string) []tarEntry {
			return []tarEntry{tarSymlink("link", filepath.Join(outside, "target")), tarFile("link", "x")}
		}},
		{"symlink to an absolute path", func(string) []tarEntry {
			return []tarEntry{tarSymlink("Procfile", "/etc/passwd")}
		}},
		{"symlink climbing out", func(string) []tarEntry {
			return []tarEntry{tarDir("a/"), tarSymlink("a/settings", "../../outside/x")}
		}},
		{"hard link", func(string) []tarEntry {
			return []tarEntry{{name: "hl", typ: tar.TypeLink, linkname: "/etc/passwd"}}
		}},
		{"device", func(string) []tarEntry {
			return []tarEntry{{name: "dev", typ: tar.TypeChar, mode: 0o666}}
		}},
		{"fifo", func(string) []tarEntry {
			return []tarEntry{{name: "fifo", typ: tar.TypeFifo, mode: 0o666}}
		}},
		{"duplicate file", func(string) []tarEntry {
			return []tarEntry{tarFile("a", "1"), tarFile("a", "2")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dst := filepath.Join(base, "release", "r1")
			outside := filepath.Join(base, "outside")
			for _, d := range []string{dst, outside} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			_, err := extractTarGz(tarGz(t, tt.entries(outside)...), dst, safefs.Keep, safefs.Keep)
			if err == nil {
				t.Errorf("extractTarGz succeeded, want an error")
			}
			// Nothing may exist outside dst but what the test made.
			var found []string
			filepath.Walk(base, func(p string, fi os.FileInfo, err error) error {
				if err != nil {
					return nil
				}
				if p == dst {
					return filepath.SkipDir
				}
				switch p {
				case base, filepath.Join(base, "release"), outside:
					return nil
				}
				found = append(found, strings.TrimPrefix(p, base))
				return nil
			})
			if len(found) > 0 {
				t.Errorf("extraction wrote outside the release dir: %v", found)
			}
		})
	}
}

// TestExtractTarGzOwnerAndModes: code is the app's and private to it (0640,
// 0750 for executables and directories), links included.
func TestExtractTarGzOwnerAndModes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files to another user needs root")
	}
	dst := t.TempDir()
	const uid, gid = 23456, 23457
	if _, err := extractTarGz(tarGz(t, tarFile("deep/a.py", "x"), tarExe("run.sh", "#!/bin/sh"), tarSymlink("deep/l", "a.py")), dst, uid, gid); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{"deep": 0o750 | os.ModeDir, "deep/a.py": 0o640, "run.sh": 0o750, "deep/l": 0o777 | os.ModeSymlink} {
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != mode || st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", name, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
		}
	}
}

func TestExtractTarGzBadInput(t *testing.T) {
	for name, data := range map[string][]byte{
		"not gzip":  []byte("plain text, not an archive"),
		"truncated": tarGz(t, tarFile("a", strings.Repeat("x", 10000))).Bytes()[:40],
	} {
		if _, err := extractTarGz(bytes.NewReader(data), t.TempDir(), safefs.Keep, safefs.Keep); err == nil {
			t.Errorf("%s: extractTarGz succeeded", name)
		}
	}
	if _, err := extractTarGz(tarGz(t, tarFile("a", "x")), filepath.Join(t.TempDir(), "missing"), safefs.Keep, safefs.Keep); err == nil {
		t.Error("extractTarGz into a missing dir succeeded")
	}
}

func TestIndentWriter(t *testing.T) {
	const pad = "       "
	tests := []struct {
		name   string
		writes []string
		flush  bool
		want   string
	}{
		{"one line", []string{"hello\n"}, false, pad + "hello\n"},
		{"lines", []string{"a\nb\nc\n"}, false, pad + "a\n" + pad + "b\n" + pad + "c\n"},
		{"split across writes", []string{"hel", "lo\nwor", "ld\n"}, false, pad + "hello\n" + pad + "world\n"},
		{"blank lines dropped", []string{"a\n\n   \n\t\nb\n"}, false, pad + "a\n" + pad + "b\n"},
		{"CRLF", []string{"a\r\nb\r\n"}, false, pad + "a\n" + pad + "b\n"},
		{"carriage return progress", []string{"10%\r50%\r100%\n"}, false, pad + "10%\n" + pad + "50%\n" + pad + "100%\n"},
		{"partial line held", []string{"a\npartial"}, false, pad + "a\n"},
		{"partial line flushed", []string{"a\npartial"}, true, pad + "a\n" + pad + "partial\n"},
		{"flush blank", []string{"a\n   "}, true, pad + "a\n"},
		{"flush nothing", nil, true, ""},
		{"leading spaces kept", []string{"  x\n"}, false, pad + "  x\n"},
		{"percent signs", []string{"100% %s %d\n"}, false, pad + "100% %s %d\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			w := &indentWriter{w: &out}
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if tt.flush {
				w.Flush()
				// A second flush writes nothing more.
				w.Flush()
			}
			if got := out.String(); got != tt.want {
				t.Errorf("output = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMigrationsDigest: the digest extractTarGz returns covers the files in
// migrations directories, their names and contents, and nothing else.
func TestMigrationsDigest(t *testing.T) {
	digest := func(entries ...tarEntry) string {
		t.Helper()
		d, err := extractTarGz(tarGz(t, entries...), t.TempDir(), safefs.Keep, safefs.Keep)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := []tarEntry{
		tarDir("shop/"), tarFile("shop/views.py", "v1"), tarDir("shop/migrations/"),
		tarFile("shop/migrations/__init__.py", ""), tarFile("shop/migrations/0001_initial.py", "ops = 1"),
		tarFile("vendor/blog/migrations/0001_initial.py", "ops = 2"),
	}
	with := func(i int, e tarEntry) []tarEntry {
		out := slices.Clone(base)
		if i < len(out) {
			out[i] = e
		} else {
			out = append(out, e)
		}
		return out
	}
	want := digest(base...)
	if got := digest(with(1, tarFile("shop/views.py", "v2"))...); got != want {
		t.Errorf("a change outside migrations changed the digest")
	}
	if got := digest(with(6, tarFile("shop/templates/migrations.html", "x"))...); got != want {
		t.Errorf("a file merely named migrations.* changed the digest")
	}
	for name, entries := range map[string][]tarEntry{
		"content":        with(4, tarFile("shop/migrations/0001_initial.py", "ops = 3")),
		"a nested app's": with(5, tarFile("vendor/blog/migrations/0001_initial.py", "ops = 3")),
		"a new file":     with(6, tarFile("shop/migrations/0002_more.py", "ops = 4")),
		"a renamed file": with(4, tarFile("shop/migrations/0001_first.py", "ops = 1")),
		"a file gone":    base[:5],
		"a link instead": with(4, tarSymlink("shop/migrations/0001_initial.py", "../views.py")),
	} {
		if digest(entries...) == want {
			t.Errorf("%s in a migrations dir did not change the digest", name)
		}
	}
}
