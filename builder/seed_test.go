package builder

import (
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestInstalledPins: only plain public versions of well-formed names are
// read from a virtualenv's dist-info directories; what the app could name
// otherwise (a local version, a path, an option) is left out.
func TestInstalledPins(t *testing.T) {
	env := t.TempDir()
	site := filepath.Join(env, "v", "lib", "python3.11", "site-packages")
	for _, d := range []string{
		"django-5.2.19.dist-info", "Django_Q2-1.7.4.dist-info", "asgiref-3.13.0.dist-info",
		"pkg-1.0rc1.post2.dev3.dist-info", "zope.interface-7.0.dist-info",
		"local-1.0+abc.dist-info", "bad--name-1.0.dist-info", "-x-1.0.dist-info",
		"noversion.dist-info", "django", "evil-1.0.dist-info.tmp", "epoch-1!2.0.dist-info",
	} {
		if err := os.MkdirAll(filepath.Join(site, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pins, dirs, rel, err := installedPins(env, "v")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Django_Q2==1.7.4", "asgiref==3.13.0", "django==5.2.19", "pkg==1.0rc1.post2.dev3", "zope.interface==7.0"}
	if !slices.Equal(pins, want) || rel != "lib/python3.11/site-packages" || dirs["django==5.2.19"] != "django-5.2.19.dist-info" {
		t.Fatalf("pins %q in %q (%q), want %q", pins, rel, dirs, want)
	}
	// lib/ a link: not followed.
	if err := os.Rename(filepath.Join(env, "v", "lib"), filepath.Join(env, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(env, "elsewhere"), filepath.Join(env, "v", "lib")); err != nil {
		t.Fatal(err)
	}
	if pins, _, _, err := installedPins(env, "v"); err == nil {
		t.Fatalf("read through a link: %q", pins)
	}
}

// TestSeedArchive: the unpacked wheel of a name and version is found
// through uv's relative index entry, spelled as the index spells names; a
// link leading out of the seed's archives is not followed.
func TestSeedArchive(t *testing.T) {
	seed := t.TempDir()
	arch := filepath.Join(seed, "archive-v0", "AbC123")
	if err := os.MkdirAll(filepath.Join(arch, "zope", "interface"), 0o755); err != nil {
		t.Fatal(err)
	}
	entries := filepath.Join(seed, "wheels-v8", "pypi", "zope-interface")
	if err := os.MkdirAll(entries, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../archive-v0/AbC123", filepath.Join(entries, "7.0-cp311-cp311-manylinux_2_17_x86_64")); err != nil {
		t.Fatal(err)
	}
	if got := seedArchive(seed, "zope.interface", "7.0"); got != arch {
		t.Fatalf("seedArchive = %q, want %q", got, arch)
	}
	if got := seedArchive(seed, "zope_interface", "7.1"); got != "" {
		t.Fatalf("another version: %q", got)
	}
	out := filepath.Join(seed, "wheels-v8", "pypi", "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, target := range []string{"../../../../elsewhere", "/etc", "../../../wheels-v8"} {
		if err := os.Symlink(target, filepath.Join(out, "1."+string(rune('0'+i))+"-py3-none-any")); err != nil {
			t.Fatal(err)
		}
		if got := seedArchive(seed, "out", "1."+string(rune('0'+i))); got != "" {
			t.Fatalf("link %s followed: %q", target, got)
		}
	}
}

// TestStartCache: a new app's cache gets copies of the seed's interpreter
// facts (not links to root's files, not uv's lock files), and nothing is
// made when the seed has none.
func TestStartCache(t *testing.T) {
	seed, env := t.TempDir(), t.TempDir()
	if err := startCache(seed, env, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(env, ".cache")); !os.IsNotExist(err) {
		t.Fatalf("a cache made from an empty seed: %v", err)
	}
	facts := filepath.Join(seed, "interpreter-v5", "16aa")
	if err := os.MkdirAll(facts, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"7cc1.msgpack": "facts", "x.lock": ""} {
		if err := os.WriteFile(filepath.Join(facts, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(seed, "archive-v0", "X"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := startCache(seed, env, os.Getuid(), os.Getgid()); err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(env, ".cache", "interpreter-v5", "16aa", "7cc1.msgpack")
	if b, err := os.ReadFile(got); err != nil || string(b) != "facts" {
		t.Fatalf("facts: %q, %v", b, err)
	}
	var a, b os.FileInfo
	a, _ = os.Stat(got)
	b, _ = os.Stat(filepath.Join(facts, "7cc1.msgpack"))
	if os.SameFile(a, b) {
		t.Fatal("the app's cache links root's file")
	}
	for _, p := range []string{"interpreter-v5/16aa/x.lock", "archive-v0"} {
		if _, err := os.Lstat(filepath.Join(env, ".cache", p)); !os.IsNotExist(err) {
			t.Fatalf("%s copied: %v", p, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(env, ".cache")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf(".cache: %v %v", fi, err)
	}
	left, _ := filepath.Glob(filepath.Join(env, ".cache-new-*"))
	if len(left) != 0 {
		t.Fatalf("left behind: %q", left)
	}
}

// TestVerifyArchive: an unpacked wheel is compiled into the seed only when
// its RECORD gives each of its .py files' own SHA-256; pySums reads the
// .py lines alone and refuses one without a hash.
func TestVerifyArchive(t *testing.T) {
	a := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(a, filepath.Dir(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(a, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum := func(data string) string {
		s := sha256.Sum256([]byte(data))
		return "sha256=" + base64.RawURLEncoding.EncodeToString(s[:])
	}
	write("pkg/__init__.py", "x = 1\n")
	write("pkg/data.txt", "not a module")
	record := "pkg/__init__.py," + sum("x = 1\n") + ",6\npkg/data.txt," + sum("?") + ",12\npkg-1.0.dist-info/RECORD,,\n"
	write("pkg-1.0.dist-info/RECORD", record)
	if !verifyArchive(a) {
		t.Fatal("a true RECORD refused")
	}
	if got := pySums([]byte(record)); len(got) != 1 || got["pkg/__init__.py"] != sum("x = 1\n") {
		t.Fatalf("pySums = %q", got)
	}
	write("pkg/__init__.py", "import os; os.system('evil')\n") // the RECORD lies now
	if verifyArchive(a) {
		t.Fatal("a RECORD that lies about a module accepted")
	}
	write("pkg/__init__.py", "x = 1\n")
	write("pkg/extra.py", "y = 2\n") // a module the RECORD does not list
	if verifyArchive(a) {
		t.Fatal("an unlisted module accepted")
	}
	if pySums([]byte("pkg/a.py,,3\n")) != nil {
		t.Fatal("a .py without a hash accepted")
	}
}

// TestCompiledAll: a package directory's compiled modules are linked only
// when every module there has one for the interpreter.
func TestCompiledAll(t *testing.T) {
	d := t.TempDir()
	for _, f := range []string{"a.py", "b.py", "data.txt", "__pycache__/a.cpython-311.pyc", "__pycache__/b.cpython-312.pyc"} {
		if err := os.MkdirAll(filepath.Join(d, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if compiledAll(d, ".cpython-311.pyc") {
		t.Fatal("b.py has no 3.11 compiled module")
	}
	if err := os.WriteFile(filepath.Join(d, "__pycache__", "b.cpython-311.pyc"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if !compiledAll(d, ".cpython-311.pyc") {
		t.Fatal("all compiled, refused")
	}
	if compiledAll(d, ".cpython-312.pyc") || compiledAll(filepath.Join(d, "__pycache__"), ".cpython-311.pyc") {
		t.Fatal("accepted without every module compiled")
	}
}

// TestSeedModes: uv leaves its lock files writable by all; what the apps
// can reach of the seed is root's alone or read-only, and the rest closed.
func TestSeedModes(t *testing.T) {
	seed := t.TempDir()
	cache := seedCacheDir(seed)
	archive := filepath.Join(cache, "archive-v0", "abc")
	for _, d := range []string{filepath.Join(archive, "pkg"), filepath.Join(cache, "wheels-v8", "pypi", "django")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]os.FileMode{
		filepath.Join(cache, ".lock"):                                   0o666,
		filepath.Join(cache, "CACHEDIR.TAG"):                            0o644,
		filepath.Join(cache, "archive-v0", ".lock"):                     0o666,
		filepath.Join(cache, "wheels-v8", "pypi", "django", "5.2.lock"): 0o666,
		filepath.Join(archive, "pkg", "mod.py"):                         0o664,
	}
	for p, m := range files {
		if err := os.WriteFile(p, nil, m); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, m); err != nil { // whatever the umask
			t.Fatal(err)
		}
	}
	if err := seedModes(seed, []string{archive}); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{
		seed:                                 0o711,
		cache:                                0o711,
		filepath.Join(cache, ".lock"):        0o600,
		filepath.Join(cache, "CACHEDIR.TAG"): 0o600,
		filepath.Join(cache, "archive-v0"):   0o711,
		filepath.Join(cache, "archive-v0", ".lock"): 0o600,
		filepath.Join(cache, "wheels-v8"):           0o700,
		archive:                                     0o755,
		filepath.Join(archive, "pkg", "mod.py"):     0o644,
	}
	for p, m := range want {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != m {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), m)
		}
	}
}
