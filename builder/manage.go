package builder

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hasadna/conductor/internal/safefs"
	"github.com/hasadna/conductor/process"
)

// One Python interpreter for collectstatic and migrate: each `python
// manage.py …` imports Django and the project's settings and apps again,
// about 0.2 s here. When Conductor runs both commands itself (no release:
// in the Procfile, no bin/post_compile between them), the collectstatic
// step starts manageRunnerPy, which runs manage.py with
// execute_from_command_line standing in for both commands: collectstatic,
// then a line with a per-deploy token, then it waits on its stdin. The
// release step tells it to go on, and it runs migrate in the same
// interpreter. Each command's output stays under its step's header, each
// step keeps its time bound, and a failure names its command, as with two
// processes. The script is an argument (python -c), not a file: nothing the
// app could change, and nothing root writes.
//
// Before collectstatic runs, once Django is set up, the interpreter says
// on a token line whether migrate has anything to apply (migrate's own
// plan). With nothing to apply, no schema changes: the two commands run
// on while the new processes start and boot (overlap.go).

// manageRunnerPy runs as the app user, in the app directory, with the
// build environment; argv[1] is the token. Its token lines are the token,
// a space and "plan none" or "plan pending" (before collectstatic; no such
// line when the project's collectstatic has an execute of its own), then
// "done" (collectstatic succeeded). It exits 86 when manage.py never
// calls execute_from_command_line (a project that drives Django its own
// way, having run whatever it runs for "manage.py collectstatic"): then
// the commands run as separate processes.
//
// With argv[2] and argv[3] (the release's STATIC_ROOT, holding a copy of
// the serving release's collected files, and a directory beside it),
// collectstatic writes into the second, and the first takes its place
// only if the two differ (staged.go): a "static same" or "static changed"
// line comes before "done". When it cannot point collectstatic there (a
// storage that is not STATIC_ROOT on this disk, or one the project's code
// already opened), it says "static unstaged" before the plan line, waits
// for a "go" line on its stdin, removes the copy, and collectstatic runs as
// it would without one.
const manageRunnerPy = `import filecmp, os, runpy, shutil, sys
token = sys.argv[1]
final, staging = (sys.argv[2], sys.argv[3]) if len(sys.argv) > 3 else (None, None)
sys.path[0] = os.getcwd()  # as "python manage.py" has it
import django.core.management as management
from django.core.management.base import BaseCommand
real = management.execute_from_command_line
called = []
def say(state):
    sys.stdout.flush()
    sys.stderr.flush()
    sys.stdout.write("\n" + token + " " + state + "\n")
    sys.stdout.flush()
def migrations_pending():
    # What "migrate --noinput" would apply (its own plan, the default
    # database); anything unsure counts as pending, for migrate to report.
    try:
        if management.get_commands().get("migrate") != "django.core":
            return True  # a migrate of the project's own (django-tenants…)
        from django.db import DEFAULT_DB_ALIAS, connections
        from django.db.migrations.executor import MigrationExecutor
        executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
        if executor.loader.detect_conflicts():
            return True
        return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    except Exception:
        return True
staged = []
def stage():
    # Point collectstatic at staging. If it would write elsewhere, say so,
    # wait until the early workers have stopped, and drop the copy.
    from django.conf import settings
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.utils.functional import empty
    ok, root = False, None
    try:
        if staticfiles_storage._wrapped is empty and os.path.realpath(settings.STATIC_ROOT or "") == os.path.realpath(final):
            root = settings.STATIC_ROOT
            settings.STATIC_ROOT = staging
            ok = os.path.abspath(getattr(staticfiles_storage, "location", None) or "") == staging
    except Exception:
        ok = False  # the storage's set-up raised: collectstatic will say why
    if ok:
        staged.append(True)
        return
    if root is not None:
        settings.STATIC_ROOT = root
    say("static unstaged")
    if sys.stdin.readline().strip() != "go":
        os._exit(0)  # the deploy stopped
    shutil.rmtree(final, ignore_errors=True)
def same_tree(a, b):
    # The same names, kinds, link targets and contents, all the way down;
    # a directory that is not there holds nothing.
    try:
        ea, eb = entries(a), entries(b)
    except OSError:
        return False
    if ea.keys() != eb.keys():
        return False
    for name, x in ea.items():
        y = eb[name]
        if x.is_symlink() or y.is_symlink():
            if not (x.is_symlink() and y.is_symlink() and os.readlink(x.path) == os.readlink(y.path)):
                return False
        elif x.is_dir():
            if not (y.is_dir() and same_tree(x.path, y.path)):
                return False
        elif not (x.is_file() and y.is_file() and filecmp.cmp(x.path, y.path, shallow=False)):
            return False
    return True
def entries(d):
    try:
        return {e.name: e for e in os.scandir(d)}
    except FileNotFoundError:  # no static files: collectstatic made no directory
        return {}
def install_staged():
    # What collectstatic wrote replaces the copy only if it differs.
    if same_tree(staging, final):
        shutil.rmtree(staging, ignore_errors=True)
        return "static same"
    old = staging + ".old"
    if os.path.lexists(final):
        os.rename(final, old)
    if os.path.lexists(staging):
        os.rename(staging, final)
    shutil.rmtree(old, ignore_errors=True)
    return "static changed"
plain_execute = BaseCommand.execute
def execute(self, *args, **options):
    # collectstatic's, with Django set up: say migrate's plan first.
    BaseCommand.execute = plain_execute
    say("plan pending" if migrations_pending() else "plan none")
    return plain_execute(self, *args, **options)
def both(argv=None):
    if called:  # manage.py calling it again: as it asks
        return real(argv)
    called.append(True)
    BaseCommand.execute = execute
    real(["manage.py", "collectstatic", "--noinput", "-v", "1"])
    BaseCommand.execute = plain_execute
    if staged:
        say(install_staged())
    say("done")
    if sys.stdin.readline().strip() != "migrate":
        os._exit(0)  # the deploy stopped before its release step
    argv = ["manage.py", "migrate", "--noinput"]
    sys.argv = argv  # for code that looks at it while migrate runs
    management.ManagementUtility(argv).fetch_command("migrate").run_from_argv(argv)
management.execute_from_command_line = both
if staging:  # right after Django's setup, whoever sets it up
    import django
    real_setup = django.setup
    def setup(*args, **kwargs):
        django.setup = real_setup
        real_setup(*args, **kwargs)
        stage()
    django.setup = setup
sys.argv = ["manage.py", "collectstatic", "--noinput", "-v", "1"]
runpy.run_path(os.path.abspath("manage.py"), run_name="__main__")
if not called:
    sys.stderr.write("conductor: manage.py did not call execute_from_command_line\n")
    sys.exit(86)
`

