package pythons

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hasadna/conductor"
)

// The tests run real interpreters: pyenv's CPython 3.12 (under /root,
// which app users cannot read), or the copy `make setup` registered in
// DefaultDir, and Debian's /usr/bin/python3 as the host default.
const (
	pyenvVersions = "/root/.pyenv/versions"
	hostDefault   = "/usr/bin/python3"
	uvBin         = "/opt/conductor/uv/bin/uv"
)

// source3_12 is a CPython 3.12 installation to register: pyenv's if there
// is one, else the one make setup registered. Without either the test
// fails: registering real interpreters is the point.
func source3_12(t *testing.T) string {
	t.Helper()
	for _, glob := range []string{pyenvVersions + "/3.12.*", DefaultDir + "/3.12.*"} {
		found, _ := filepath.Glob(glob)
		for _, d := range found {
			if fi, err := os.Lstat(filepath.Join(d, "bin", "python3")); err == nil && !fi.IsDir() {
				return d
			}
		}
	}
	t.Fatalf("no CPython 3.12 in %s or %s: these tests register a real interpreter (pyenv install 3.12, then make setup)", pyenvVersions, DefaultDir)
	return ""
}

// publicDir is a temporary directory app users can reach (t.TempDir's
// is private to root).
func publicDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "pythons-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func nobody(t *testing.T) (uid, gid uint32) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.Atoi(u.Uid)
	b, _ := strconv.Atoi(u.Gid)
	return uint32(a), uint32(b)
}

