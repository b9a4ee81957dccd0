package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hasadna/conductor/internal/lazyre"
	"github.com/hasadna/conductor/internal/safefs"
)

// The seed (docs/architecture.md, "uv's cache"): a uv cache of root's,
// Layout.SeedCache, holding only wheels root fetched from the host's
// default index by exact name and version, never built (no package code
// runs), with their modules compiled to hash-checked bytecode by the
// host's interpreter. Apps never install from it: each keeps its own
// cache. What a new virtualenv gets from it is the compiled modules,
// linked in by the app's user (seedBytecode): a first deploy then does not
// compile Django's modules on its first import (about 0.5 s here,
// docs/benchmarks.md). The files stay root's: apps read them and cannot
// change them. A package's modules are linked only when its .py files have
// the SHA-256s of the seed's (its RECORD against the seed's, which root
// checked), and Python still checks each source's hash against its .pyc. A
// new app's cache also starts with uv's facts about the host's
// interpreters (startCache), which uv otherwise finds by running each one.

// seedCacheDir is uv's cache in the seed dir (which also holds uv's
// throwaway targets: uv refuses to run from inside its cache).
func seedCacheDir(seed string) string { return filepath.Join(seed, "cache") }

// seedMu: one writer of the seed at a time. startCache only copies while
// no one writes it (TryLock: a first deploy never waits on a seeding).
var seedMu sync.Mutex

// seeded are the pins already put in a seed, by interpreter ("seed
// dir\x00python path\x00name==version"), guarded by seedMu: a later
// virtualenv with the same packages asks uv for nothing.
var seeded = map[string]bool{}