// exitNotRunner is manageRunnerPy's exit status when manage.py is not one
// it can drive.
const exitNotRunner = 86

// manageRunner is the running interpreter between the two steps.
type manageRunner struct {
	stdin  *os.File
	done   chan error    // the process's end (buffered)
	exited chan struct{} // closed once done has it
	cancel context.CancelFunc

	// Set from its token lines (onToken), in order; each field is read
	// once the channel after it is closed.
	pending  bool          // migrate has migrations to apply
	unstaged chan struct{} // collectstatic cannot be staged (staged.go)
	planned  chan struct{} // the plan is known (or assumed pending)
	ready    chan struct{} // collectstatic succeeded
	// held is its output from the plan on, when it runs while the new
	// processes start (overlap): logged by the check step.
	held    bytes.Buffer
	holding bool
	askErr  error // telling it to run migrate failed (overlap)
	// staticChanged: collectstatic, staged, wrote something other than
	// the copy it replaced (staged.go); read once ready is closed.
	staticChanged bool
	exitCode      int // its exit status, set before done has its end
}

// onToken follows the interpreter's token lines; a non-nil writer is
// where its output goes from then on.
func (r *manageRunner) onToken(state string) io.Writer {
	plan := func(pending bool) {
		select {
		case <-r.planned:
		default:
			r.pending = pending
			r.holding = !pending && overlapFits
			close(r.planned)
		}
	}
	switch state {
	case "plan none", "plan pending":
		plan(state == "plan pending")
		if r.holding {
			return &r.held
		}
	case "static changed":
		r.staticChanged = true
	case "static unstaged":
		select {
		case <-r.unstaged:
		default:
			close(r.unstaged)
		}
	case "done":
		plan(true) // no plan line: its collectstatic has an execute of its own
		select {
		case <-r.ready:
		default:
			close(r.ready)
		}
	}
	return nil
}

