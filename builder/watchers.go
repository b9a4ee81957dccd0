package builder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hasadna/conductor/circus"
	"github.com/hasadna/conductor/process"
)

// webWatcher names the web watcher of the release on port
// (process.ReleaseWatcher names every type's).
func webWatcher(app string, port int) string { return process.ReleaseWatcher(app, "web", port) }

// start runs the new release's processes of every type on the idle port's
// names, next to the serving ones: web first (it boots longest), then the
// others (startOthers, processes.go). The old ones stop in retire, once
// the new release is live.
func (d *deployment) start(ctx context.Context) error {
	if !d.webStarted { // unless they started beside collectstatic (speculative.go)
		if err := d.startWeb(ctx); err != nil {
			return err
		}
	}
	return d.startOthers(ctx)
}

// startWeb starts the new release's web processes, on its port.
func (d *deployment) startWeb(ctx context.Context) error {
	// A failed or interrupted deploy may have left watchers on the idle port.
	if err := d.clearPort(ctx); err != nil {
		return err
	}
	d.webStarted = true
	if _, ok := d.procfile["web"]; !ok {
		// A worker-only Procfile (detect adds no default web to one):
		// nothing serves HTTP, so there is nothing to start or check here.
		d.log.Printf("       No web process in the Procfile")
		return nil
	}
	name := webWatcher(d.app.Name, d.port)
	d.newWatchers = append(d.newWatchers, name) // cleanup removes it, even half added
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
	cmd := d.procfile[typ]
	if err := process.ValidateCommand(cmd); err != nil {
		return failf("process %s: %v", typ, err)
	}
	spec := d.specPath(name)
	limits, err := d.b.typeLimits(ctx, d.app, typ) // ps:limit
	if err != nil {
		return err
	}
	// As root, circus starts run-process as root: it puts itself in the
	// watcher's cgroup with the type's limits, then becomes the app user.
	if err := process.WriteSpec(spec, &process.Spec{Type: typ, Argv: process.ShellArgv(cmd), Command: cmd, Env: env, Dir: d.appDir,
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
