package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/nginx"
	"github.com/hasadna/conductor/process"
	"github.com/hasadna/conductor/provision"
	"github.com/hasadna/conductor/pybuild"
	"github.com/hasadna/conductor/queue"
)

// step is one named stage of a deploy. Each logs a header line (the app's
// own hooks only when the app has them) and can fail the deploy; a failure
// before "switch" leaves the serving release untouched.
type step struct {
	name   string
	header string
	run    func(*deployment, context.Context) error
}

// pipeline is the whole deploy, in order.
var pipeline = []step{
	{"provision", "Provisioning the app", (*deployment).provision},
	{"unpack", "Unpacking the source", (*deployment).unpack},
	{"virtualenv", "Installing dependencies", (*deployment).virtualenv},
	{"settings", "Writing settings", (*deployment).settings},
	{"pre_compile", "", (*deployment).precompile}, // bin/pre_compile, if the app has one
	{"assets", "", (*deployment).assets},          // npm ci && npm run build, if package.json has a build script
	{"collectstatic", "Collecting static files", (*deployment).collectstatic},
	{"post_compile", "", (*deployment).postcompile}, // bin/post_compile, after collectstatic (django-compressor's compress)
	{"release", "Running the release phase", (*deployment).release},
	{"start", "Starting processes", (*deployment).start},
	{"check", "Checking the new release", (*deployment).check},
	{"switch", "Switching traffic to the new release", (*deployment).switchTraffic},
	{"retire", "Retiring the previous release", (*deployment).retire},
}

// rollbackPipeline runs a kept release again: its code, virtualenv and
// config, with the same zero-downtime switch, and no pip, migrate or
// collectstatic. Its settings are written again for the app's domains as
// they are now (ALLOWED_HOSTS, nginx's server names).
var rollbackPipeline = []step{
	{"provision", "Provisioning the app", (*deployment).provision},
	{"restore", "Restoring the release", (*deployment).restore},
	{"settings", "Writing settings", (*deployment).settings},
	{"start", "Starting processes", (*deployment).start},
	{"check", "Checking the release", (*deployment).check},
	{"switch", "Switching traffic to the release", (*deployment).switchTraffic},
	{"retire", "Retiring the previous release", (*deployment).retire},
}

// restartPipeline runs the serving release again with the app's current
// config and domains (config:set, domains:add, ps:restart): a new release
// on the same code and virtualenv, with the same zero-downtime switch.
var restartPipeline = []step{
	{"provision", "Provisioning the app", (*deployment).provision},
	{"restore", "Restoring the serving release", (*deployment).restore},
	{"settings", "Writing settings", (*deployment).settings},
	{"start", "Starting processes", (*deployment).start},
	{"check", "Checking the release", (*deployment).check},
	{"switch", "Switching traffic to the release", (*deployment).switchTraffic},
	{"retire", "Retiring the previous release", (*deployment).retire},
}

// deployment is the state of one job as it moves through the pipeline.
type deployment struct {
	b   *Builder
	job *queue.Job
	app *conductor.App
	log *queue.LogWriter

	user        *provision.AppUser
	db          provision.Database // what Django needs to reach the app's database
	previous    *conductor.Release // serving release, nil on a first deploy
	dir         string             // the new release's directory
	venv        string
	build       *pybuild.Build // what the release needs to build (builder/build.go)
	appDir      string         // the directory holding manage.py: d.dir or below it
	addGunicorn bool           // no web process and no WSGI server: GunicornPin is added
	procfile    process.Procfile
	env         map[string]string // environment of every app process and build command
	port        int               // the new release's web port
	switched    bool
	newWatcher  string
	domains     []string           // custom domains (domains:add): server_name and ALLOWED_HOSTS
	config      map[string]string  // the app's config vars, snapshot into the release
	reused      *conductor.Release // the kept release a rollback or restart runs again
	started     time.Time
}