// asNobody runs a command as nobody in dir and returns its output.
func asNobody(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	uid, gid := nobody(t)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + dir, "LC_ALL=C.UTF-8"}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("as nobody, %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestAdd registers pyenv's 3.12 into a fresh directory and checks what
// an app user gets: a root-owned, world-readable tree that owes nothing
// to /root, from which nobody makes a virtualenv (with ensurepip's pip)
// and installs into it with uv, offline.
func TestAdd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run as root: registered interpreters are root's, and the test runs them as nobody")
	}
	ctx := context.Background()
	src := source3_12(t)
	dir := filepath.Join(publicDir(t), "pythons")

	in, added, err := Add(ctx, dir, src, false)
	if err != nil {
		t.Fatal(err)
	}
	if !added || !strings.HasPrefix(in.Version, "3.12.") || in.Path != filepath.Join(dir, in.Version, "bin", "python3") {
		t.Fatalf("Add = %+v, %v", in, added)
	}
	prefix := filepath.Join(dir, in.Version)

	// Nothing but the version's directory: the temporary copy is gone.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != in.Version {
		t.Errorf("%s holds %v", dir, entries)
	}
	if list, err := List(dir); err != nil || len(list) != 1 || list[0] != in {
		t.Errorf("List = %+v, %v", list, err)
	}

	// Root's, readable by all, writable by root only, nothing names the
	// source: no text file, no run path of a shared object, no link.
	srcReal, _ := filepath.EvalSymlinks(src)
	files, elves := 0, 0
	err = filepath.WalkDir(prefix, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s is owned by %d:%d", path, st.Uid, st.Gid)
		}
		mode := fi.Mode()
		if mode&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(path)
			if strings.HasPrefix(target, srcReal) {
				t.Errorf("link %s -> %s", path, target)
			}
			return nil
		}
		if mode.Perm()&0o444 != 0o444 || mode.Perm()&0o022 != 0 || mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			t.Errorf("%s is mode %v", path, mode)
		}
		if d.IsDir() {
			if mode.Perm()&0o111 != 0o111 {
				t.Errorf("directory %s is mode %v", path, mode)
			}
			return nil
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(data, []byte("\x7fELF")):
			ef, err := elf.NewFile(bytes.NewReader(data))
			if err != nil {
				return nil
			}
			for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
				rps, _ := ef.DynString(tag)
				for _, rp := range rps {
					elves++
					if strings.Contains(rp, srcReal) {
						t.Errorf("%s: %v %q", path, tag, rp)
					}
				}
			}
		case bytes.IndexByte(data, 0) < 0 && bytes.Contains(data, []byte(srcReal+"/")):
			t.Errorf("%s still names %s", path, srcReal)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 1000 || elves < 10 {
		t.Errorf("%d files, %d run paths: not a whole installation?", files, elves)
	}

	// As an app user: the interpreter, a virtualenv with pip, uv.
	work := publicDir(t)
	uid, gid := nobody(t)
	if err := os.Chown(work, int(uid), int(gid)); err != nil {
		t.Fatal(err)
	}
	got := asNobody(t, work, nil, in.Path, "-c", `import sys, venv, ssl, sqlite3, sysconfig
print(sys.prefix, sysconfig.get_config_var("LIBDIR"), sysconfig.get_paths()["include"], ssl.OPENSSL_VERSION[:7])`)
	if want := prefix + " " + prefix + "/lib " + prefix + "/include/python3.12 OpenSSL"; got != want {
		t.Errorf("as nobody: %q, want %q", got, want)
	}
	venv := filepath.Join(work, "venv")
	asNobody(t, work, nil, in.Path, "-m", "venv", venv)
	got = asNobody(t, work, nil, filepath.Join(venv, "bin", "python"), "-c", "import sys, pip; print(sys.base_prefix, sys.prefix)")
	if got != prefix+" "+venv {
		t.Errorf("the virtualenv's python says %q", got)
	}
	if _, err := os.Stat(uvBin); err != nil {
		t.Fatalf("%v: make setup installs uv", err)
	}
	wheels, _ := filepath.Glob(filepath.Join(prefix, "lib", "python3.12", "ensurepip", "_bundled", "pip-*.whl"))
	if len(wheels) != 1 {
		t.Fatalf("ensurepip's pip wheel: %v", wheels)
	}
	uvEnv := filepath.Join(work, "uvenv")
	uvVars := []string{"UV_CACHE_DIR=" + filepath.Join(work, "uv-cache"), "UV_PYTHON_DOWNLOADS=never", "UV_OFFLINE=1", "UV_NO_CONFIG=1"}
	asNobody(t, work, uvVars, uvBin, "venv", "--quiet", "--python", in.Path, uvEnv)
	asNobody(t, work, uvVars, uvBin, "pip", "install", "--quiet", "--python", filepath.Join(uvEnv, "bin", "python"), wheels[0])
	got = asNobody(t, work, nil, filepath.Join(uvEnv, "bin", "python"), "-c", "import sys, pip; print(sys.base_prefix, pip.__file__.startswith(sys.prefix))")
	if got != prefix+" True" {
		t.Errorf("uv's virtualenv says %q", got)
	}

	// Again: nothing to do. With force: replaced in one step.
	marker := filepath.Join(prefix, "old-copy")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if again, added, err := Add(ctx, dir, src, false); err != nil || added || again != in {
		t.Errorf("Add again = %+v, %v, %v", again, added, err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Error("Add without force touched the registered copy")
	}
	// Its own interpreter names the version registered already.
	if again, added, err := Add(ctx, dir, in.Path, false); err != nil || added || again != in {
		t.Errorf("Add of the registered copy = %+v, %v, %v", again, added, err)
	}
	if again, added, err := Add(ctx, dir, src, true); err != nil || !added || again != in {
		t.Fatalf("Add --force = %+v, %v, %v", again, added, err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Error("Add with force left the old copy")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("after --force %s holds %v", dir, entries)
	}
	asNobody(t, work, nil, in.Path, "-c", "import venv, ssl, sqlite3")

	if err := Remove(dir, in.Version); err != nil {
		t.Fatal(err)
	}
	if list, err := List(dir); err != nil || len(list) != 0 {
		t.Errorf("after Remove: %+v, %v", list, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("after Remove %s holds %v", dir, entries)
	}
	err = Remove(dir, in.Version)
	if conductor.ErrorCode(err) != conductor.ENOTFOUND {
		t.Errorf("Remove of a removed version: %v", err)
	}
}

// TestAddRefuses: what is not a self-contained CPython 3 is refused with
// the reason, before anything is copied.
func TestAddRefuses(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(publicDir(t), "pythons")
	tests := []struct{ src, want string }{
		{hostDefault, "among the system's other programs"},
		{"/opt/conductor/circus/bin/python3", "virtualenv"},
		{"/nonexistent/python3", "no such file"},
		{t.TempDir(), "has no bin/python3"},
		{"/bin/true", "is not a Python"},
	}
	if py2, _ := filepath.Glob(pyenvVersions + "/2.*/bin/python"); len(py2) > 0 {
		tests = append(tests, struct{ src, want string }{py2[0], "apps need Python 3"})
	}
	for _, tt := range tests {
		_, _, err := Add(ctx, dir, tt.src, false)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Add %s: %v, want %q", tt.src, err, tt.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("refused sources left %v", entries)
	}
}

// fakeDir holds interpreter directories with an empty bin/python3: List
// and Find look at names, not contents.
func fakeDir(t *testing.T, versions ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, v := range versions {
		bin := filepath.Join(dir, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, "python3"), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestList(t *testing.T) {
	dir := fakeDir(t, "3.9.18", "3.12.1", "3.10.13", "3.12.7")
	// Not interpreters: an Add in progress, a name that is no version, a
	// version without bin/python3, a link.
	for _, d := range []string{".add-3.13.0-123/bin", "current/bin", "3.11.7/bin"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	os.WriteFile(filepath.Join(dir, ".add-3.13.0-123", "bin", "python3"), nil, 0o755)
	os.WriteFile(filepath.Join(dir, "current", "bin", "python3"), nil, 0o755)
	os.Symlink("3.12.7", filepath.Join(dir, "3.12.8"))
	vs, err := Versions(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(vs, " "); got != "3.9.18 3.10.13 3.12.1 3.12.7" {
		t.Errorf("Versions = %s", got)
	}
	if list, err := List(filepath.Join(dir, "missing")); err != nil || list != nil {
		t.Errorf("List of a missing dir = %v, %v", list, err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if _, err := List(dir); err == nil || !strings.Contains(err.Error(), "writable by no one else") {
			t.Errorf("List of a world-writable dir: %v", err)
		}
	}
}

func TestFind(t *testing.T) {
	ctx := context.Background()
	dir := fakeDir(t, "3.10.13", "3.12.1", "3.12.7", "3.13.0")
	for request, want := range map[string]string{
		"3.12":          "3.12.7",
		">=3.11,<3.13":  "3.12.7",
		"3.12.1":        "3.12.1",
		"~=3.10":        "3.13.0",
		"^3.10":         "3.13.0",
		"3.13":          "3.13.0",
		" 3.10.13\n":    "3.10.13",
		">=3.10,!=3.13": "3.12.7",
	} {
		in, err := Find(ctx, dir, request, hostDefault)
		if err != nil {
			t.Errorf("Find %q: %v", request, err)
			continue
		}
		if in.Version != want || in.Path != filepath.Join(dir, want, "bin", "python3") || in.Default {
			t.Errorf("Find %q = %+v, want %s", request, in, want)
		}
	}

	// Not available: the versions there are and how to add one.
	for _, request := range []string{"3.9", "3.12.2", ">=3.14"} {
		_, err := Find(ctx, dir, request, hostDefault)
		msg := conductor.ErrorMessage(err)
		for _, w := range []string{"Python " + request + " is not available", "3.10.13, 3.12.1, 3.12.7, 3.13.0", "conductor python:add <path>"} {
			if !strings.Contains(msg, w) {
				t.Errorf("Find %q: %q lacks %q", request, msg, w)
			}
		}
		if conductor.ErrorCode(err) != conductor.EINVALID {
			t.Errorf("Find %q: code %s", request, conductor.ErrorCode(err))
		}
	}
	// A request that is not a version: the app's mistake, no hint.
	if _, err := Find(ctx, dir, "3.x", hostDefault); err == nil || strings.Contains(err.Error(), "python:add") {
		t.Errorf("Find 3.x: %v", err)
	}
	// Nothing registered.
	_, err := Find(ctx, t.TempDir(), "3.12", hostDefault)
	if msg := conductor.ErrorMessage(err); !strings.Contains(msg, "no Python is registered") || !strings.Contains(msg, "conductor python:add") {
		t.Errorf("Find in an empty dir: %v", err)
	}

	// No request: the host's default, with its version.
	in, err := Find(ctx, dir, "", hostDefault)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(hostDefault, "-c", `import platform; print(platform.python_version())`).Output()
	if !in.Default || in.Path != hostDefault || in.Version != strings.TrimSpace(string(out)) {
		t.Errorf("Find \"\" = %+v", in)
	}
	if _, err := Find(ctx, dir, "", ""); err == nil {
		t.Error("no request and no default: no error")
	}
}

// TestFindRegistered finds among the interpreters make setup registered
// (pyenv's) and runs what it found.
func TestFindRegistered(t *testing.T) {
	vs, err := Versions(DefaultDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		if pyenv, _ := filepath.Glob(pyenvVersions + "/3.*"); len(pyenv) > 0 {
			t.Fatalf("pyenv has %d interpreters but none is registered in %s: run make setup", len(pyenv), DefaultDir)
		}
		t.Fatalf("no interpreter registered in %s and none in %s: pyenv install 3.12, then make setup", DefaultDir, pyenvVersions)
	}
	in, err := Find(context.Background(), DefaultDir, "3.12", hostDefault)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Version(context.Background(), in.Path)
	if err != nil || v != in.Version {
		t.Errorf("%s runs as %q (%v), registered as %s", in.Path, v, err, in.Version)
	}
}

func TestReplacePrefix(t *testing.T) {
	c := copier{olds: []string{"/root/.pyenv/versions/3.12.1"}, final: "/opt/conductor/pythons/3.12.1"}
	for in, want := range map[string]string{
		"#!/root/.pyenv/versions/3.12.1/bin/python3.12\n":    "#!/opt/conductor/pythons/3.12.1/bin/python3.12\n",
		"'LIBDIR': '/root/.pyenv/versions/3.12.1/lib',":      "'LIBDIR': '/opt/conductor/pythons/3.12.1/lib',",
		"prefix=/root/.pyenv/versions/3.12.1\n":              "prefix=/opt/conductor/pythons/3.12.1\n",
		"-L/root/.pyenv/versions/3.12.1/lib -Wl,-rpath,/x":   "-L/opt/conductor/pythons/3.12.1/lib -Wl,-rpath,/x",
		"/root/.pyenv/versions/3.12.10/lib":                  "",
		"/root/.pyenv/versions/3.12.1-debug/lib":             "",
		"no prefix here":                                     "",
		"binary\x00/root/.pyenv/versions/3.12.1/lib\x00junk": "",
	} {
		out, changed := c.replacePrefix([]byte(in))
		if want == "" {
			if changed {
				t.Errorf("%q was changed to %q", in, out)
			}
			continue
		}
		if !changed || string(out) != want {
			t.Errorf("%q -> %q, want %q", in, out, want)
		}
	}
}

func TestRunpath(t *testing.T) {
	c := copier{olds: []string{"/root/.pyenv/versions/3.12.1", "/build/py"}}
	for _, tt := range []struct{ rp, rel, want string }{
		{"/root/.pyenv/versions/3.12.1/lib", "bin/python3.12", "$ORIGIN/../lib"},
		{"/root/.pyenv/versions/3.12.1/lib", "lib/libpython3.12.so.1.0", "$ORIGIN"},
		{"/root/.pyenv/versions/3.12.1/lib", "lib/python3.12/lib-dynload/_ssl.cpython-312-x86_64-linux-gnu.so", "$ORIGIN/../.."},
		{"/root/.pyenv/versions/3.12.1/openssl/lib", "lib/python3.12/lib-dynload/_ssl.so", "$ORIGIN/../../../openssl/lib"},
		{"/usr/lib:/build/py/lib", "bin/python3", "/usr/lib:$ORIGIN/../lib"},
		{"/root/.pyenv/versions/3.12.10/lib", "bin/python3", "/root/.pyenv/versions/3.12.10/lib"},
		{"$ORIGIN/../lib", "bin/python3", "$ORIGIN/../lib"},
	} {
		if got := c.runpath(tt.rp, tt.rel); got != tt.want {
			t.Errorf("runpath(%q, %q) = %q, want %q", tt.rp, tt.rel, got, tt.want)
		}
	}
}