// startCache makes envDir/.cache, which must not exist, with copies of the
// seed's interpreter facts (uv's interpreter-v* entries: a few small
// files), owned by the app. It is built in a root-only temp dir beside it
// and renamed in place, so the app never sees it half made. Nothing is made
// when there is no seed or a seeding is under way; on an error nothing is
// left behind and the caller makes an empty cache.
func startCache(seed, envDir string, uid, gid int) (err error) {
	if !seedMu.TryLock() {
		return nil
	}
	defer seedMu.Unlock()
	facts, _ := filepath.Glob(filepath.Join(seed, "interpreter-v*"))
	if len(facts) == 0 {
		return nil
	}
	tmp, err := os.MkdirTemp(envDir, ".cache-new-") // 0700, root's, in root's dir
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	chown := func(p string) error {
		if os.Geteuid() != 0 {
			return nil
		}
		return os.Lchown(p, uid, gid)
	}
	for _, top := range facts {
		// The seed is root's (0700 but for the compiled modules): it is
		// walked by name.
		err := filepath.WalkDir(top, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(seed, p)
			if err != nil {
				return err
			}
			dst := filepath.Join(tmp, rel)
			switch {
			case strings.HasPrefix(e.Name(), ".tmp"): // uv's work in progress
				if e.IsDir() {
					return filepath.SkipDir
				}
			case e.IsDir():
				if err := os.Mkdir(dst, 0o755); err != nil {
					return err
				}
				return chown(dst)
			case e.Type().IsRegular() && !strings.HasSuffix(e.Name(), ".lock"):
				data, err := safefs.ReadFile(filepath.Dir(p), e.Name(), 1<<20)
				if err != nil {
					return err
				}
				if err := os.WriteFile(dst, data, 0o644); err != nil {
					return err
				}
				return chown(dst)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("copying the seed's %s into %s: %w", filepath.Base(top), tmp, err)
		}
	}
	if err := chown(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(envDir, ".cache"))
}

// seedPycPy makes, as the app's user, each virtualenv directory's
// __pycache__ a link to the seed's compiled modules of the same directory:
// argv holds (seed dir, virtualenv dir) pairs. A pair whose directory the
// virtualenv lacks, or already holds compiled modules for, is left out.
// It is an argument (python -c), not a file: nothing the app could change.
const seedPycPy = `import os, sys
args, n = sys.argv[1:], 0
for src, dst in zip(args[::2], args[1::2]):
    if os.path.isdir(os.path.dirname(dst)) and not os.path.lexists(dst):
        try:
            os.symlink(src, dst)
            n += 1
        except OSError:
            pass
if n:
    print("Compiled modules: %d directories from the host's package seed" % n)
`

// maxSeedArgs bounds the pairs' bytes passed to seedPycPy (the kernel
// takes a few MB of arguments at most).
const maxSeedArgs = 1 << 20

// seedBytecode gives the virtualenv just installed the seed's compiled
// modules of what it holds: root finds the seed's unpacked wheel of each
// installed name and version (from the default index), compiled by this
// interpreter, and the app's user links each package directory's
// __pycache__ to the seed's. Python then reads them there, checking each
// against the hash of the virtualenv's source; it cannot write there (a
// module whose source differs is compiled in memory, every time). A
// failure is logged, the deploy goes on: it is only a head start.
func (d *deployment) seedBytecode(ctx context.Context, envDir, python, version string) {
	major, rest, _ := strings.Cut(version, ".")
	minor, _, _ := strings.Cut(rest, ".")
	tag := ".cpython-" + major + minor + ".pyc"
	start := time.Now()
	defer func() { slog.Debug("uv seed: compiled modules linked", "app", d.app.Name, "took", time.Since(start)) }()
	venv := filepath.Base(d.venv)
	pins, dirs, site, err := installedPins(envDir, venv)
	if err != nil || len(pins) == 0 {
		return
	}
	seed := seedCacheDir(d.b.Layout.SeedCache())
	// Not while a seeding compiles: a directory linked with some of its
	// modules compiled would have the others compiled in memory at every
	// start (Python cannot write there).
	if !seedMu.TryLock() {
		return
	}
	var args []string
	size := 0
	for _, p := range pins {
		name, version, _ := strings.Cut(p, "==")
		a := seedArchive(seed, name, version)
		if a == "" {
			continue
		}
		// The same modules, by the SHA-256 each RECORD gives: the seed's
		// checked when it was filled (verifyArchive), the app's as its uv
		// wrote them (if it lies, it only fools itself: Python still
		// checks each source against its compiled module).
		mine, err := safefs.ReadFile(envDir, venv+"/"+site+"/"+dirs[p]+"/RECORD", maxRecord)
		if err != nil {
			continue
		}
		theirs, err := archiveRecord(a)
		if err != nil {
			continue
		}
		if m, t := pySums(mine), pySums(theirs); m == nil || !maps.Equal(m, t) {
			continue
		}
		// The seed is root's: walked by name.
		_ = filepath.WalkDir(a, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.IsDir() || e.Name() != "__pycache__" {
				return err
			}
			if compiledAll(filepath.Dir(p), tag) {
				rel, err := filepath.Rel(a, p)
				if err != nil {
					return err
				}
				dst := filepath.Join(d.venv, site, rel)
				if size += len(p) + len(dst) + 2; size > maxSeedArgs {
					return filepath.SkipAll
				}
				args = append(args, p, dst)
			}
			return filepath.SkipDir
		})
	}
	seedMu.Unlock()
	if len(args) == 0 {
		return
	}
	// From the seed (root's): no module of the release's can shadow one the
	// script imports.
	if err := d.cmd(ctx, seed, python, append([]string{"-I", "-c", seedPycPy}, args...)...); err != nil {
		slog.Warn("uv seed: linking compiled modules", "app", d.app.Name, "err", err)
	}
}

// compiledAll tells whether every module of dir has its compiled module
// with tag in dir/__pycache__: a directory linked with one missing would
// have that module compiled in memory at every start (a file that did not
// compile, a seeding cut short).
func compiledAll(dir, tag string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	pycs, err := os.ReadDir(filepath.Join(dir, "__pycache__"))
	if err != nil {
		return false
	}
	have := make(map[string]bool, len(pycs))
	for _, e := range pycs {
		have[e.Name()] = true
	}
	n := 0
	for _, e := range entries {
		if stem, ok := strings.CutSuffix(e.Name(), ".py"); ok && e.Type().IsRegular() {
			if !have[stem+tag] {
				return false
			}
			n++
		}
	}
	return n > 0
}

// normName is a distribution's name as the index and uv's cache spell it
// (PEP 503).
var normSep = lazyre.New(`[-_.]+`)