// oneInterpreter tells whether collectstatic and migrate can share an
// interpreter: Conductor runs both (no release: command of the app's own)
// and nothing of the app's runs between them (no bin/post_compile).
func (d *deployment) oneInterpreter() bool {
	if !pipelineFits {
		return false
	}
	if _, ok := d.procfile["release"]; ok {
		return false
	}
	if d.hasHook("post_compile") {
		return false
	}
	st, err := safefs.Lstat(d.dir, path.Join(d.build.AppDir, "manage.py"))
	return err == nil && st.Mode&0o170000 == 0o100000
}

// pipelineFits: the deploy pipeline runs the release phase right after
// collectstatic (set in init: the pipeline's steps refer to this file).
var pipelineFits bool

func init() { pipelineFits = adjacent(pipeline, "collectstatic", "release", "post_compile") }

// adjacent tells whether step b comes after step a in steps with nothing
// between them but the steps named in skip (which oneInterpreter makes
// sure run nothing). Another step there could run a build command, and
// each build command starts by killing what is left in the app's build
// group (runInGroup), the waiting interpreter included.
func adjacent(steps []step, a, b string, skip ...string) bool {
	ia, ib := -1, -1
	for i, s := range steps {
		switch s.name {
		case a:
			ia = i
		case b:
			ib = i
		}
	}
	if ia < 0 || ib <= ia {
		return false
	}
	for _, s := range steps[ia+1 : ib] {
		if !slices.Contains(skip, s.name) {
			return false
		}
	}
	return true
}

// hasHook tells whether hook(name) would run something: the same lookup,
// an entry of any type counts.
func (d *deployment) hasHook(name string) bool {
	for _, sub := range []string{d.build.AppDir, "."} {
		if _, err := safefs.Lstat(d.dir, path.Join(sub, "bin", name)); err == nil {
			return true
		}
	}
	return false
}

// collectstaticThenMigrate is the collectstatic step with one interpreter:
// it returns once collectstatic has succeeded, leaving the interpreter
// waiting for the release step (migrateInRunner), or, when migrate has
// nothing to apply, as soon as the interpreter said so, leaving
// collectstatic running (overlap.go).
func (d *deployment) collectstaticThenMigrate(ctx context.Context) error {
	staged := d.stageStatic(ctx) // staged.go
	r, err := d.startRunner(staged)
	if err != nil {
		return err
	}
	if d.startEarly() { // speculative.go
		if err := d.startEarlyProcesses(ctx, staged); err != nil {
			r.stop()
			return err
		}
	}
	planned, unstaged := r.planned, r.unstaged
	for {
		select {
		case <-unstaged:
			unstaged = nil
			if err := d.stopEarlyOthers(ctx, "collectstatic cannot write beside STATIC_ROOT"); err != nil {
				r.stop()
				return err
			}
			// A write that fails means the interpreter has ended: done says why.
			_, _ = io.WriteString(r.stdin, "go\n")
		case <-planned:
			if r.holding {
				d.runner = r
				d.overlapStarted = time.Now()
				d.log.Printf("       No migrations to apply: collectstatic and migrate run while the new processes start")
				return nil
			}
			planned = nil // wait for collectstatic's end
			if err := d.stopEarly(ctx, "Migrations to apply"); err != nil {
				r.stop()
				return err
			}
		case <-r.ready:
			d.runner = r
			return d.stopEarly(ctx, "migrate's plan unknown")
		case err := <-r.done:
			if r.exitCode == exitNotRunner {
				if err := d.stopEarly(ctx, "migrate runs as a process of its own"); err != nil {
					return err
				}
				if staged {
					if err := d.unstage(); err != nil {
						return err
					}
				}
				return d.cmdCollectstatic(ctx)
			}
			if err == nil {
				err = errors.New("python exited before collectstatic ended")
			}
			return failf("collectstatic failed: %v", err)
		case <-ctx.Done():
			r.stop()
			return ctx.Err()
		}
	}
}