func (d *deployment) run(ctx context.Context) error {
	d.started = time.Now()
	steps := pipeline
	switch d.job.Kind {
	case queue.KindRollback:
		steps = rollbackPipeline
	case queue.KindRestart:
		steps = restartPipeline
	}
	for _, s := range steps {
		if s.header != "" {
			d.log.Printf("-----> %s", s.header)
		}
		start := time.Now()
		if err := s.run(d, ctx); err != nil {
			d.cleanup(context.WithoutCancel(ctx))
			return fmt.Errorf("%s: %w", s.name, err)
		}
		slog.Debug("step done", "app", d.app.Name, "deploy", d.job.ID, "step", s.name, "took", time.Since(start))
	}
	d.log.Printf("-----> Deployed %s at %s (release %s)", d.app.Name, d.url(), d.job.ID)
	return nil
}

// cleanup undoes what a failed deploy started, never touching the serving
// release.
func (d *deployment) cleanup(ctx context.Context) {
	if d.switched {
		return
	}
	if d.newWatcher != "" {
		_ = d.removeWatcher(ctx, d.newWatcher)
	}
	if d.dir != "" && d.reused == nil { // a kept release's dir stays
		_ = os.RemoveAll(d.dir)
	}
}

func (d *deployment) host() string { return d.app.Name + "." + d.b.Domain }

// url is where the app is served through the front nginx.
func (d *deployment) url() string {
	if _, port, err := net.SplitHostPort(d.b.HTTPAddr); err == nil && port != "80" {
		return "http://" + d.host() + ":" + port + "/"
	}
	return "http://" + d.host() + "/"
}

// provision creates the app's unix user and directories if they are missing.
func (d *deployment) provision(ctx context.Context) error {
	l := d.b.Layout
	u, err := provision.EnsureUser(ctx, d.app.Name, l.ProjectDir(d.app.Name))
	if err != nil {
		return err
	}
	d.user = u
	if err := provision.Dirs(ctx, l, d.app.Name, u); err != nil {
		return err
	}
	if d.db, err = d.b.Databases.Ensure(ctx, d.app, u); err != nil {
		return err
	}
	d.log.Printf("       Database: %s", d.db) // String leaves the password out
	prev, err := d.b.Store.CurrentRelease(ctx, d.app.ID)
	if err != nil && conductor.ErrorCode(err) != conductor.ENOTFOUND {
		return err
	}
	d.previous = prev
	if d.config, err = d.b.Store.Config(ctx, d.app.ID); err != nil {
		return err
	}
	d.port = d.app.Ports[0]
	if prev != nil && prev.Port == d.app.Ports[0] {
		d.port = d.app.Ports[1]
	}
	return nil
}

// unpack extracts the pushed revision into a new release directory.
func (d *deployment) unpack(ctx context.Context) error {
	d.dir = d.b.Layout.ReleaseDir(d.app.Name, d.job.ID)
	if err := os.RemoveAll(d.dir); err != nil { // a redelivered job's leftovers
		return err
	}
	// root's until everything in it is unpacked and given to the app
	// (extractTarGz), then the app's: 0711 lets nginx's workers through to
	// staticfiles while other apps' users cannot list it.
	if err := os.Mkdir(d.dir, 0o711); err != nil {
		return err
	}
	if err := os.Chmod(d.dir, 0o711); err != nil {
		return err
	}
	r, err := d.b.Queue.GetArchive(ctx, d.job.ID)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := extractTarGz(r, d.dir, d.user.UID, d.user.GID); err != nil {
		return failf("unpack %s: %v", shortRev(d.job.Rev), err)
	}
	if err := d.user.Chown(d.dir); err != nil {
		return err
	}
	if err := d.detect(); err != nil {
		return err
	}
	d.log.Printf("       %s (%s)", d.job.Ref, d.job.Rev)
	d.describeBuild()
	return nil
}

