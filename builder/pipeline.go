package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hasadna/conductor"
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

// housekeeping are the steps that run after the pusher was told the deploy
// succeeded: they come after the commit point, where a failure is only a
// warning, so a push never waits for the previous release to finish its
// requests (retire drains them).
var housekeeping = map[string]bool{"retire": true}

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
	{"check", "Checking the new release", (*deployment).checkRelease},
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
	{"check", "Checking the release", (*deployment).checkRelease},
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
	{"check", "Checking the release", (*deployment).checkRelease},
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
	dbs         []provision.Database // what Django needs to reach the app's databases, the default first
	previous    *conductor.Release   // serving release, nil on a first deploy
	dir         string               // the new release's directory
	migrations  string               // digest of its migration files (extractTarGz)
	venv        string
	build       *pybuild.Build // what the release needs to build (builder/build.go)
	appDir      string         // the directory holding manage.py: d.dir or below it
	addGunicorn bool           // no web process and no WSGI server: GunicornPin is added
	procfile    process.Procfile
	topProcfile bool               // the app directory has none: the top's (readProcfile)
	env         map[string]string  // environment of every app process and build command
	port        int                // the new release's web port
	portMoved   bool               // the release left a port another program holds (ports.go)
	newWatcher  string             // the new release's web watcher ("" without web)
	newWatchers []string           // all the new release's watchers, web first
	others      []*otherType       // its other process types, started (processes.go)
	siteWritten bool               // nginx's site names the new release (switch.go)
	committed   bool               // the new release is recorded as current: the commit point
	domains     []string           // custom domains (domains:add): server_name and ALLOWED_HOSTS
	config      map[string]string  // the app's config vars, snapshot into the release
	reused      *conductor.Release // the kept release a rollback or restart runs again
	started     time.Time
	redis       *conductor.Redis   // redis:create's server: REDIS_URL (redis.go)
	timeouts    conductor.Timeouts // apps:set timeout.* (timeouts.go)
	runner      *manageRunner      // the interpreter collectstatic left for migrate (manage.go)
	// overlapStarted: collectstatic and migrate run while the new
	// processes start, since then (overlap.go).
	overlapStarted time.Time
	// webStarted: the start step's web part is done; early, the web
	// processes started beside collectstatic (speculative.go).
	webStarted, early bool
	// othersEarly: the other process types started beside collectstatic,
	// on a copy of the serving release's static files (staged.go).
	othersEarly bool
	// capture also gets the output of the commands cmd runs, while set
	// (the install's, for pybuild's hint).
	capture io.Writer
	// toldLive: the pusher was told the deploy succeeded (tellLive).
	toldLive bool

	// health is how check tests the web process (app.json's healthchecks,
	// CONDUCTOR_HEALTHCHECK), read by detect.
	health *pybuild.WebChecks
	// uptime is how long each other process type must stay up (uptimes);
	// uptimeAsked, the types whose uptime app.json or the config var set.
	uptime      map[string]time.Duration
	uptimeAsked map[string]bool
	// cron is app.json's scheduled jobs, read and validated by detect and
	// recorded with the release.
	cron []conductor.CronEntry
}

func (d *deployment) run(ctx context.Context) error {
	d.started = time.Now()
	if err := d.loadTimeouts(ctx); err != nil {
		return err
	}
	steps := pipeline
	switch d.job.Kind {
	case queue.KindRollback:
		steps = rollbackPipeline
	case queue.KindRestart:
		steps = restartPipeline
	}
	for _, s := range steps {
		if housekeeping[s.name] && d.committed && !d.toldLive {
			d.tellLive(ctx)
		}
		pauseAt("step:" + s.name) // testhook.go
		if s.header != "" {
			d.log.Printf("-----> %s", s.header)
		}
		start := time.Now()
		sctx := ctx
		if d.committed {
			sctx = context.WithoutCancel(ctx) // a cancel cannot undo a live release
		}
		if err := d.runStep(sctx, s); err != nil {
			if d.committed {
				// The new release is live and recorded: what is left is
				// housekeeping, which the next deploy and the start-up
				// reconcile do again. It never fails the deploy.
				d.log.Printf("       Warning: %s: %v (done again at the next deploy)", s.name, conductor.ErrorMessage(err))
				slog.Warn("housekeeping after the switch failed", "app", d.app.Name, "deploy", d.job.ID, "step", s.name, "err", err)
				continue
			}
			d.cleanup(context.WithoutCancel(ctx))
			return fmt.Errorf("%s: %w", s.name, err)
		}
		took := time.Since(start)
		slog.Debug("step done", "app", d.app.Name, "deploy", d.job.ID, "step", s.name, "took", took)
		if d.b.Observe != nil {
			d.b.Observe.StepDone(s.name, took)
		}
	}
	pauseAt("step:end")
	if !d.toldLive {
		d.log.Printf("-----> Deployed %s at %s (release %s)", d.app.Name, d.url(), d.job.ID)
	}
	return nil
}