// cmdCollectstatic runs collectstatic as a process of its own.
func (d *deployment) cmdCollectstatic(ctx context.Context) error {
	if err := d.cmd(ctx, d.appDir, "python", "manage.py", "collectstatic", "--noinput", "-v", "1"); err != nil {
		return failf("collectstatic failed: %v", err)
	}
	return nil
}

// migrateInRunner is the release step's migrate in the interpreter the
// collectstatic step left waiting.
func (d *deployment) migrateInRunner(ctx context.Context) error {
	r := d.runner
	d.runner = nil
	_, werr := io.WriteString(r.stdin, "migrate\n")
	r.stdin.Close()
	select {
	case err := <-r.done:
		if err == nil && werr != nil {
			err = werr
		}
		if err != nil {
			return failf("migrate failed: %v", err)
		}
		return nil
	case <-ctx.Done():
		r.stop()
		return ctx.Err()
	}
}

// stopRunner ends an interpreter a failed deploy left waiting.
func (d *deployment) stopRunner() {
	if d.runner != nil {
		d.runner.stop()
		d.runner = nil
	}
}

func (r *manageRunner) stop() {
	r.stdin.Close() // it exits at EOF; the cancel kills its group too
	r.cancel()
	<-r.done
}

// startRunner starts manageRunnerPy as the app user, like cmd, with its
// output indented into the job's log (or held: onToken). Its context is
// its own: it outlives the collectstatic step, and each step ends it on
// its own context's end.
func (d *deployment) startRunner(staged bool) (*manageRunner, error) {
	var t [16]byte
	_, _ = rand.Read(t[:])
	token := "conductor-runner-" + hex.EncodeToString(t[:])
	python := "python"
	if p, err := process.LookPath(python, d.env["PATH"]); err == nil {
		python = p
	}
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{"-c", manageRunnerPy, token}
	if staged {
		args = append(args, d.staticRoot(), d.staticStaging())
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = d.appDir
	cmd.Env = process.Environ(d.env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(d.user.UID), Gid: uint32(d.user.GID), Groups: []uint32{}}
	}
	cmd.WaitDelay = 5 * time.Second
	pr, pw, err := os.Pipe()
	if err != nil {
		cancel()
		return nil, err
	}
	cmd.Stdin = pr
	r := &manageRunner{stdin: pw, planned: make(chan struct{}), ready: make(chan struct{}), unstaged: make(chan struct{}),
		done: make(chan error, 1), exited: make(chan struct{}), cancel: cancel}
	tw := &tokenWriter{next: &indentWriter{w: d.log}, token: []byte(token), onToken: r.onToken}
	go func() {
		err := d.b.runInGroup(cmd, d.app.Name, tw)
		tw.Flush()
		pr.Close()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			r.exitCode = exit.ExitCode()
			err = fmt.Errorf("%s exited with status %d", filepath.Base(python), exit.ExitCode())
		}
		r.done <- err
		close(r.exited)
		cancel()
	}()
	return r, nil
}

// tokenWriter passes whole lines to next, indented, except token lines
// (the token, a space and a state), which go to onToken instead; a writer
// onToken returns takes the lines after that one.
type tokenWriter struct {
	next    *indentWriter
	token   []byte
	onToken func(state string) io.Writer
	mu      sync.Mutex
	buf     []byte
}

func (t *tokenWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	for {
		n := bytes.IndexByte(t.buf, '\n')
		if n < 0 {
			return len(p), nil
		}
		line := t.buf[:n+1]
		t.buf = t.buf[n+1:]
		if state, ok := t.tokenLine(line); ok {
			t.next.Flush()
			if w := t.onToken(state); w != nil {
				t.next = &indentWriter{w: w}
			}
			continue
		}
		_, _ = t.next.Write(line)
	}
}

// tokenLine tells whether line is a token line, and its state.
func (t *tokenWriter) tokenLine(line []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), t.token)
	if !ok {
		return "", false
	}
	if state, ok := bytes.CutPrefix(rest, []byte(" ")); ok {
		return string(state), true
	}
	return "", false
}

// Flush passes on a last line without a newline.
func (t *tokenWriter) Flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = t.next.Write(t.buf)
	t.buf = nil
	t.next.Flush()
}
