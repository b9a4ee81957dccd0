// Package pythons is the set of Python interpreters Conductor manages on a
// host: a root-owned, world-readable directory (DefaultDir) with one
// complete CPython installation per subdirectory, named by its full
// version:
//
//	/opt/conductor/pythons/3.12.7/bin/python3
//	/opt/conductor/pythons/3.13.0/bin/python3
//
// Interpreters are registered from existing installations (Add: pyenv's
// under /root, which app users cannot read, a ./configure --prefix build,
// python-build-standalone) by copying them here and making the copy work
// from its new place; the builder picks one per app with Find, from the
// version the app asks for (pybuild.PythonVersion).
package pythons

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/lazyre"
	"github.com/hasadna/conductor/pybuild"
)

// DefaultDir is where the interpreters live, next to circus's virtualenv
// (/opt/conductor/circus) and uv's (/opt/conductor/uv).
const DefaultDir = "/opt/conductor/pythons"

// AddHint says how an admin registers an interpreter.
const AddHint = "conductor python:add <path> (a CPython installation's prefix or its bin/python3, e.g. /root/.pyenv/versions/3.12.7)"

// Interpreter is one registered Python, or the host's default.
type Interpreter struct {
	Version string `json:"version"` // 3.12.7
	Path    string `json:"path"`    // <dir>/3.12.7/bin/python3, or the host default's path
	// Default is true for the host's default interpreter (Find with no
	// request), which is not one of the registered ones.
	Default bool `json:"default,omitempty"`
}

// versionRE is a registered interpreter's directory name: a final
// release's full version.
var versionRE = lazyre.New(`^[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$`)

// ValidVersion tells whether v names a registered interpreter's directory
// (3.12.7): a full final-release version, nothing else.
func ValidVersion(v string) bool { return versionRE.MatchString(v) }

// List returns the complete interpreters in dir, oldest version first. A
// missing dir holds none. Entries being added or removed (dot names) and
// anything that is not a version's directory with bin/python3 are not
// listed. As root, dir must be root's and writable by no one else: root
// runs what it holds.
func List(dir string) ([]Interpreter, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if err := checkOwner(dir); err != nil {
		return nil, err
	}
	var out []Interpreter
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !ValidVersion(name) {
			continue
		}
		python := filepath.Join(dir, name, "bin", "python3")
		if fi, err := os.Stat(python); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, Interpreter{Version: name, Path: python})
	}
	sort.Slice(out, func(i, j int) bool { return less(out[i].Version, out[j].Version) })
	return out, nil
}

// Versions are the versions of List(dir).
func Versions(dir string) ([]string, error) {
	list, err := List(dir)
	if err != nil {
		return nil, err
	}
	vs := make([]string, len(list))
	for i, in := range list {
		vs[i] = in.Version
	}
	return vs, nil
}

// Find chooses the interpreter for an app that asks for request (what
// pybuild.PythonVersion read: "3.12", ">=3.11,<3.13", "3.12.7"): the
// newest registered one it accepts (pybuild.MatchVersion). An empty
// request is the host's default, hostDefault (serve's --python), whose
// version Find runs it to learn: the default is used only when the app
// names no version. A request no registered interpreter satisfies is an
// EINVALID error that lists the registered versions and says how to add
// one.
func Find(ctx context.Context, dir, request, hostDefault string) (Interpreter, error) {
	request = strings.TrimSpace(request)
	if request == "" {
		if hostDefault == "" {
			return Interpreter{}, conductor.Errorf(conductor.EINVALID, "the app names no Python version and this host has no default interpreter (--python)")
		}
		v, err := Version(ctx, hostDefault)
		if err != nil {
			return Interpreter{}, fmt.Errorf("the host's default Python: %w", err)
		}
		return Interpreter{Version: v, Path: hostDefault, Default: true}, nil
	}
	list, err := List(dir)
	if err != nil {
		return Interpreter{}, fmt.Errorf("the interpreters in %s: %w", dir, err)
	}
	if len(list) == 0 {
		if _, err := pybuild.MatchVersion(request, nil); err != nil && !notAvailable(err) {
			return Interpreter{}, err
		}
		return Interpreter{}, conductor.Errorf(conductor.EINVALID,
			"Python %s is not available: no Python is registered on this host (in %s); the host's default is used only for apps that name no version. An admin adds one with %s",
			request, dir, AddHint)
	}
	versions := make([]string, len(list))
	for i, in := range list {
		versions[i] = in.Version
	}
	v, err := pybuild.MatchVersion(request, versions)
	if err != nil {
		if !notAvailable(err) {
			return Interpreter{}, err // the request itself is wrong: the app's developers fix it
		}
		return Interpreter{}, conductor.Errorf(conductor.EINVALID,
			"Python %s is not available: registered on this host are %s (the host's default is used only for apps that name no version). Ask for one of those, or an admin adds one with %s",
			request, strings.Join(versions, ", "), AddHint)
	}
	for _, in := range list {
		if in.Version == v {
			return in, nil
		}
	}
	return Interpreter{}, fmt.Errorf("MatchVersion chose %q, which is not among %v", v, versions)
}

