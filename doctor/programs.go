package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/internal/lazyre"
)

// output runs a program (never through a shell) with a time bound and
// returns what it printed, stdout and stderr together.
func output(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// executable tells why path cannot be run, or nil.
func executable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", path)
	}
	return nil
}

var nginxVersionRE = lazyre.New(`nginx/(\S+)`)

// NginxBinary checks that the nginx binary is there and runs.
func NginxBinary(ctx context.Context, bin string) Result {
	const name = "nginx"
	if err := executable(bin); err != nil {
		return fail(name, "apt-get install nginx-light, or give its path with --nginx-bin", "%v", err)
	}
	out, err := output(ctx, bin, "-v")
	m := nginxVersionRE.FindStringSubmatch(out)
	if err != nil || m == nil {
		return fail(name, "reinstall nginx (apt-get install --reinstall nginx-light)", "%s -v: %v %s", bin, err, out)
	}
	return ok(name, "nginx %s at %s", m[1], bin)
}

// NginxJSModule checks that nginx's njs module is installed: every app
// site reads its route through it (nginx/route.go).
func NginxJSModule(path string) Result {
	const name = "nginx njs"
	if _, err := os.Stat(path); err != nil {
		return fail(name, "apt-get install libnginx-mod-http-js (make setup does)", "%v: app sites read their route through njs", err)
	}
	return ok(name, "njs module at %s", path)
}

// NginxConfig runs `nginx -t` on the nginx configuration conf (with the
// prefix, when not ""), or on nginx's default configuration when conf is "".
func NginxConfig(ctx context.Context, bin, prefix, conf string) Result {
	const name = "nginx config"
	if executable(bin) != nil {
		return fail(name, "install nginx first (see the nginx line)", "cannot test the configuration without nginx")
	}
	args := []string{"-t", "-q"}
	what := "nginx's default configuration"
	if conf != "" {
		if _, err := os.Stat(conf); errors.Is(err, os.ErrNotExist) {
			return ok(name, "%s is not written yet: conductor serve writes it when it starts", conf)
		}
		if prefix != "" {
			args = append(args, "-p", prefix)
		}
		args = append(args, "-c", conf)
		what = conf
	}
	if out, err := output(ctx, bin, args...); err != nil {
		return fail(name, "correct the file nginx names (a site Conductor wrote is rewritten by the app's next deploy)", "nginx -t of %s: %s", what, firstLine(out, err))
	}
	return ok(name, "nginx -t accepts %s", what)
}

// Circusd checks the circus virtualenv: circusd runs, and circus and its
// dependencies are the pinned versions (circus 0.19 breaks with a newer
// tornado).
func Circusd(ctx context.Context, binDir string, pins map[string]string) Result {
	const name = "circusd"
	venv := filepath.Dir(binDir)
	fix := fmt.Sprintf("recreate the virtualenv: rm -rf %s && python3 -m venv %s && %s install --only-binary=:all: -r deploy/circus-requirements.txt (make setup does this)",
		venv, venv, filepath.Join(binDir, "pip"))
	circusd := filepath.Join(binDir, "circusd")
	if err := executable(circusd); err != nil {
		return fail(name, fix, "%v", err)
	}
	out, err := output(ctx, circusd, "--version")
	if err != nil {
		return fail(name, fix, "%s --version: %s", circusd, firstLine(out, err))
	}
	installed, err := installedPackages(venv)
	if err != nil {
		return fail(name, fix, "read the packages of %s: %v", venv, err)
	}
	var wrong []string
	for _, pkg := range sortedKeys(pins) {
		have, want := installed[normalize(pkg)], pins[pkg]
		switch {
		case have == "":
			wrong = append(wrong, pkg+" missing (pinned "+want+")")
		case have != want:
			wrong = append(wrong, pkg+" "+have+" (pinned "+want+")")
		}
	}
	if len(wrong) > 0 {
		return fail(name, fix, "circus virtualenv %s differs from deploy/circus-requirements.txt: %s", venv, strings.Join(wrong, ", "))
	}
	return ok(name, "circusd %s at %s, %d pinned packages as required", out, circusd, len(pins))
}