// venvComplete tells whether a virtualenv was built to the end: its marker
// in root's environments dir exists and is root's. legacy also accepts the
// marker inside the virtualenv that releases built before the marker moved
// have (only its existence is read), so they can be restarted and rolled
// back to.
func venvComplete(l provision.Layout, venv string, legacy bool) bool {
	if venv == "" {
		return false
	}
	if fi, err := os.Lstat(l.VenvMarker(venv)); err == nil && fi.Mode().IsRegular() {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Geteuid() {
			return true
		}
	}
	if legacy {
		if fi, err := os.Lstat(filepath.Join(venv, ".conductor-complete")); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

// baseEnv is the environment of build commands and app processes: the
// app's config vars, then Conductor's own values, which win.
func (d *deployment) baseEnv() map[string]string {
	env := map[string]string{}
	for k, v := range d.config {
		env[k] = v
	}
	for k, v := range map[string]string{
		"PATH":                    filepath.Join(d.venv, "bin") + ":/usr/local/bin:/usr/bin:/bin",
		"VIRTUAL_ENV":             d.venv,
		"HOME":                    d.b.Layout.HomeDir(d.app.Name),
		"LANG":                    "C.UTF-8",
		"PYTHONUNBUFFERED":        "1",
		"PYTHONDONTWRITEBYTECODE": "",
		"DJANGO_SETTINGS_MODULE":  "local_settings",
		"DATABASE_URL":            d.db.URL,
		"CONDUCTOR_APP":           d.app.Name,
		"CONDUCTOR_RELEASE":       d.job.ID,
	} {
		if v == "" {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	return env
}

// settings writes local_settings.py.
func (d *deployment) settings(ctx context.Context) error {
	l := d.b.Layout
	domains, err := d.b.Store.Domains(ctx, d.app.ID)
	if err != nil {
		return err
	}
	d.domains = domains
	return provision.WriteSettings(provision.Settings{
		App:        d.app.Name,
		Release:    d.job.ID,
		Module:     d.build.Settings,
		SecretKey:  d.app.SecretKey,
		Hosts:      append([]string{d.host(), "127.0.0.1", "localhost"}, d.domains...),
		DB:         d.db,
		StaticRoot: filepath.Join(d.dir, "staticfiles"),
		MediaRoot:  l.MediaDir(d.app.Name),
	}, d.dir, d.build.AppDir, d.user)
}

// release runs the Procfile's release command, or Django's migrate.
func (d *deployment) release(ctx context.Context) error {
	if cmd, ok := d.procfile["release"]; ok {
		argv, assigns, err := process.SplitProcfileCommand(cmd, d.env)
		if err != nil {
			return failf("release command: %v", err)
		}
		if err := d.cmdEnv(ctx, assigns, d.appDir, argv[0], argv[1:]...); err != nil {
			return failf("release command failed: %v", err)
		}
		return nil
	}
	if err := d.cmd(ctx, d.appDir, "python", "manage.py", "migrate", "--noinput"); err != nil {
		return failf("migrate failed: %v", err)
	}
	return nil
}

// collectstatic gathers static files into the release's own directory, so
// the serving release's files are never touched.
func (d *deployment) collectstatic(ctx context.Context) error {
	// nginx serves this directory: whatever the repository put at that path
	// (a symlink to /etc, say) goes, and collectstatic makes it afresh.
	if err := os.RemoveAll(filepath.Join(d.dir, "staticfiles")); err != nil {
		return err
	}
	if d.config["DISABLE_COLLECTSTATIC"] != "" && d.config["DISABLE_COLLECTSTATIC"] != "0" {
		d.log.Printf("       DISABLE_COLLECTSTATIC is set: skipped")
		return nil
	}
	if err := d.cmd(ctx, d.appDir, "python", "manage.py", "collectstatic", "--noinput", "-v", "1"); err != nil {
		return failf("collectstatic failed: %v", err)
	}
	return nil
}

// webWatcher names the web watcher on a port; app names have no "_", so
// "<app>_" prefixes exactly one app's watchers.
func webWatcher(app string, port int) string { return app + "_web_" + strconv.Itoa(port) }
func typeWatcher(app, typ string) string     { return app + "_" + typ }

// start runs the new release's web processes on the idle port, next to the
// serving ones.
func (d *deployment) start(ctx context.Context) error {
	name := webWatcher(d.app.Name, d.port)
	// A failed deploy may have left a watcher on the idle port.
	if err := d.removeWatcher(ctx, name); err != nil {
		return err
	}
	if err := d.addWatcher(ctx, name, "web", d.port); err != nil {
		return err
	}
	d.newWatcher = name
	d.log.Printf("       web: %s on port %d", d.procfile["web"], d.port)
	return nil
}

// specPath is the process spec circus starts a watcher from.
func (d *deployment) specPath(watcher string) string {
	return filepath.Join(d.b.Layout.RunDir(d.app.Name), watcher+".json")
}

// removeWatcher stops a watcher, kills what its processes left, and
// deletes its spec.
func (d *deployment) removeWatcher(ctx context.Context, name string) error {
	if err := d.b.stopWatcher(ctx, name, d.specPath(name), false); err != nil {
		return err
	}
	if err := os.Remove(d.specPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func (d *deployment) addWatcher(ctx context.Context, name, typ string, port int) error {
	env := map[string]string{}
	for k, v := range d.env {
		env[k] = v
	}
	if port != 0 {
		env["PORT"] = strconv.Itoa(port)
		// --reuse-port: with ps:scale web=N, circus runs N gunicorn masters
		// on the one port, and the kernel spreads connections among them.
		env["GUNICORN_CMD_ARGS"] = "--bind 127.0.0.1:" + strconv.Itoa(port) + " --reuse-port"
	}
	argv, assigns, err := process.SplitProcfileCommand(d.procfile[typ], env)
	if err != nil {
		return failf("process %s: %v", typ, err)
	}
	for k, v := range assigns {
		env[k] = v
	}
	spec := d.specPath(name)
	limits, err := d.b.typeLimits(ctx, d.app, typ) // ps:limit
	if err != nil {
		return err
	}
	// As root, circus starts run-process as root: it puts itself in the
	// watcher's cgroup with the type's limits, then becomes the app user.
	if err := process.WriteSpec(spec, &process.Spec{Type: typ, Argv: argv, Env: env, Dir: d.appDir,
		UID: d.user.UID, GID: d.user.GID, Cgroup: d.b.newWatcherCgroup(d.app.Name, name), Limits: limits}, d.user.UID, d.user.GID); err != nil {
		return err
	}
	scale, err := d.b.Store.ProcessScale(ctx, d.app.ID) // ps:scale
	if err != nil {
		return err
	}
	n, ok := scale[typ]
	if !ok {
		n = 1
	}
	if err := d.b.Circus.Add(ctx, circus.Watcher{
		App: d.app.Name, Name: name, Cmd: d.b.Conductor, Spec: spec, WorkingDir: d.appDir, // run-process changes user itself
		LogFile:      filepath.Join(d.b.Layout.LogDir(d.app.Name), typ+".log"),
		LogMaxBytes:  d.b.LogMaxBytes,
		NumProcesses: n,
	}); err != nil {
		return err
	}
	if n == 0 { // Add takes 0 as its default of 1: a type scaled to zero stays stopped
		return d.b.Circus.Scale(ctx, name, 0)
	}
	return nil
}

// check waits until the new release answers "/" with its own Host header
// and anything but a server error.
func (d *deployment) check(ctx context.Context) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/", d.port)
	// A redirect is an answer: an app with SECURE_SSL_REDIRECT sends the
	// check to https://<host>/, which is up as far as the new process
	// goes. Following it would ask DNS and the front nginx instead.
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	deadline := time.Now().Add(60 * time.Second)
	var last string
	alive, died := map[int]bool{}, 0
	for i := 0; time.Now().Before(deadline); i++ {
		// circus respawns a process that dies at boot forever: when three
		// of the release's processes have died, it is crashing.
		if i%20 == 19 { // about once a second
			if pids, err := d.b.Circus.Pids(ctx, d.newWatcher); err == nil {
				now := map[int]bool{}
				for _, p := range pids {
					now[p] = true
				}
				for p := range alive {
					if !now[p] {
						died++
					}
				}
				alive = now
			}
			if died >= 3 {
				last = "its processes keep exiting"
				break
			}
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Host = d.host()
		req.Header.Set("X-Forwarded-Proto", "http") // as the front nginx sets it for a plain request
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode < 500 {
				d.log.Printf("       GET / answered %d", resp.StatusCode)
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.log.Printf("       The new release did not become healthy; last lines of its log:")
	d.log.Printf("%s", indent(safefs.Tail(d.b.Layout.ProjectsDir(), d.app.Name+"/logs/web.log", 20)))
	return failf("health check of the new release failed (last answer: %s)", last)
}

// switchTraffic points nginx and the current symlink at the new release and
// records it.
func (d *deployment) switchTraffic(ctx context.Context) error {
	tls, err := d.tlsHosts(ctx) // builder/tls.go
	if err != nil {
		return err
	}
	if err := d.b.Nginx.WriteSite(ctx, nginx.Site{
		App: d.app.Name, Release: d.job.ID, Hosts: append([]string{d.host()}, d.domains...), Port: d.port,
		StaticDir: filepath.Join(d.dir, "staticfiles"), MediaDir: d.b.Layout.MediaDir(d.app.Name), TLS: tls,
	}); err != nil {
		return err
	}
	d.switched = true
	link := d.b.Layout.CurrentLink(d.app.Name)
	_ = os.Remove(link + ".tmp")
	if err := os.Symlink(d.dir, link+".tmp"); err == nil {
		_ = os.Rename(link+".tmp", link)
	}
	desc := "deploy of " + d.job.Ref
	switch {
	case d.job.Kind == queue.KindRestart:
		desc = d.job.Ref
	case d.reused != nil:
		desc = fmt.Sprintf("rollback to v%d", d.reused.Number)
		if err := d.b.Store.ReplaceConfig(ctx, d.app.ID, d.config); err != nil {
			return err
		}
	}
	rel := &conductor.Release{
		ID: d.job.ID, AppID: d.app.ID, Rev: d.job.Rev, Port: d.port, Dir: d.dir, Venv: d.venv,
		Config: d.config, Pusher: d.job.Pusher, Description: desc, Duration: time.Since(d.started),
	}
	if err := d.b.Store.AddRelease(ctx, rel); err != nil {
		return err
	}
	d.log.Printf("       Release v%d is live", rel.Number)
	d.waitForNginx(ctx)
	return nil
}

// waitForNginx waits (briefly) until nginx's workers serve the new
// configuration, so a push returns only once its release is live.
func (d *deployment) waitForNginx(ctx context.Context) {
	if err := d.b.Nginx.WaitServing(ctx, d.host(), d.job.ID, 15*time.Second); err != nil {
		d.log.Printf("       Warning: %v", err)
	}
}

// retire stops the previous release's web processes (circus lets them
// finish their requests), restarts the other process types on the new
// release and prunes old releases.
func (d *deployment) retire(ctx context.Context) error {
	// Requests that old nginx workers already sent to the old release
	// finish before its processes stop.
	if err := d.b.Nginx.WaitOldWorkers(ctx, 30*time.Second); err != nil {
		d.log.Printf("       Warning: %v", err)
	}
	if d.previous != nil && d.previous.Port != d.port {
		// The old processes get their stop signal and finish their
		// requests (graceful_timeout) while the push returns: nothing
		// routes to them any more.
		name := webWatcher(d.app.Name, d.previous.Port)
		if err := d.b.stopWatcher(ctx, name, d.specPath(name), true); err != nil {
			return err
		}
		if err := os.Remove(d.specPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	keep := map[string]bool{d.newWatcher: true}
	for _, typ := range d.procfile.Types() {
		if typ == "web" {
			continue
		}
		name := typeWatcher(d.app.Name, typ)
		keep[name] = true
		if err := d.removeWatcher(ctx, name); err != nil {
			return err
		}
		if err := d.addWatcher(ctx, name, typ, 0); err != nil {
			return err
		}
		d.log.Printf("       %s: %s", typ, d.procfile[typ])
	}
	// Process types dropped from the Procfile stop too.
	names, err := d.b.Circus.Watchers()
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, d.app.Name+"_") && !keep[n] {
			if err := d.removeWatcher(ctx, n); err != nil {
				return err
			}
		}
	}
	return d.prune(ctx)
}

// prune deletes release directories beyond the newest Keep.
func (d *deployment) prune(ctx context.Context) error {
	releases, err := d.b.Store.ListReleases(ctx, d.app.ID)
	if err != nil {
		return err
	}
	keep, keepVenv := map[string]bool{}, map[string]bool{d.venv: true}
	for i, r := range releases {
		if i < d.b.Keep || r.Current {
			keep[r.Dir] = true
			keepVenv[r.Venv] = true
			keepVenv[d.b.Layout.VenvMarker(r.Venv)] = true
		}
	}
	keepVenv[d.b.Layout.VenvMarker(d.venv)] = true
	keep[d.dir] = true
	if err := removeAllBut(d.b.Layout.ReleasesDir(d.app.Name), keep); err != nil {
		return err
	}
	// Virtualenvs go with the releases that use them; .cache is pip's.
	keepVenv[filepath.Join(d.b.Layout.EnvironmentsDir(d.app.Name), ".cache")] = true
	return removeAllBut(d.b.Layout.EnvironmentsDir(d.app.Name), keepVenv)
}

// removeAllBut deletes the entries of dir whose paths are not in keep.
func removeAllBut(dir string, keep map[string]bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if p := filepath.Join(dir, e.Name()); !keep[p] {
			if err := os.RemoveAll(p); err != nil {
				return err
			}
		}
	}
	return nil
}

// restore loads the kept release a rollback or restart runs: its directory
// (with its static files), virtualenv and, for a rollback, its config
// snapshot. A restart takes the serving release when the job runs, so a
// config change queued behind a push applies to what that push released.
func (d *deployment) restore(ctx context.Context) (err error) {
	rel := d.previous
	if d.job.Kind == queue.KindRestart {
		if rel == nil {
			return failf("%s has no release to restart", d.app.Name)
		}
	} else {
		if rel, err = d.b.Store.FindRelease(ctx, d.app.ID, d.job.Release); err != nil {
			return err
		}
		if rel.Current {
			return failf("release v%d is already serving", rel.Number)
		}
	}
	if !venvComplete(d.b.Layout, rel.Venv, true) {
		return failf("release v%d was pruned (only the last %d releases are kept)", rel.Number, d.b.Keep)
	}
	if _, err := os.Lstat(rel.Dir); err != nil {
		return failf("release v%d was pruned (only the last %d releases are kept)", rel.Number, d.b.Keep)
	}
	d.reused, d.dir, d.venv = rel, rel.Dir, rel.Venv
	if d.job.Kind == queue.KindRollback {
		d.config = rel.Config
	}
	d.job.Rev = rel.Rev
	if err := d.detect(); err != nil {
		return err
	}
	d.log.Printf("       Settings: %s (%s)", d.build.Settings, d.build.SettingsReason)
	d.env = d.baseEnv()
	if d.job.Kind == queue.KindRollback {
		d.log.Printf("       Rolling back to v%d (%s, %s)", rel.Number, shortRev(rel.Rev), rel.Description)
		d.log.Printf("       Warning: database migrations are not reversed; v%d runs on the current schema", rel.Number)
	} else {
		d.log.Printf("       Restarting v%d (%s) with the current config", rel.Number, shortRev(rel.Rev))
	}
	return nil
}

func shortRev(rev string) string {
	if len(rev) > 8 {
		return rev[:8]
	}
	return rev
}

// cmd runs a build command as the app user in dir, streaming its output
// into the job's log, indented under the step header.
func (d *deployment) cmd(ctx context.Context, dir, name string, args ...string) error {
	if !strings.Contains(name, "/") {
		if p, err := process.LookPath(name, d.env["PATH"]); err == nil {
			name = p
		}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = process.Environ(d.env)
	// A build step dies with a killed conductor instead of running on
	// unsupervised; the restarted conductor marks its deploy failed and
	// kills what the step left (Reconcile). Everything the step started
	// is killed when it ends (runInGroup, cgroups.go).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(d.user.UID), Gid: uint32(d.user.GID), Groups: []uint32{}}
	}
	w := &indentWriter{w: d.log}
	cmd.WaitDelay = 5 * time.Second
	err := d.b.runInGroup(cmd, d.app.Name, w)
	w.Flush()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("%s exited with status %d", filepath.Base(name), exit.ExitCode())
	}
	return err
}
