package pythons

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor"
)

// probe is what Add learns by running the source interpreter. It is
// written so that Python 2 runs it too and is refused with a reason
// instead of a syntax error.
const probe = `
import sys, json, platform
info = {
    "implementation": platform.python_implementation(),
    "version": list(sys.version_info[:4]),
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "exec_prefix": sys.exec_prefix,
    "base_exec_prefix": getattr(sys, "base_exec_prefix", sys.exec_prefix),
    "libdir": "",
    "gil_disabled": False,
    "missing": {},
}
try:
    import sysconfig
    info["libdir"] = sysconfig.get_config_var("LIBDIR") or ""
    info["gil_disabled"] = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
except Exception:
    pass
for m in ("venv", "ensurepip", "ssl", "sqlite3"):
    try:
        __import__(m)
    except Exception as e:
        info["missing"][m] = "%s: %s" % (type(e).__name__, e)
sys.stdout.write(json.dumps(info))
`

type probeInfo struct {
	Implementation string            `json:"implementation"`
	Version        []any             `json:"version"` // major, minor, micro, releaselevel
	Prefix         string            `json:"prefix"`
	BasePrefix     string            `json:"base_prefix"`
	ExecPrefix     string            `json:"exec_prefix"`
	BaseExecPrefix string            `json:"base_exec_prefix"`
	LibDir         string            `json:"libdir"`
	GILDisabled    bool              `json:"gil_disabled"`
	Missing        map[string]string `json:"missing"`
}

// version is the probed full version, or "" for a pre-release.
func (p probeInfo) version() (string, error) {
	if len(p.Version) != 4 {
		return "", fmt.Errorf("version_info %v", p.Version)
	}
	var n [3]int
	for i := range n {
		f, ok := p.Version[i].(float64)
		if !ok {
			return "", fmt.Errorf("version_info %v", p.Version)
		}
		n[i] = int(f)
	}
	v := fmt.Sprintf("%d.%d.%d", n[0], n[1], n[2])
	if level, _ := p.Version[3].(string); level != "final" {
		return "", conductor.Errorf(conductor.EINVALID, "it is a pre-release (%s %s): Conductor registers final releases only", v, level)
	}
	return v, nil
}

// systemPrefixes hold an interpreter among the system's other programs:
// copying one would copy the system.
var systemPrefixes = map[string]bool{"/": true, "/usr": true, "/usr/local": true, "/opt": true}

// Add registers the CPython installation at src (its prefix, or the path
// of its interpreter: bin/python3) into dir: it runs it to learn its
// version (CPython 3, a final release, with venv, ssl and sqlite3), copies
// its whole tree into dir/<version> (links are copied as links, never
// followed; modes are kept, owned by root, readable and runnable by
// everyone), makes the copy work from its new place (run paths of shared
// libraries, the build prefix in sysconfig data and scripts), checks that
// it runs there — and, as root, that an unprivileged user (nobody) can
// import venv, ssl and sqlite3 with it and make a virtualenv — and only
// then renames it into place, so a half copy is never listed.
//
// A version already registered is left as it is (added is false) unless
// force, which replaces it in one rename.
func Add(ctx context.Context, dir, src string, force bool) (in Interpreter, added bool, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return Interpreter{}, false, err
	}
	python, err := sourcePython(src)
	if err != nil {
		return Interpreter{}, false, err
	}
	info, err := runProbe(ctx, python)
	if err != nil {
		return Interpreter{}, false, err
	}
	version, prefix, err := checkSource(python, info)
	if err != nil {
		return Interpreter{}, false, err
	}
	if within(dir, prefix) {
		return Interpreter{}, false, conductor.Errorf(conductor.EINVALID, "%s is inside the installation %s it would be copied from", dir, prefix)
	}
	final := filepath.Join(dir, version)
	in = Interpreter{Version: version, Path: filepath.Join(final, "bin", "python3")}

	if err := makeDir(dir); err != nil {
		return Interpreter{}, false, err
	}
	unlock, err := lockDir(dir, true)
	if err != nil {
		return Interpreter{}, false, err
	}
	defer unlock()
	exists := false
	if _, err := os.Lstat(final); err == nil {
		exists = true
		if fi, err := os.Stat(in.Path); err == nil && fi.Mode().IsRegular() && !force {
			return in, false, nil
		}
	}
	removeStale(dir)

	tmp, err := os.MkdirTemp(dir, ".add-"+version+"-")
	if err != nil {
		return Interpreter{}, false, err
	}
	defer func() {
		if tmp != "" {
			_ = os.RemoveAll(tmp)
		}
	}()
	c := copier{src: prefix, dst: tmp, final: final, olds: oldPrefixes(info)}
	if err := c.copyTree(ctx); err != nil {
		return Interpreter{}, false, fmt.Errorf("copy %s into %s: %w", prefix, dir, err)
	}
	if err := c.recompile(ctx); err != nil {
		return Interpreter{}, false, err
	}
	if err := verify(ctx, tmp, version, c.olds); err != nil {
		return Interpreter{}, false, conductor.Errorf(conductor.EINVALID, "the copy of %s does not work from %s: %v", prefix, dir, err)
	}
	if exists {
		// One step: the old tree leaves as the new one arrives.
		err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE)
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			// A filesystem without exchange: two renames, a moment apart.
			old := filepath.Join(dir, ".remove-"+version+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
			if err = os.Rename(final, old); err == nil {
				if err = os.Rename(tmp, final); err != nil {
					_ = os.Rename(old, final) // the old one back
				} else {
					err = os.Rename(old, tmp) // removed below
				}
			}
		}
		if err != nil {
			return Interpreter{}, false, fmt.Errorf("replace %s: %w", final, err)
		}
	} else if err := os.Rename(tmp, final); err != nil {
		return Interpreter{}, false, err
	}
	if !exists {
		tmp = ""
	} // else tmp now holds the old tree, removed by the deferred call
	return in, true, nil
}

