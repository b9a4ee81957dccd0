package builder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hasadna/conductor/internal/safefs"
)

// A code-only redeploy's other process types (a worker) start beside
// collectstatic too, with the web processes (speculative.go), on a copy of
// the serving release's collected static files.
//
// A worker takes jobs at once, and a job may render {% static %}: Django's
// manifest storage reads staticfiles.json once per process, so a worker
// that started before collectstatic ended would keep whatever it found.
// So the new release's STATIC_ROOT starts as a copy of the serving
// release's (hard links, made by the app user: nothing of root's follows
// what the app's user planted there), collectstatic writes into a
// directory beside it (manageRunnerPy's staging), and once it has ended
// the interpreter compares the two:
//
//   - the same names and bytes: the copy stays, and what the early
//     processes read was the release's final static files all along;
//   - anything different: collectstatic's output takes the copy's place
//     (a rename), and every process that started beside collectstatic
//     starts again in the start step, as it would have without this.
//
// Until then an early worker sees the serving release's static files,
// which is what the serving release's worker, running on meanwhile, sees
// too. When collectstatic cannot be pointed at the staging directory (a
// storage that is not STATIC_ROOT on this disk, or one the project's code
// opened while Django was set up), the interpreter says so before it
// writes anything: the early other processes stop (stopEarlyOthers), the
// interpreter removes the copy, and collectstatic runs as without one; the
// other types start after it.

// staticRoot is the release's STATIC_ROOT, as local_settings.py sets it;
// staticStaging, where a staged collectstatic writes.
func (d *deployment) staticRoot() string    { return filepath.Join(d.dir, "staticfiles") }
func (d *deployment) staticStaging() string { return filepath.Join(d.dir, "staticfiles.conductor-new") }

// stageStatic copies the serving release's collected static files into
// the new release's STATIC_ROOT when the other process types are to start
// beside collectstatic, and tells whether it did.
func (d *deployment) stageStatic(ctx context.Context) bool {
	if !d.startEarly() || len(d.otherTypes()) == 0 {
		return false
	}
	for _, dir := range []string{d.staticStaging(), d.staticStaging() + ".old"} {
		if err := os.RemoveAll(dir); err != nil {
			return false
		}
	}
	// What the serving release's collectstatic wrote there: a directory,
	// not whatever else its user put there, or nothing at all (an app
	// without static files, whose collectstatic made no directory).
	st, err := safefs.Lstat(d.previous.Dir, "staticfiles")
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil || st.Mode&0o170000 != 0o040000 {
		return false
	}
	// As the app user: links to its own files, into its own release.
	cp, err := exec.LookPath("cp") // conductor's PATH, not the app's
	if err != nil {
		return false
	}
	if err := d.cmd(ctx, d.dir, cp, "-R", "-l", "-P", "--preserve=mode,timestamps",
		filepath.Join(d.previous.Dir, "staticfiles"), d.staticRoot()); err != nil {
		d.log.Printf("       Copying v%d's static files failed (%v): the other processes start after collectstatic", d.previous.Number, err)
		_ = os.RemoveAll(d.staticRoot())
		return false
	}
	return true
}

// unstage undoes stageStatic, for a collectstatic that runs as a process
// of its own.
func (d *deployment) unstage() error {
	for _, dir := range []string{d.staticRoot(), d.staticStaging(), d.staticStaging() + ".old"} {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
	}
	return nil
}

// stopEarlyOthers stops the other process types that started beside
// collectstatic, for why: they start after it, in the start step.
func (d *deployment) stopEarlyOthers(ctx context.Context, why string) error {
	if !d.othersEarly {
		return nil
	}
	d.log.Printf("       %s: the %s processes stop, and start after collectstatic", why, strings.Join(d.otherTypes(), ", "))
	for _, o := range d.others {
		if err := d.removeWatcher(ctx, o.watcher); err != nil {
			return err
		}
		d.newWatchers = slices.DeleteFunc(d.newWatchers, func(w string) bool { return w == o.watcher })
	}
	d.others, d.othersEarly = nil, false
	return nil
}

// restartIfStaticChanged starts again, in the start step, the processes
// that started beside a staged collectstatic whose output differed from
// the serving release's.
func (d *deployment) restartIfStaticChanged(ctx context.Context) error {
	if !d.othersEarly || d.runner == nil || !d.runner.staticChanged {
		return nil
	}
	if err := d.stopEarly(ctx, fmt.Sprintf("Static files differ from v%d's", d.previous.Number)); err != nil {
		return err
	}
	if err := d.startWeb(ctx); err != nil {
		return err
	}
	return d.startOthersNow(ctx)
}
