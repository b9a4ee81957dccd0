package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// settingsProbe, appended to the example's settings, logs each import of
// the settings: the process and the manage.py command it runs.
const settingsProbe = `
import os as _os, sys as _sys
with open(BASE_DIR / "settings-imports.log", "a") as _f:
    _f.write("%d %s\n" % (_os.getpid(), (_sys.argv[1:2] or ["-"])[0]))
`

// TestOneInterpreterForCollectstaticAndMigrate: with no release: command
// and no bin/post_compile, collectstatic and migrate run in one Python
// interpreter (the settings are imported once for both), with each
// command's output under its own step header; a failing collectstatic
// names collectstatic and migrate does not run. With bin/post_compile
// they are two processes again, and the hook runs between them. With no
// migration to apply, collectstatic and migrate run while the new
// processes start and the check waits for them: a failure still fails the push before the switch.
func TestOneInterpreterForCollectstaticAndMigrate(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	work := in.WorkTree("hello")
	settings := filepath.Join(work, "hello", "settings.py")
	orig, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, settings, string(orig)+settingsProbe)
	in.Commit(work, "probe")
	r := in.Push(work, "one", "main")
	if r.Code != 0 {
		t.Fatalf("push failed: %s", r)
	}
	inOrder(t, r.Stderr, "-----> Collecting static files", "static file copied", "-----> Running the release phase",
		"Applying greetings.0001_initial... OK", "-----> Starting processes")
	if cmds := manageImports(t, in, "one"); strings.Join(cmds, ",") != "collectstatic" {
		t.Errorf("manage.py commands that imported the settings: %q, want one interpreter (collectstatic only)", cmds)
	}

	// A failing collectstatic fails the push as collectstatic; no migrate.
	writeFile(t, settings, string(orig)+settingsProbe+`
STORAGES = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "no_such_module.Storage"}}
`)
	setVersion(t, work, "v2")
	in.Commit(work, "broken storage")
	r = in.Push(work, "one", "main")
	if r.Code == 0 {
		t.Fatalf("push with a broken collectstatic succeeded: %s", r)
	}
	// No migration to apply: it ran while the new processes started, and
	// failed the push before the switch all the same.
	if !strings.Contains(r.Stderr, "collectstatic failed") || strings.Contains(r.Stderr, "migrate failed") ||
		strings.Contains(r.Stderr, "Switching traffic") || !strings.Contains(r.Stderr, "no_such_module") {
		t.Errorf("failed push output should name collectstatic only:\n%s", r.Stderr)
	}
	if code, body, _ := in.Get("one", "/"); code != 200 || !strings.Contains(body, "Hello from Conductor") {
		t.Errorf("after the failed collectstatic: GET / = %d %q, want the first release serving", code, body)
	}

	// bin/post_compile runs between them: two processes.
	writeFile(t, settings, string(orig)+settingsProbe)
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(work, "bin", "post_compile"), "echo post-compile-ran\n")
	setVersion(t, work, "v3")
	in.Commit(work, "post_compile")
	r = in.Push(work, "one", "main")
	if r.Code != 0 {
		t.Fatalf("push with bin/post_compile failed: %s", r)
	}
	inOrder(t, r.Stderr, "-----> Collecting static files", "static file", "post-compile-ran", "-----> Running the release phase")
	if cmds := manageImports(t, in, "one"); strings.Join(cmds, ",") != "collectstatic,migrate" {
		t.Errorf("manage.py commands that imported the settings: %q, want collectstatic then migrate", cmds)
	}

	// No migration to apply: collectstatic and migrate run while the new
	// processes start, and the check waits for them, their output under
	// the check.
	if err := os.RemoveAll(filepath.Join(work, "bin")); err != nil {
		t.Fatal(err)
	}
	// A worker starts with the web process, beside collectstatic, on a
	// copy of the serving release's collected static files (staged.go): it
	// lists the static files it finds.
	procfile := "web: gunicorn hello.wsgi --log-file -\n" +
		"worker: echo worker-saw $(ls staticfiles | tr '\\n' ' '); exec sleep 600\n"
	writeFile(t, filepath.Join(work, "Procfile"), procfile)
	setVersion(t, work, "v4")
	in.Commit(work, "no migrations")
	r = in.Push(work, "one", "main")
	if r.Code != 0 {
		t.Fatalf("push without migrations failed: %s", r)
	}
	// Its migration files are v3's: the processes boot beside
	// collectstatic, before migrate's plan is known (speculative.go).
	inOrder(t, r.Stderr, "-----> Collecting static files", "the web and worker processes boot beside collectstatic",
		"web: gunicorn", "worker: echo",
		"No migrations to apply: collectstatic and migrate run while the new processes start",
		"-----> Running the release phase", "-----> Starting processes", "-----> Checking the new release",
		"collectstatic and migrate, run while the processes started", "static file", "No migrations to apply.",
		"-----> Switching traffic")
	if strings.Contains(r.Stderr, "Static files differ") {
		t.Errorf("the same static files counted as changed:\n%s", r.Stderr)
	}
	// The web check may pass before their output is logged, never before
	// the check step.
	inOrder(t, r.Stderr, "-----> Checking the new release", "GET / answered 200", "-----> Switching traffic")
	if cmds := manageImports(t, in, "one"); strings.Join(cmds, ",") != "collectstatic" {
		t.Errorf("manage.py commands that imported the settings: %q, want one interpreter (collectstatic only)", cmds)
	}
	if code, body, _ := in.Get("one", "/"); code != 200 || !strings.Contains(body, "v4") {
		t.Fatalf("after the overlapped migrate: GET / = %d %q, want v4", code, body)
	}
	if logs := in.SSH(in.AdminKey, "logs one --process worker -n 20"); !strings.Contains(logs.Stdout, "worker-saw hello.css") {
		t.Errorf("the worker did not find the collected static files when it started: %s", logs)
	}
	staticServed := func(file, want string) {
		t.Helper()
		if code, body, _ := in.Get("one", "/static/"+file); code != 200 || body != want {
			t.Errorf("GET /static/%s = %d %q, want %q", file, code, body, want)
		}
	}
	staticServed("hello.css", readFile(t, filepath.Join(work, "static", "hello.css")))

	// A new static file: collectstatic's output differs from v4's, so it
	// replaces the copy, and the early processes start again after it.
	writeFile(t, filepath.Join(work, "static", "second.css"), "p { color: teal }\n")
	setVersion(t, work, "v5")
	in.Commit(work, "a new static file")
	r = in.Push(work, "one", "main")
	if r.Code != 0 {
		t.Fatalf("push with a new static file failed: %s", r)
	}
	inOrder(t, r.Stderr, "the web and worker processes boot beside collectstatic", "worker: echo",
		"-----> Starting processes", "Static files differ from v", "'s: the processes that started beside collectstatic stop",
		"web: gunicorn", "worker: echo", "-----> Checking the new release", "-----> Switching traffic")
	staticServed("second.css", "p { color: teal }\n")
	if logs := in.SSH(in.AdminKey, "logs one --process worker -n 20"); !strings.Contains(logs.Stdout, "worker-saw hello.css second.css") {
		t.Errorf("the restarted worker did not find the new static file: %s", logs)
	}

	// Code that opens the static files' storage while Django is set up: it
	// cannot be pointed elsewhere, so the early worker stops, the copy
	// goes, collectstatic runs as without one (in the same interpreter)
	// and the worker starts after it.
	apps := filepath.Join(work, "greetings", "apps.py")
	appsOrig := readFile(t, apps)
	writeFile(t, apps, appsOrig+`
    def ready(self):
        from django.contrib.staticfiles.storage import staticfiles_storage
        staticfiles_storage.location  # opened while Django is set up
`)
	setVersion(t, work, "v6")
	in.Commit(work, "storage opened at setup")
	r = in.Push(work, "one", "main")
	if r.Code != 0 {
		t.Fatalf("push whose settings open the static storage failed: %s", r)
	}
	inOrder(t, r.Stderr, "the web and worker processes boot beside collectstatic", "worker: echo",
		"collectstatic cannot write beside STATIC_ROOT: the worker processes stop, and start after collectstatic",
		"No migrations to apply", "-----> Starting processes", "worker: echo", "-----> Switching traffic")
	if cmds := manageImports(t, in, "one"); strings.Join(cmds, ",") != "collectstatic" {
		t.Errorf("manage.py commands that imported the settings: %q, want one interpreter (collectstatic only)", cmds)
	}
	staticServed("second.css", "p { color: teal }\n")
	if code, body, _ := in.Get("one", "/"); code != 200 || !strings.Contains(body, "v6") {
		t.Fatalf("after the unstaged collectstatic: GET / = %d %q, want v6", code, body)
	}
	if logs := in.SSH(in.AdminKey, "logs one --process worker -n 1"); !strings.Contains(logs.Stdout, "worker-saw hello.css second.css") {
		t.Errorf("the worker started after the unstaged collectstatic did not find the static files: %s", logs)
	}
	writeFile(t, apps, appsOrig)

	// A migrate that fails with nothing to apply (a post_migrate handler
	// raising) fails the push before the switch: v6 serves on, and the
	// new release's watcher is gone.
	in.waitRetired(t, "one") // v5's watchers go in v6's retire, after its push
	watchers := in.appWatchers("one")
	models := filepath.Join(work, "greetings", "models.py")
	writeFile(t, models, readFile(t, models)+`
from django.db.models.signals import post_migrate
def _boom(sender, **kwargs):
    raise RuntimeError("post-migrate-boom")
post_migrate.connect(_boom, dispatch_uid="conductor-test-boom")
`)
	setVersion(t, work, "v7")
	in.Commit(work, "post_migrate raises")
	r = in.Push(work, "one", "main")
	if r.Code == 0 {
		t.Fatalf("push whose migrate fails succeeded: %s", r)
	}
	inOrder(t, r.Stderr, "No migrations to apply: collectstatic and migrate run while", "-----> Starting processes",
		"post-migrate-boom", "migrate failed")
	if strings.Contains(r.Stderr, "-----> Switching traffic") {
		t.Errorf("a failed migrate reached the switch:\n%s", r.Stderr)
	}
	if code, body, _ := in.Get("one", "/"); code != 200 || !strings.Contains(body, "v6") {
		t.Errorf("after the failed migrate: GET / = %d %q, want v6 serving", code, body)
	}
	if got := in.appWatchers("one"); !slices.Equal(got, watchers) {
		t.Errorf("watchers after the failed migrate: %v, want %v as before it", got, watchers)
	}

	// The schema changed by hand (greetings unapplied): the migration
	// files are v6's, so the processes boot early, and stop as soon as the
	// interpreter says migrate has something to apply; they start again
	// after migrate.
	writeFile(t, models, readFile(t, models)[:strings.Index(readFile(t, models), "\nfrom django.db.models.signals import post_migrate")]+"\n")
	if r := in.SSH(in.AdminKey, "run one -- python manage.py migrate greetings zero"); r.Code != 0 {
		t.Fatalf("migrate greetings zero: %s", r)
	}
	setVersion(t, work, "v8")
	in.Commit(work, "schema changed by hand")
	r = in.Push(work, "one", "main")
	if r.Code != 0 {
		t.Fatalf("push after the schema changed by hand failed: %s", r)
	}
	inOrder(t, r.Stderr, "-----> Collecting static files", "the web and worker processes boot beside collectstatic",
		"Migrations to apply: the processes that started beside collectstatic stop", "-----> Running the release phase",
		"Applying greetings.0001_initial... OK", "-----> Starting processes", "web: gunicorn", "worker: echo", "GET / answered 200")
	if code, body, _ := in.Get("one", "/"); code != 200 || !strings.Contains(body, "v8") {
		t.Errorf("after the early processes stopped for migrate: GET / = %d %q, want v8", code, body)
	}

	// A new migration file: the web process waits for migrate's plan.
	writeFile(t, filepath.Join(work, "greetings", "migrations", "0002_noop.py"), `from django.db import migrations

class Migration(migrations.Migration):
    dependencies = [("greetings", "0001_initial")]
    operations = [migrations.RunPython(migrations.RunPython.noop)]
`)
	setVersion(t, work, "v9")
	in.Commit(work, "a new migration")
	r = in.Push(work, "one", "main")
	if r.Code != 0 {
		t.Fatalf("push with a new migration failed: %s", r)
	}
	if strings.Contains(r.Stderr, "boots beside collectstatic") {
		t.Errorf("the web process booted before migrate's plan with a new migration file:\n%s", r.Stderr)
	}
	inOrder(t, r.Stderr, "Applying greetings.0002_noop... OK", "-----> Starting processes", "web: gunicorn", "GET / answered 200")

	// A manage.py that drives Django without execute_from_command_line:
	// the interpreter cannot run both commands, so the early processes
	// stop and collectstatic and migrate run as processes of their own.
	manage := filepath.Join(work, "manage.py")
	writeFile(t, manage, strings.Replace(readFile(t, manage), "execute_from_command_line(sys.argv)",
		"from django.core.management import ManagementUtility\n    ManagementUtility(sys.argv).execute()", 1))
	setVersion(t, work, "v10")
	in.Commit(work, "manage.py without execute_from_command_line")
	r = in.Push(work, "one", "main")
	if r.Code != 0 {
		t.Fatalf("push with a manage.py of its own failed: %s", r)
	}
	inOrder(t, r.Stderr, "the web and worker processes boot beside collectstatic",
		"migrate runs as a process of its own: the processes that started beside collectstatic stop", "static file",
		"-----> Running the release phase", "No migrations to apply.", "-----> Starting processes", "web: gunicorn", "worker: echo",
		"-----> Switching traffic")
	// The interpreter's manage.py ran collectstatic its own way, then the
	// two commands ran as processes.
	if cmds := manageImports(t, in, "one"); strings.Join(cmds, ",") != "collectstatic,collectstatic,migrate" {
		t.Errorf("manage.py commands that imported the settings: %q, want collectstatic (the interpreter's), collectstatic, migrate", cmds)
	}
	if code, body, _ := in.Get("one", "/"); code != 200 || !strings.Contains(body, "v10") {
		t.Errorf("after collectstatic and migrate as processes of their own: GET / = %d %q, want v10", code, body)
	}
}

// manageImports lists the manage.py commands that imported the serving
// release's settings, in order (gunicorn's imports left out).
func manageImports(t *testing.T, in *Instance, app string) []string {
	t.Helper()
	cur, err := os.Readlink(filepath.Join(in.Data, "srv", "projects", app, "current"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(cur, "settings-imports.log"))
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		_, cmd, _ := strings.Cut(line, " ")
		if cmd == "collectstatic" || cmd == "migrate" {
			cmds = append(cmds, cmd)
		}
	}
	return cmds
}

// inOrder checks that each of want appears in out after the one before.
func inOrder(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("output lacks %q after the lines before it:\n%s", w, out)
			return
		}
		rest = rest[i+len(w):]
	}
}
