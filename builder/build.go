package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/lazyre"
	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/pybuild"
	"github.com/hasadna/conductor/pythons"
)

// GunicornPin is the WSGI server added to an app that has none among its
// dependencies and no web process in its Procfile, as Heroku users expect
// `web: gunicorn <project>.wsgi` to just work.
const GunicornPin = "gunicorn==27.0.1"

// detect reads what the release needs to build (pybuild.Detect): its app
// directory, settings module, Python version and package manager, then
// its Procfile. Unpack and restore both call it, so a restart picks up a
// DJANGO_SETTINGS_MODULE config var set since the release was built.
func (d *deployment) detect() error {
	b, err := pybuild.Detect(d.dir, d.config)
	if err != nil {
		if conductor.ErrorCode(err) == conductor.EINVALID {
			return failf("%s", conductor.ErrorMessage(err))
		}
		return err
	}
	d.build = b
	d.appDir = filepath.Join(d.dir, filepath.FromSlash(b.AppDir))
	if err := d.readProcfile(); err != nil {
		return err
	}
	// app.json's healthchecks or the config var: a mistake fails the push
	// here, before anything is built.
	if d.health, err = pybuild.WebHealthchecks(d.dir, d.config); err != nil {
		if conductor.ErrorCode(err) == conductor.EINVALID {
			return failf("%s", conductor.ErrorMessage(err))
		}
		return err
	}
	d.addGunicorn = false
	// The default web process is for a Procfile that runs nothing (none,
	// or only release:). One that declares other types and no web is a
	// worker-only app, as on Heroku: it gets no web process.
	if len(d.procfile.Types()) == 0 {
		wsgi, err := pybuild.WSGIModuleIn(d.dir, b.AppDir, b.Settings)
		if err != nil {
			return failf("%s", conductor.ErrorMessage(err))
		}
		d.procfile["web"] = "gunicorn " + wsgi + " --log-file -"
		_, hasServer := pybuild.HasWSGIServer(b.Install)
		d.addGunicorn = !hasServer
	}
	// app.json's cron: a bad schedule fails the push here, naming the
	// entry and what is wrong, before anything is built.
	if d.cron, err = pybuild.CronEntries(d.dir); err != nil {
		if conductor.ErrorCode(err) == conductor.EINVALID {
			return failf("%s", conductor.ErrorMessage(err))
		}
		return err
	}
	// The other types' uptimes (app.json, CONDUCTOR_CHECK_UPTIME): a
	// mistake fails here too, not after the release phase.
	d.uptime, d.uptimeAsked, err = d.uptimes(d.otherTypes())
	return err
}

// readProcfile reads the Procfile in the app directory, else at the top of
// the repository, as Dokku reads it there and as pybuild looks for
// requirements and the Python version; its commands run in the app
// directory either way. Read through safefs from the release's top: no
// link on the way, even one the app's processes swap in for the app
// directory now.
func (d *deployment) readProcfile() error {
	d.topProcfile = false
	for _, rel := range []string{path.Join(d.build.AppDir, "Procfile"), "Procfile"} {
		pf, err := process.ReadProcfileAt(d.dir, rel)
		if err != nil {
			return err
		}
		if pf != nil {
			d.procfile, d.topProcfile = pf, rel == "Procfile" && d.build.AppDir != "."
			return nil
		}
		if d.build.AppDir == "." {
			break
		}
	}
	d.procfile = process.Procfile{}
	return nil
}

// settingsOverride finds a Procfile command that sets DJANGO_SETTINGS_MODULE
// itself (`DJANGO_SETTINGS_MODULE=x gunicorn …`, `export …`, gunicorn's
// `--env`), as Heroku's Procfiles sometimes do: the process then skips
// local_settings.py.
var settingsOverride = lazyre.New(`(?:^|[\s;&|(])(?:--env[= ]\s*)?['"]?DJANGO_SETTINGS_MODULE=`)

// describeBuild says in the build output what detect found.
func (d *deployment) describeBuild() {
	b := d.build
	if b.AppDir != "." {
		d.log.Printf("       App directory: %s/ (%s)", b.AppDir, b.AppDirReason)
	}
	d.log.Printf("       Settings: %s (%s)", b.Settings, b.SettingsReason)
	if b.Python != "" {
		d.log.Printf("       Python: %s (from %s)", b.Python, b.PythonSource)
	}
	d.log.Printf("       Dependencies: %s", b.Install.Describe())
	if d.topProcfile {
		d.log.Printf("       Procfile: at the top of the repository (its commands run in %s/)", b.AppDir)
	}
	if _, ok := d.procfile["web"]; ok && d.addGunicorn {
		d.log.Printf("       No web process in the Procfile and no WSGI server among the dependencies: adding %s", GunicornPin)
	}
	if w := d.procfile["web"]; w != "" {
		d.log.Printf("       web: %s", w)
	}
	for _, typ := range append(d.procfile.Types(), "release") {
		if settingsOverride.MatchString(d.procfile[typ]) {
			d.log.Printf("       Warning: %s: sets DJANGO_SETTINGS_MODULE itself, so it does not load Conductor's local_settings.py (ALLOWED_HOSTS, DATABASES, STATIC_ROOT); `config:set %s DJANGO_SETTINGS_MODULE=…` names the module instead", typ, d.app.Name)
		}
	}
	for _, e := range d.cron {
		d.log.Printf("       cron %s: %s  %s", e.ID, e.Schedule, e.Command)
	}
}