func normName(name string) string { return normSep.ReplaceAllString(strings.ToLower(name), "-") }

// seedArchive is the seed's unpacked wheel of name==version from the
// default index ("" if none): uv's index entry (wheels-v*/pypi/<name>/
// <version>-<tags>) is a relative link to it.
func seedArchive(seed, name, version string) string {
	links, _ := filepath.Glob(filepath.Join(seed, "wheels-v*", "pypi", normName(name), version+"-*"))
	for _, l := range links {
		target, err := os.Readlink(l)
		if err != nil || filepath.IsAbs(target) {
			continue
		}
		a := filepath.Join(filepath.Dir(l), target)
		rel, err := filepath.Rel(seed, a)
		if err != nil || !filepath.IsLocal(rel) || !strings.HasPrefix(rel, "archive-v") {
			continue
		}
		if fi, err := os.Lstat(a); err == nil && fi.IsDir() {
			return a
		}
	}
	return ""
}

// distInfo is a *.dist-info directory's name: the distribution's name (as
// written there, "_" for "-") and its version.
var distInfo = lazyre.New(`^([A-Za-z0-9](?:[A-Za-z0-9._]{0,98}[A-Za-z0-9])?)-([0-9]{1,9}(?:\.[0-9]{1,9}){0,9}(?:(?:a|b|rc)[0-9]{1,9})?(?:\.post[0-9]{1,9})?(?:\.dev[0-9]{1,9})?)\.dist-info$`)

// maxSeedPins bounds what one virtualenv can ask the seeder for.
const maxSeedPins = 500

// installedPins reads what a built virtualenv holds: the names of its
// site-packages' *.dist-info directories, read by root through safefs
// (the virtualenv is the app's), as name==version pins, and where that
// site-packages is in the virtualenv. A name that is not a plain public
// version (a local one, a URL's) is left out: the seed only takes what the
// host's index serves.
func installedPins(envDir, venv string) (pins []string, dirs map[string]string, site string, err error) {
	lib, err := safefs.OpenDir(envDir, venv+"/lib")
	if err != nil {
		return nil, nil, "", err
	}
	names, err := lib.Readdirnames(64)
	lib.Close()
	if err != nil {
		return nil, nil, "", err
	}
	dirs = map[string]string{}
	for _, py := range names {
		if !strings.HasPrefix(py, "python3") {
			continue
		}
		site = "lib/" + py + "/site-packages"
		d, err := safefs.OpenDir(envDir, venv+"/"+site)
		if err != nil {
			return nil, nil, "", err
		}
		entries, _ := d.Readdirnames(10000)
		d.Close()
		for _, e := range entries {
			if m := distInfo.FindStringSubmatch(e); m != nil {
				pins = append(pins, m[1]+"=="+m[2])
				dirs[m[1]+"=="+m[2]] = e
			}
		}
		break // a virtualenv has one interpreter
	}
	sort.Strings(pins)
	pins = slices.Compact(pins)
	if len(pins) > maxSeedPins {
		pins = pins[:maxSeedPins]
	}
	return pins, dirs, site, nil
}

// maxRecord bounds a RECORD file read.
const maxRecord = 16 << 20

// pySums are the .py files a wheel's RECORD lists, with their hashes
// ("sha256=…"); nil when it lists none, or a .py file without a hash.
func pySums(record []byte) map[string]string {
	sums := map[string]string{}
	for _, line := range strings.Split(string(record), "\n") {
		path, rest, _ := strings.Cut(strings.TrimSpace(line), ",")
		if !strings.HasSuffix(path, ".py") {
			continue
		}
		hash, _, _ := strings.Cut(rest, ",")
		if !strings.HasPrefix(hash, "sha256=") {
			return nil
		}
		sums[path] = hash
	}
	if len(sums) == 0 {
		return nil
	}
	return sums
}

// archiveRecord is the RECORD of an unpacked wheel in the seed.
func archiveRecord(archive string) ([]byte, error) {
	records, _ := filepath.Glob(filepath.Join(archive, "*.dist-info", "RECORD"))
	if len(records) != 1 {
		return nil, fmt.Errorf("%s: %d RECORD files", archive, len(records))
	}
	return os.ReadFile(records[0])
}