// sourcePython is the interpreter to run for src: src itself when it is a
// file, else src/bin/python3.
func sourcePython(src string) (string, error) {
	abs, err := filepath.Abs(src)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", conductor.Errorf(conductor.EINVALID, "%s: %v", src, errors.Unwrap(err))
	}
	if fi.IsDir() {
		p := filepath.Join(abs, "bin", "python3")
		if _, err := os.Stat(p); err != nil {
			return "", conductor.Errorf(conductor.EINVALID, "%s has no bin/python3: give a CPython installation's prefix or its interpreter", src)
		}
		return p, nil
	}
	return abs, nil
}

func runProbe(ctx context.Context, python string) (probeInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-E", "-s", "-c", probe) // not -I: Python 2 is refused by what it prints
	cmd.Env = cleanEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return probeInfo{}, conductor.Errorf(conductor.EINVALID, "%s does not run: %v %s", python, err, lastLine(stderr.String()))
	}
	var info probeInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return probeInfo{}, conductor.Errorf(conductor.EINVALID, "%s is not a Python Conductor can read: %v", python, err)
	}
	return info, nil
}

// checkSource says why info is not an installation Conductor registers,
// or returns its version and prefix (symlinks resolved).
func checkSource(python string, info probeInfo) (version, prefix string, err error) {
	refuse := func(format string, args ...any) (string, string, error) {
		return "", "", conductor.Errorf(conductor.EINVALID, "%s: %s", python, fmt.Sprintf(format, args...))
	}
	if info.Implementation != "CPython" {
		return refuse("it is %s: Conductor registers CPython only", info.Implementation)
	}
	version, err = info.version()
	if err != nil {
		return refuse("%v", err)
	}
	if !strings.HasPrefix(version, "3.") {
		return refuse("Python %s: apps need Python 3", version)
	}
	if info.GILDisabled {
		return refuse("a free-threaded build (%st): Conductor registers the default build", version)
	}
	if info.Prefix != info.BasePrefix {
		return refuse("it is a virtualenv's interpreter; give the installation it was made from, %s", info.BasePrefix)
	}
	if info.Prefix != info.ExecPrefix {
		return refuse("its prefix %s and exec prefix %s differ: Conductor copies one tree", info.Prefix, info.ExecPrefix)
	}
	for _, m := range []string{"venv", "ssl", "sqlite3"} {
		if why, ok := info.Missing[m]; ok {
			return refuse("it cannot import %s (%s): build it with that module (pyenv: install the -dev packages first, e.g. libssl-dev, libsqlite3-dev)", m, why)
		}
	}
	prefix, err = filepath.EvalSymlinks(info.Prefix)
	if err != nil {
		return refuse("its prefix %s: %v", info.Prefix, err)
	}
	if systemPrefixes[prefix] {
		return refuse("it is installed in %s among the system's other programs; Conductor copies a self-contained installation (pyenv's, a ./configure --prefix build, python-build-standalone). The host's own python3 is the default already (serve's --python)", prefix)
	}
	return version, prefix, nil
}