// virtualenv reuses the app's virtualenv for these exact dependencies and
// interpreter, or builds it with uv. A code-only deploy installs nothing.
func (d *deployment) virtualenv(ctx context.Context) error {
	py, err := pythons.Find(ctx, d.b.Pythons, d.build.Python, d.b.Python)
	if err != nil {
		return failf("%s", conductor.ErrorMessage(err))
	}
	key := py.Version + "\x00" + py.Path
	if d.addGunicorn {
		key += "\x00" + GunicornPin
	}
	sum := sha256.Sum256([]byte(pybuild.ReuseKey(d.build.Install, key)))
	envDir := d.b.Layout.EnvironmentsDir(d.app.Name)
	d.venv = filepath.Join(envDir, hex.EncodeToString(sum[:])[:16])
	d.env = d.baseEnv()
	d.log.Printf("       Python %s", py.Version)
	if venvComplete(d.b.Layout, d.venv, false) {
		d.log.Printf("       Dependencies unchanged: reusing %s", filepath.Base(d.venv))
		return nil
	}
	// A half-built venv (a crash mid-install) is rebuilt from scratch.
	// Scripts in a venv hold its absolute path, so it is built in place.
	// RemoveAll unlinks a symlink planted there; it never follows one.
	if err := os.RemoveAll(d.venv); err != nil {
		return err
	}
	if err := safefs.EnsureDir(envDir, filepath.Base(d.venv), 0o750, d.user.UID, d.user.GID); err != nil {
		return err
	}
	cache := filepath.Join(envDir, ".cache")
	fi, err := os.Lstat(cache)
	if err == nil && !fi.IsDir() {
		_ = os.Remove(cache) // left when the dir was the app's
	}
	if err != nil || !fi.IsDir() {
		// A new app's cache starts with what uv found out about the
		// host's interpreters (seed.go).
		if err := startCache(seedCacheDir(d.b.Layout.SeedCache()), envDir, d.user.UID, d.user.GID); err != nil {
			slog.Warn("uv seed: the new cache starts empty", "app", d.app.Name, "err", err)
		}
	}
	if err := safefs.EnsureDir(envDir, ".cache", 0o700, d.user.UID, d.user.GID); err != nil {
		return err
	}
	// UV_LINK_MODE: hard links from the app's own cache make a virtualenv
	// from a warm cache in ~1 s, where copying Django's files took 1.6–4.8 s
	// on the bench machine. Cache and virtualenv are both the app's, in one
	// dir (docs/architecture.md, "uv's cache"); root never writes through a
	// file there (safefs renames over), and fs.protected_hardlinks keeps
	// other users' files out of it.
	uvEnv := map[string]string{
		"UV_CACHE_DIR":           cache,
		"UV_PYTHON_DOWNLOADS":    "never",
		"UV_NO_PROGRESS":         "1",
		"UV_LINK_MODE":           "hardlink", // see above
		"UV_PYTHON_PREFERENCE":   "only-system",
		"UV_NO_CONFIG":           "1",
		"UV_SYSTEM_CERTS":        "1", // the host's CAs, as pip uses them (a company proxy's too)
		"UV_COMPILE_BYTECODE":    "",
		"UV_PROJECT_ENVIRONMENT": d.venv,
	}
	if err := d.cmdEnv(ctx, uvEnv, d.dir, d.b.UV, "venv", "--quiet", "--allow-existing", "--python", py.Path, d.venv); err != nil {
		return failf("creating the virtualenv failed: %v", err)
	}
	// The requirements Conductor derives (from poetry.lock, Pipfile.lock,
	// or uv's export of uv.lock) go into the virtualenv, which is the
	// app's: uv, as the app, writes its export there too.
	reqFile := filepath.Join(d.venv, "conductor-requirements.txt")
	if reqs := d.build.Install.Requirements(); reqs != nil {
		if err := safefs.WriteFile(envDir, filepath.Base(d.venv)+"/conductor-requirements.txt", reqs, 0o640, d.user.UID, d.user.GID); err != nil {
			return err
		}
	}
	installDir := filepath.Join(d.dir, filepath.FromSlash(d.build.InstallDir))
	for _, argv := range d.build.Install.Commands(reqFile) {
		if argv[0] == "uv" {
			argv[0] = d.b.UV
		}
		var out tailBuffer
		d.capture = &out
		err := d.cmdEnv(ctx, uvEnv, installDir, argv[0], argv[1:]...)
		d.capture = nil
		if err != nil {
			// A dependency that refuses the host's default Python (a
			// Django 6 project that names no version): say what to change.
			if hint := d.build.InstallHint(out.String()); hint != "" {
				return failf("installing the dependencies failed: %v; %s", err, hint)
			}
			return failf("installing the dependencies failed: %v", err)
		}
	}
	if d.addGunicorn {
		if err := d.cmdEnv(ctx, uvEnv, d.dir, d.b.UV, "pip", "install", GunicornPin); err != nil {
			return failf("installing gunicorn failed: %v", err)
		}
	}
	d.seedBytecode(ctx, envDir, py.Path, py.Version)
	owner := 0
	if os.Geteuid() != 0 {
		owner = safefs.Keep
	}
	marker := d.b.Layout.VenvMarker(d.venv)
	if err := safefs.WriteFile(filepath.Dir(marker), filepath.Base(marker), nil, 0o640, owner, owner); err != nil {
		return err
	}
	// What it holds goes into the seed for the next new app, off the
	// deploy's path.
	go d.b.seed(envDir, filepath.Base(d.venv), py.Path)
	return nil
}