// verifyArchive tells whether every .py file of an unpacked wheel in the
// seed is listed in its RECORD with its own SHA-256. A wheel's RECORD is
// its publisher's word: one that lies about a module must not have it
// compiled, since a virtualenv's module is matched to the seed's by these
// hashes (seedBytecode).
func verifyArchive(archive string) bool {
	record, err := archiveRecord(archive)
	if err != nil {
		return false
	}
	sums := pySums(record)
	if sums == nil {
		return false
	}
	ok := true
	_ = filepath.WalkDir(archive, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			ok = false
			return err
		}
		if e.IsDir() || !strings.HasSuffix(p, ".py") {
			return nil
		}
		rel, _ := filepath.Rel(archive, p)
		data, err := os.ReadFile(p)
		sum := sha256.Sum256(data)
		if err != nil || sums[filepath.ToSlash(rel)] != "sha256="+base64.RawURLEncoding.EncodeToString(sum[:]) {
			ok = false
			return filepath.SkipAll
		}
		return nil
	})
	return ok
}

// seedTimeout bounds one seeding (downloads included).
const seedTimeout = 10 * time.Minute

// seed adds what the virtualenv just built holds to the seed, in the
// background of the deploy that built it: root's uv fetches each pin from
// the host's default index into the seed, wheels only (--no-build), then
// the interpreter compiles the new modules. Its failures only mean a later
// first deploy downloads for itself, so they are logged, never reported.
func (b *Builder) seed(envDir, venv, python string) {
	pins, _, _, err := installedPins(envDir, venv)
	if err != nil || len(pins) == 0 {
		slog.Debug("uv seed: nothing to read", "venv", venv, "err", err)
		return
	}
	dir := seedCacheDir(b.Layout.SeedCache())
	seedMu.Lock()
	defer seedMu.Unlock()
	var want []string
	for _, p := range pins {
		if !seeded[dir+"\x00"+python+"\x00"+p] {
			want = append(want, p)
		}
	}
	if len(want) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), seedTimeout)
	defer cancel()
	start := time.Now()
	// Every seeding that may write ends in one log line, "added" or
	// "nothing added", once its files are all in place and its temp dirs
	// gone: what waits for the seed to settle looks for it.
	added := 0
	defer func() {
		took := time.Since(start).Round(time.Millisecond)
		if added == 0 {
			slog.Warn("uv seed: nothing added", "pins", len(want), "python", python, "took", took)
			return
		}
		slog.Info("uv seed: added", "pins", added, "python", python, "took", took)
	}()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		slog.Warn("uv seed", "err", err)
		return
	}
	// uv refuses to run from inside its cache: the target is beside it.
	work, err := os.MkdirTemp(filepath.Dir(dir), "target-")
	if err != nil {
		slog.Warn("uv seed", "err", err)
		return
	}
	defer os.RemoveAll(work)
	before := archiveEntries(dir)
	got := want
	if err := b.seedInstall(ctx, dir, work, python, want); err != nil {
		// One pin with no wheel on the index fails them all: one at a time.
		got = nil
		for _, p := range want {
			if err := b.seedInstall(ctx, dir, work, python, []string{p}); err != nil {
				slog.Debug("uv seed: not seeded", "pin", p, "err", err)
				continue
			}
			got = append(got, p)
		}
	}
	if len(got) == 0 {
		return
	}
	var fresh, verified []string
	for a := range archiveEntries(dir) {
		if !before[a] {
			fresh = append(fresh, a)
			if verifyArchive(a) {
				verified = append(verified, a)
			} else {
				slog.Debug("uv seed: a RECORD does not match its files: not compiled", "archive", a)
			}
		}
	}
	compileSeed(ctx, dir, python, verified)
	if err := seedModes(b.Layout.SeedCache(), fresh); err != nil {
		slog.Warn("uv seed: modes", "err", err)
		return
	}
	for _, p := range got {
		seeded[dir+"\x00"+python+"\x00"+p] = true
	}
	added = len(got)
}