// oldPrefixes are the paths the installation may have written into its
// files: its prefix as Python reports it, with symlinks resolved, and the
// prefix it was built for (LIBDIR's parent), longest first.
func oldPrefixes(info probeInfo) []string {
	seen := map[string]bool{}
	var olds []string
	add := func(p string) {
		p = filepath.Clean(p)
		if p != "" && p != "/" && filepath.IsAbs(p) && !seen[p] {
			seen[p] = true
			olds = append(olds, p)
		}
	}
	add(info.Prefix)
	if real, err := filepath.EvalSymlinks(info.Prefix); err == nil {
		add(real)
	}
	if filepath.Base(info.LibDir) == "lib" {
		add(filepath.Dir(info.LibDir))
	}
	for i := range olds {
		for j := i + 1; j < len(olds); j++ {
			if len(olds[j]) > len(olds[i]) {
				olds[i], olds[j] = olds[j], olds[i]
			}
		}
	}
	return olds
}

// verifyScript runs in the copy: it must start from there and find its
// standard library, venv, ssl and sqlite3 there, and no file it maps
// (libpython, extension modules) may come from the source.
const verifyScript = `
import sys, json, venv, ssl, sqlite3, sysconfig
maps = set()
with open("/proc/self/maps") as f:
    for line in f:
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5].startswith("/"):
            maps.add(parts[5].strip())
print(json.dumps({"version": "%d.%d.%d" % sys.version_info[:3], "prefix": sys.prefix,
                  "stdlib": sysconfig.get_paths()["stdlib"], "maps": sorted(maps)}))
`

// verify checks the copy at tmp: as the current user, that it runs from
// there and owes nothing to the source (olds); as root, also that nobody
// can import venv, ssl and sqlite3 and make a virtualenv with it.
func verify(ctx context.Context, tmp, version string, olds []string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	python := filepath.Join(tmp, "bin", "python3")
	cmd := exec.CommandContext(ctx, python, "-I", "-B", "-c", verifyScript)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("bin/python3 -c 'import sys, venv, ssl, sqlite3': %v: %s", err, lastLine(string(out)))
	}
	var got struct {
		Version, Prefix, Stdlib string
		Maps                    []string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		return fmt.Errorf("bin/python3 printed %q: %v", out, err)
	}
	if got.Version != version {
		return fmt.Errorf("it says it is Python %s, the source said %s", got.Version, version)
	}
	if !samePath(got.Prefix, tmp) || !within(got.Stdlib, tmp) {
		return fmt.Errorf("it takes %s for its prefix (standard library %s)", got.Prefix, got.Stdlib)
	}
	for _, m := range got.Maps {
		for _, old := range olds {
			if within(m, old) {
				return fmt.Errorf("it still loads %s from the source", m)
			}
		}
	}
	if os.Geteuid() != 0 {
		return nil
	}
	return verifyAsNobody(ctx, python)
}

// verifyAsNobody is the point of it all: an app's user, who cannot read
// /root, uses the interpreter and makes a virtualenv with it.
func verifyAsNobody(ctx context.Context, python string) error {
	uid, gid := uint32(65534), uint32(65534)
	if u, err := user.Lookup("nobody"); err == nil {
		if n, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			uid = uint32(n)
		}
		if n, err := strconv.ParseUint(u.Gid, 10, 32); err == nil {
			gid = uint32(n)
		}
	}
	work, err := os.MkdirTemp("", "conductor-python-check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if err := os.Chown(work, int(uid), int(gid)); err != nil {
		return err
	}
	venv := filepath.Join(work, "venv")
	for _, args := range [][]string{
		{python, "-I", "-B", "-c", "import sys, venv, ssl, sqlite3"},
		{python, "-I", "-B", "-m", "venv", "--without-pip", venv},
		{filepath.Join(venv, "bin", "python"), "-B", "-c", "import sys, ssl, sqlite3; assert sys.prefix != sys.base_prefix, sys.prefix"},
	} {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(cleanEnv(), "HOME="+work)
		cmd.Dir = work
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, NoSetGroups: false}}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("as nobody, %s: %v: %s", strings.Join(args[1:], " "), err, lastLine(string(out)))
		}
	}
	return nil
}

// makeDir makes dir (and its parents) and, as root, checks that it is
// root's alone and that app users can reach it.
func makeDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return nil
	}
	if err := checkOwner(dir); err != nil {
		return err
	}
	// App users reach the interpreters through every parent.
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return conductor.Errorf(conductor.EINVALID, "app users cannot reach %s: %s is mode %v (chmod o+x %s, or choose another --pythons)", dir, d, fi.Mode().Perm(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// lockDir serializes Add and Remove on dir (flock on the directory).
func lockDir(dir string, exclusive bool) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// removeStale deletes what an interrupted Add or Remove left (under the
// lock, so none is in progress).
func removeStale(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, ".add-") || strings.HasPrefix(n, ".remove-") {
			_ = os.RemoveAll(filepath.Join(dir, n))
		}
	}
}

// within tells whether path is base or below it.
func within(path, base string) bool {
	rel, err := filepath.Rel(base, path)
	return err == nil && filepath.IsLocal(rel)
}

func samePath(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