// hook runs the app's bin/<name> script (Heroku's bin/pre_compile and
// bin/post_compile), looked for in the app directory, then at the top of
// the repository, from the directory that holds bin/.
func (d *deployment) hook(ctx context.Context, name string) error {
	for _, sub := range []string{d.build.AppDir, "."} {
		rel := path.Join(sub, "bin", name)
		st, err := safefs.Lstat(d.dir, rel)
		if err != nil {
			if sub == "." {
				break
			}
			continue
		}
		if st.Mode&0o170000 != 0o100000 {
			return failf("bin/%s is not a regular file", name)
		}
		dir := filepath.Join(d.dir, filepath.FromSlash(sub))
		d.log.Printf("       Running bin/%s", name)
		var runErr error
		if st.Mode&0o100 != 0 {
			runErr = d.cmd(ctx, dir, filepath.Join(dir, "bin", name))
		} else {
			runErr = d.cmd(ctx, dir, "/bin/bash", filepath.Join("bin", name))
		}
		if runErr != nil {
			return failf("bin/%s failed: %v", name, runErr)
		}
		return nil
	}
	return nil
}

func (d *deployment) precompile(ctx context.Context) error  { return d.hook(ctx, "pre_compile") }
func (d *deployment) postcompile(ctx context.Context) error { return d.hook(ctx, "post_compile") }

// assets runs the app's npm build when its package.json (in the app
// directory, else at the top) has a "build" script: `npm ci` (or `npm
// install` without a lock file), then `npm run build`, as the app user.
// devDependencies are installed: asset toolchains live there.
func (d *deployment) assets(ctx context.Context) error {
	for _, sub := range []string{d.build.AppDir, "."} {
		data, err := safefs.ReadFileConfined(d.dir, path.Join(sub, "package.json"), 4<<20)
		if errors.Is(err, fs.ErrNotExist) {
			if sub == "." {
				break
			}
			continue
		} else if err != nil {
			return failf("package.json: %v", err)
		}
		var pkg struct {
			Scripts map[string]any `json:"scripts"`
		}
		if err := json.Unmarshal(data, &pkg); err != nil {
			return failf("package.json: %v", err)
		}
		if _, ok := pkg.Scripts["build"]; !ok {
			d.log.Printf("       package.json has no build script: skipped")
			return nil
		}
		dir := filepath.Join(d.dir, filepath.FromSlash(sub))
		install := []string{"ci", "--no-audit", "--no-fund"}
		if _, err := safefs.Lstat(d.dir, path.Join(sub, "package-lock.json")); err != nil {
			install = []string{"install", "--no-audit", "--no-fund"}
		}
		d.log.Printf("       Building assets: npm %s, then npm run build (%s)", install[0], path.Join(sub, "package.json"))
		env := map[string]string{"NODE_ENV": "", "npm_config_update_notifier": "false", "npm_config_progress": "false"}
		if err := d.cmdEnv(ctx, env, dir, "npm", install...); err != nil {
			return failf("npm %s failed: %v", install[0], err)
		}
		if err := d.cmdEnv(ctx, env, dir, "npm", "run", "build"); err != nil {
			return failf("npm run build failed: %v", err)
		}
		return nil
	}
	return nil
}

// cmdEnv is cmd with extra environment variables ("" removes one).
func (d *deployment) cmdEnv(ctx context.Context, extra map[string]string, dir, name string, args ...string) error {
	saved := d.env
	env := make(map[string]string, len(saved)+len(extra))
	for k, v := range saved {
		env[k] = v
	}
	for k, v := range extra {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	d.env = env
	defer func() { d.env = saved }()
	return d.cmd(ctx, dir, name, args...)
}

// tailBuffer keeps the last 64 KiB written to it: enough for uv's
// resolver report, bounded however much an install prints.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - 64<<10; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