// tellLive ends the push of a deploy past its commit point: its last line,
// and the job's outcome, before the housekeeping steps (LogWriter.Live).
func (d *deployment) tellLive(ctx context.Context) {
	d.toldLive = true
	d.log.Printf("-----> Deployed %s at %s (release %s)", d.app.Name, d.url(), d.job.ID)
	if err := d.log.Live(context.WithoutCancel(ctx)); err != nil {
		// The pusher learns it at the job's end instead.
		slog.Warn("tell the pusher the release is live", "app", d.app.Name, "deploy", d.job.ID, "err", err)
	}
}

// cleanup undoes what a failed deploy started, never touching the serving
// release.
func (d *deployment) cleanup(ctx context.Context) {
	d.stopRunner()
	if d.committed {
		return
	}
	if d.siteWritten && !d.restoreSite(ctx) { // switch.go
		// nginx may still route to the new release: it keeps running
		// until the next deploy or start-up reconcile puts things right.
		return
	}
	for i := len(d.newWatchers) - 1; i >= 0; i-- {
		if w := d.newWatchers[i]; d.removeWatcher(ctx, w) != nil {
			slog.Warn("could not remove a failed deploy's watcher", "app", d.app.Name, "watcher", w)
		}
	}
	if d.dir != "" { // the job's own: restore links a kept release into a new one
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
	if d.dbs, err = d.b.Databases.Ensure(ctx, d.app, u); err != nil {
		return err
	}
	for _, db := range d.dbs {
		if db.Alias == conductor.DefaultAlias {
			d.log.Printf("       Database: %s", db) // String leaves the password out
		} else {
			d.log.Printf("       Database %s: %s", db.Alias, db)
		}
	}
	if d.redis, err = d.b.appRedis(ctx, d.app); err != nil {
		return err
	}
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
	return d.checkIdlePort(ctx) // another program may hold it (ports.go)
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
	if d.migrations, err = extractTarGz(r, d.dir, d.user.UID, d.user.GID); err != nil {
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
		"CONDUCTOR_APP":           d.app.Name,
		"CONDUCTOR_RELEASE":       d.job.ID,
	} {
		if v == "" {
			delete(env, k)
			continue
		}
		env[k] = v
	}
	// DATABASE_URL and <ALIAS>_DATABASE_URL are Conductor's too.
	for _, db := range d.dbs {
		env[conductor.DatabaseURLVar(db.Alias)] = db.URL
	}
	if d.redis != nil {
		env["REDIS_URL"] = d.redis.URL() // Conductor's, like DATABASE_URL
	}
	return env
}

// settings writes local_settings.py and places the config files.
func (d *deployment) settings(ctx context.Context) error {
	l := d.b.Layout
	domains, err := d.b.Store.Domains(ctx, d.app.ID)
	if err != nil {
		return err
	}
	d.domains = domains
	if err := provision.WriteSettings(provision.Settings{
		App:        d.app.Name,
		Release:    d.job.ID,
		Module:     d.build.Settings,
		SecretKey:  d.app.SecretKey,
		Hosts:      append([]string{d.host(), "127.0.0.1", "localhost"}, d.domains...),
		DBs:        d.dbs,
		StaticRoot: filepath.Join(d.dir, "staticfiles"),
		MediaRoot:  l.MediaDir(d.app.Name),
	}, d.dir, d.build.AppDir, d.user); err != nil {
		return err
	}
	return d.placeConfigFiles(ctx) // config:file (configfiles.go)
}

// release runs the Procfile's release command, or Django's migrate.
func (d *deployment) release(ctx context.Context) error {
	if cmd, ok := d.procfile["release"]; ok {
		// As every Procfile command: bash -c, as the app user.
		if err := process.ValidateCommand(cmd); err != nil {
			return failf("release command: %v", err)
		}
		if err := d.cmd(ctx, d.appDir, process.Shell, "-c", cmd); err != nil {
			return failf("release command failed: %v", err)
		}
		return nil
	}
	if d.overlapping() { // nothing to apply: it runs while the processes start (overlap.go)
		return d.migrateAfterCollectstatic()
	}
	if d.runner != nil { // collectstatic's interpreter (manage.go)
		return d.migrateInRunner(ctx)
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
	if d.oneInterpreter() { // and migrate after it (manage.go)
		return d.collectstaticThenMigrate(ctx)
	}
	return d.cmdCollectstatic(ctx)
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
	src, err := d.keptFiles(ctx, rel)
	if err != nil {
		return err
	}
	if src == "" {
		return failf("release v%d was pruned (only the last %d releases are kept)", rel.Number, d.b.Keep)
	}
	d.reused, d.venv, d.migrations = rel, rel.Venv, rel.Migrations
	if err := d.linkRelease(ctx, rel, src); err != nil {
		return err
	}
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

// keptFiles is the directory holding rel's files: its own, or, once that
// was pruned, the newest kept one of a release of the same revision on the
// same virtualenv (a restart or rollback of it, whose files are rel's
// linked); "" when there is none. Rolling back and forth between two
// releases thus keeps working however many times it is done.
func (d *deployment) keptFiles(ctx context.Context, rel *conductor.Release) (string, error) {
	if _, err := os.Lstat(rel.Dir); err == nil {
		return rel.Dir, nil
	}
	releases, err := d.b.Store.ListReleases(ctx, d.app.ID)
	if err != nil {
		return "", err
	}
	for _, r := range releases { // newest first
		if r.Rev != rel.Rev || r.Venv != rel.Venv || r.Dir == rel.Dir {
			continue
		}
		if fi, err := os.Lstat(r.Dir); err == nil && fi.IsDir() {
			return r.Dir, nil
		}
	}
	return "", nil
}

// linkRelease gives a rollback or restart a release directory of its own:
// the kept release's files (in src, keptFiles) hard-linked into a new one,
// as the app user (links to its own files, like stageStatic's). settings
// then replaces local_settings.py and the config files there, never in the
// kept release, so a restart that fails leaves the serving release's files
// as they were, and a gunicorn worker it respawns later reads its own
// settings, not the failed restart's.
func (d *deployment) linkRelease(ctx context.Context, rel *conductor.Release, src string) error {
	d.dir = d.b.Layout.ReleaseDir(d.app.Name, d.job.ID)
	if err := os.RemoveAll(d.dir); err != nil { // a redelivered job's leftovers
		return err
	}
	if err := os.Mkdir(d.dir, 0o711); err != nil { // as unpack makes it
		return err
	}
	if err := os.Chmod(d.dir, 0o711); err != nil {
		return err
	}
	if err := d.user.Chown(d.dir); err != nil {
		return err
	}
	cp, err := exec.LookPath("cp") // conductor's PATH, not the app's
	if err != nil {
		return err
	}
	if err := d.cmd(ctx, d.dir, cp, "-R", "-l", "-P", "--preserve=mode,timestamps", "--", src+"/.", d.dir); err != nil {
		return failf("copying v%d's files into the new release failed: %v", rel.Number, err)
	}
	// The config files Conductor placed there came along: settings
	// removes those the app no longer has (placeConfigFiles).
	placed, err := d.b.Store.PlacedConfigFiles(ctx, d.app.ID, src)
	if err != nil || len(placed) == 0 {
		return err
	}
	return d.b.Store.SetPlacedConfigFiles(ctx, d.app.ID, d.dir, placed)
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
	var out io.Writer = w
	if d.capture != nil {
		out = io.MultiWriter(w, d.capture)
	}
	err := d.b.runInGroup(cmd, d.app.Name, out)
	w.Flush()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("%s exited with status %d", filepath.Base(name), exit.ExitCode())
	}
	return err
}