// installedPackages reads a virtualenv's installed distributions from
// their dist-info directories: name (normalized) → version.
func installedPackages(venv string) (map[string]string, error) {
	dirs, err := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages", "*.dist-info"))
	if err != nil {
		return nil, err
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("no packages under %s/lib/python3*/site-packages", venv)
	}
	pkgs := map[string]string{}
	for _, d := range dirs {
		base := strings.TrimSuffix(filepath.Base(d), ".dist-info")
		if pkg, version, ok := strings.Cut(base, "-"); ok {
			pkgs[normalize(pkg)] = version
		}
	}
	return pkgs, nil
}

// normalize is Python's package name normalization (PEP 503), enough to
// compare a requirement's name with a dist-info directory's.
func normalize(name string) string {
	return strings.ToLower(regexp.MustCompile(`[-_.]+`).ReplaceAllString(name, "-"))
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// CircusSocket checks that a running circusd answers on its control socket.
// A circusd that is not running is only a warning: hints says what starts
// it and what restarts it.
func CircusSocket(ctx context.Context, dir string, hints func() (starts, restart string)) Result {
	const name = "circus socket"
	starts, restart := hints()
	pidFile := filepath.Join(dir, "circusd.pid")
	pid, alive := pidFromFile(pidFile)
	if !alive {
		return ok(name, "circusd is not running (%s)", starts)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := (&circus.Circus{Dir: dir}).Status(ctx)
	if err != nil {
		return fail(name, fmt.Sprintf("%s; its log is %s", restart, filepath.Join(dir, "circusd.log")),
			"circusd (pid %d) does not answer on its control socket in %s: %v", pid, dir, err)
	}
	return ok(name, "circusd (pid %d) answers, %d watchers", pid, len(st))
}

// pidFromFile reads a pid file and tells whether that process is alive.
func pidFromFile(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, syscall.Kill(pid, 0) == nil
}

// Python checks the interpreter app virtualenvs are made with, and that it
// can make them: Debian splits ensurepip into python3-venv.
func Python(ctx context.Context, python string) Result {
	const name = "python"
	if err := executable(python); err != nil {
		return fail(name, "apt-get install python3 python3-venv, or give its path with --python", "%v", err)
	}
	out, err := output(ctx, python, "-c", "import sys, venv, ensurepip; print('%d.%d.%d' % sys.version_info[:3])")
	if err != nil {
		if strings.Contains(out, "ensurepip") || strings.Contains(out, "venv") {
			return fail(name, "apt-get install python3-venv", "%s cannot make virtualenvs: %s", python, lastLine(out))
		}
		return fail(name, "reinstall python3 (apt-get install --reinstall python3)", "%s does not run: %s", python, firstLine(out, err))
	}
	return ok(name, "Python %s at %s, with venv and ensurepip", out, python)
}

var gitVersionRE = lazyre.New(`git version (\d+)\.(\d+)`)

// Git checks the git that serves pushes: core.hooksPath needs 2.9.
func Git(ctx context.Context) Result {
	const name = "git"
	path, err := exec.LookPath("git")
	if err != nil {
		return fail(name, "apt-get install git", "git is not on PATH")
	}
	out, err := output(ctx, path, "--version")
	m := gitVersionRE.FindStringSubmatch(out)
	if err != nil || m == nil {
		return fail(name, "reinstall git (apt-get install --reinstall git)", "%s --version: %s", path, firstLine(out, err))
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < 2 || major == 2 && minor < 9 {
		return fail(name, "install git 2.9 or newer", "%s is too old: Conductor's hooks need core.hooksPath (git 2.9)", out)
	}
	return ok(name, "%s at %s", out, path)
}

// ClientTool checks a database client program that backups run
// (pg_dump, mariadb-dump).
func ClientTool(ctx context.Context, tool, pkg string) Result {
	path, err := exec.LookPath(tool)
	if err != nil {
		return warn(tool, "apt-get install "+pkg, "%s is not on PATH: conductor backup cannot dump the apps' databases", tool)
	}
	out, err := output(ctx, path, "--version")
	if err != nil {
		return warn(tool, "apt-get install --reinstall "+pkg, "%s --version: %s", path, firstLine(out, err))
	}
	return ok(tool, "%s", firstLine(out, nil))
}

func firstLine(out string, err error) string {
	line, _, _ := strings.Cut(out, "\n")
	if line == "" && err != nil {
		return err.Error()
	}
	return line
}

func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