// seedInstall fetches pins into the seed with uv as root: a throwaway
// --target, no dependencies (the pins are the whole set), no build, no
// configuration but the host's defaults.
func (b *Builder) seedInstall(ctx context.Context, dir, work, python string, pins []string) error {
	target := filepath.Join(work, "t")
	_ = os.RemoveAll(target)
	args := append([]string{"pip", "install", "--quiet", "--python", python, "--target", target,
		"--no-deps", "--no-build", "--link-mode", "hardlink", "--"}, pins...)
	cmd := exec.CommandContext(ctx, b.UV, args...)
	cmd.Dir = work
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + work, "LANG=C.UTF-8",
		"UV_CACHE_DIR=" + dir, "UV_NO_CONFIG=1", "UV_PYTHON_DOWNLOADS=never", "UV_NO_PROGRESS=1",
		"UV_PYTHON_PREFERENCE=only-system", "UV_SYSTEM_CERTS=1",
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := runNice(cmd); err != nil {
		return fmt.Errorf("uv pip install: %w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// runNice runs cmd at the lowest CPU priority: seeding runs beside the
// deploy that built the virtualenv, and the apps.
func runNice(cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, cmd.Process.Pid, 19)
	return cmd.Wait()
}

// archiveEntries are the seed's unpacked wheels (archive-v*/<id>).
func archiveEntries(dir string) map[string]bool {
	m := map[string]bool{}
	all, _ := filepath.Glob(filepath.Join(dir, "archive-v*", "*"))
	for _, a := range all {
		if !strings.HasPrefix(filepath.Base(a), ".") {
			m[a] = true
		}
	}
	return m
}

// compileSeed compiles the unpacked wheels just added to the seed to
// bytecode with the interpreter they were fetched for (another interpreter
// compiles them on import, as without a seed), at a low priority and on
// one CPU: it runs beside the app just deployed. compileall only parses:
// no module runs. Files that do not compile (a template named .py) are
// skipped.
func compileSeed(ctx context.Context, dir, python string, archives []string) {
	if len(archives) == 0 {
		return
	}
	cmd := exec.CommandContext(ctx, python, append([]string{"-I", "-m", "compileall", "-q", "-j", "1", "--invalidation-mode", "checked-hash", "--"}, archives...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := runNice(cmd); err != nil {
		slog.Debug("uv seed: compileall", "err", err) // some files did not compile
	}
}

// rootOnlyFiles makes the regular files directly in dir root's alone.
func rootOnlyFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			if err := os.Chmod(filepath.Join(dir, e.Name()), 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// seedModes opens the seed to the apps' users as far as the compiled
// modules they copy, and no further: the seed dir, its cache and the
// archive-v* dirs can be passed through (0711: no listing), the fresh
// unpacked wheels read (dirs 0755, files readable by all and writable by
// root only, whatever the umask and the wheels said); the rest is root's
// alone (0700). uv makes its lock files writable by all (0666): those in
// the dirs the apps pass through become root's alone (0600) before the
// dirs open, or an app could lock root's uv out or fill the disk as root.
func seedModes(seed string, fresh []string) error {
	cache := seedCacheDir(seed)
	tops, err := os.ReadDir(cache)
	if err != nil {
		return err
	}
	for _, t := range tops {
		p := filepath.Join(cache, t.Name())
		switch {
		case t.Type().IsRegular(): // .lock, CACHEDIR.TAG
			if err := os.Chmod(p, 0o600); err != nil {
				return err
			}
		case !t.IsDir():
		case strings.HasPrefix(t.Name(), "archive-v"):
			if err := rootOnlyFiles(p); err != nil {
				return err
			}
			if err := os.Chmod(p, 0o711); err != nil {
				return err
			}
		default:
			if err := os.Chmod(p, 0o700); err != nil {
				return err
			}
		}
	}
	for _, d := range []string{cache, seed} {
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
	}
	for _, a := range fresh {
		err := filepath.WalkDir(a, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() {
				return os.Chmod(p, 0o755)
			}
			if !e.Type().IsRegular() {
				return nil
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			if m := fi.Mode().Perm(); m&0o444 != 0o444 || m&0o022 != 0 {
				return os.Chmod(p, (m|0o444)&^0o022)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