// notAvailable tells MatchVersion's "no such interpreter" from its "this
// request does not parse".
func notAvailable(err error) bool {
	var cerr *conductor.Error
	return errors.As(err, &cerr) && strings.Contains(cerr.Message, "is not available")
}

// Remove unregisters version: its directory leaves the listing at once
// (a rename) and is then deleted. Virtualenvs made from it stop working;
// processes already running keep their files open and go on.
func Remove(dir, version string) error {
	if !ValidVersion(version) {
		return conductor.Errorf(conductor.EINVALID, "%q is not a registered interpreter's version (like 3.12.7): see conductor python:list", version)
	}
	unlock, err := lockDir(dir, true)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return conductor.Errorf(conductor.ENOTFOUND, "Python %s is not registered in %s (it does not exist)", version, dir)
		}
		return err
	}
	defer unlock()
	path := filepath.Join(dir, version)
	if fi, err := os.Lstat(path); err != nil || !fi.IsDir() {
		vs, _ := Versions(dir)
		have := "none is"
		if len(vs) > 0 {
			have = strings.Join(vs, ", ") + " are"
		}
		return conductor.Errorf(conductor.ENOTFOUND, "Python %s is not registered in %s (%s)", version, dir, have)
	}
	gone := filepath.Join(dir, ".remove-"+version+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Rename(path, gone); err != nil {
		return err
	}
	return os.RemoveAll(gone)
}

// versionCache remembers what Version learned, by the interpreter file's
// identity: every deploy of an app that names no version asks for the
// host default's, and starting Python costs ~20 ms. An upgraded
// interpreter is a new file (another inode or mtime) and is run again.
var versionCache sync.Map // versionKey → string

type versionKey struct {
	path       string
	dev, ino   uint64
	mtime, siz int64
}

// Version runs python and returns its version (3.11.2).
func Version(ctx context.Context, python string) (string, error) {
	var key versionKey
	if fi, err := os.Stat(python); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			key = versionKey{python, st.Dev, st.Ino, fi.ModTime().UnixNano(), fi.Size()}
			if v, ok := versionCache.Load(key); ok {
				return v.(string), nil
			}
		}
	}
	v, err := runVersion(ctx, python)
	if err == nil && key.path != "" {
		versionCache.Store(key, v)
	}
	return v, err
}

func runVersion(ctx context.Context, python string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "-I", "-B", "-c", `import sys; print("%d.%d.%d" % sys.version_info[:3])`)
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", python, err, strings.TrimSpace(string(out)))
	}
	v := strings.TrimSpace(string(out))
	if !ValidVersion(v) {
		return "", fmt.Errorf("%s printed %q, not its version", python, v)
	}
	return v, nil
}

// cleanEnv is the environment interpreters are run with: none of the
// caller's PYTHON* or LD_* variables.
func cleanEnv() []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C.UTF-8"}
}

// checkOwner refuses, as root, a directory someone else could change.
func checkOwner(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		return conductor.Errorf(conductor.EINVALID, "%s must be root's and writable by no one else (it is uid %d, mode %v): root runs the interpreters it holds; chown root: %s && chmod go-w %s",
			dir, st.Uid, fi.Mode().Perm(), dir, dir)
	}
	return nil
}

// less orders versions numerically (3.9.18 < 3.10.13).
func less(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, _ := strconv.Atoi(as[i])
		y, _ := strconv.Atoi(bs[i])
		if x != y {
			return x < y
		}
	}
	return len(as) < len(bs)
}
