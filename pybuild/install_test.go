package pybuild

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestInstaller(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		kind     Kind
		files_   []string // Install.Files
		packages []string
		wsgi     string
		commands [][]string
		wantErr  []string
	}{
		{name: "requirements", files: map[string]string{"requirements.txt": "Django==5.2.19\ngunicorn==23.0.0\n"},
			kind: KindRequirements, files_: []string{"requirements.txt"}, packages: []string{"django", "gunicorn"}, wsgi: "gunicorn",
			commands: [][]string{{"uv", "pip", "install", "-r", "requirements.txt"}}},
		{name: "wagtail requirements/ with -r and -c", files: map[string]string{
			"requirements.txt":                  "# production\n-r requirements/production.txt\n",
			"requirements/production.txt":       "-r base.txt\ngunicorn==23.0.0 \\\n    --hash=sha256:00\n",
			"requirements/base.txt":             "--constraint constraints.txt\nDjango>=6.0,<6.1  # the framework\nwagtail[search]~=7.0 ; python_version >= '3.12'\n",
			"requirements/constraints.txt":      "sqlparse==0.6.1\n-r more-constraints.txt\n",
			"requirements/more-constraints.txt": "asgiref==3.13.0\n",
			"requirements/dev.txt":              "-r base.txt\ndjango-debug-toolbar\n",
		}, kind: KindRequirements,
			files_:   []string{"requirements.txt", "requirements/production.txt", "requirements/base.txt", "requirements/constraints.txt", "requirements/more-constraints.txt"},
			packages: []string{"django", "gunicorn", "wagtail"}, wsgi: "gunicorn"},
		{name: "include forms and a cycle", files: map[string]string{
			"requirements.txt": "-rbase.txt\n--requirement=other.txt\n-e git+https://example.com/x.git#egg=Some_Pkg\n./vendor/pkg-1.0.tar.gz\nhttps://example.com/y.whl\n",
			"base.txt":         "-r requirements.txt\nuvicorn[standard]>=0.30\n",
			"other.txt":        "-r base.txt\nwhitenoise\n",
		}, kind: KindRequirements, files_: []string{"requirements.txt", "base.txt", "other.txt"},
			packages: []string{"some-pkg", "uvicorn", "whitenoise"}, wsgi: "uvicorn"},
		{name: "include escapes", files: map[string]string{"requirements.txt": "-r ../../etc/passwd\n"}, wantErr: []string{"outside the repository"}},
		{name: "include absolute", files: map[string]string{"requirements.txt": "-r /etc/passwd\n"}, wantErr: []string{"outside the repository"}},
		{name: "include missing", files: map[string]string{"requirements.txt": "-r base.txt\n"}, wantErr: []string{"requirements.txt includes base.txt, which is not in the repository"}},
		{name: "no gunicorn", files: map[string]string{"requirements.txt": "Django==5.2.19\n"}, kind: KindRequirements, files_: []string{"requirements.txt"}, packages: []string{"django"}},
		{name: "two lock files", files: map[string]string{"pyproject.toml": "", "uv.lock": "", "poetry.lock": ""},
			wantErr: []string{"lock files at the top of the repository: uv.lock and poetry.lock", "exactly one"}},
		{name: "requirements beside a lock", files: map[string]string{"requirements.txt": "", "Pipfile": "", "Pipfile.lock": "{}"},
			wantErr: []string{"package manager files", "requirements.txt and Pipfile.lock"}},
		{name: "requirements beside a Pipfile", files: map[string]string{"requirements.txt": "", "Pipfile": ""},
			wantErr: []string{"requirements.txt and Pipfile"}},
		{name: "uv.lock without pyproject", files: map[string]string{"uv.lock": ""}, wantErr: []string{"no pyproject.toml"}},
		{name: "uv.lock out of date", files: map[string]string{
			"pyproject.toml": "[project]\nname = \"app\"\ndependencies = [\"django\", \"celery\"]\n",
			"uv.lock":        "version = 1\n[[package]]\nname = \"app\"\nversion = \"0\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"django\" }]\n[package.metadata]\nrequires-dist = [{ name = \"django\" }]\n",
		}, wantErr: []string{"uv.lock is out of date", "celery", "uv lock"}},
		// uv records every dependency in requires-dist, markers and all,
		// even one it locks nothing for (as Poetry does not: see
		// TestPoetryRestrictedRoots).
		{name: "uv.lock with a dependency whose marker cannot apply", files: map[string]string{
			"pyproject.toml": "[project]\nname = \"app\"\nrequires-python = \">=3.12\"\ndependencies = [\"django\", \"backports-zoneinfo ; python_version < '3.9'\"]\n",
			"uv.lock": "version = 1\n[[package]]\nname = \"app\"\nversion = \"0\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"django\" }]\n[package.metadata]\n" +
				"requires-dist = [{ name = \"backports-zoneinfo\", marker = \"python_full_version < '3.9'\" }, { name = \"django\" }]\n[[package]]\nname = \"django\"\nversion = \"5.2\"\n",
		}, kind: KindUV, files_: []string{"pyproject.toml", "uv.lock"}, packages: []string{"django"}},
		{name: "uv.lock broken", files: map[string]string{"pyproject.toml": "", "uv.lock": "[[package]\n"}, wantErr: []string{"uv.lock: line"}},
		{name: "poetry.lock out of date", files: map[string]string{
			"pyproject.toml": "[tool.poetry.dependencies]\npython = \"^3.12\"\ndjango = \"^5.2\"\n",
			"poetry.lock":    "[[package]]\nname = \"flask\"\nversion = \"3.0\"\n[metadata]\nlock-version = \"2.0\"\n",
		}, wantErr: []string{"poetry.lock is out of date", "django", "poetry lock"}},
		{name: "poetry local directory", files: map[string]string{
			"pyproject.toml": "[tool.poetry.dependencies]\nlib = {path = \"libs/lib\", develop = true}\n",
			"poetry.lock":    "[[package]]\nname = \"lib\"\nversion = \"1.0\"\ndevelop = true\n[package.source]\ntype = \"directory\"\nurl = \"libs/lib\"\n",
		}, wantErr: []string{"lib comes from the local directory", "publish it"}},
		{name: "pipfile editable", files: map[string]string{"Pipfile.lock": `{"default": {"lib": {"editable": true, "path": "."}}}`},
			wantErr: []string{"lib is a local path or an editable package"}},
		{name: "Pipfile.lock broken", files: map[string]string{"Pipfile.lock": `{"default": `}, wantErr: []string{"Pipfile.lock"}},
		{name: "Pipfile without lock", files: map[string]string{"Pipfile": "[packages]\ndjango = \"*\"\nrequests = {version = \">=2\", extras = [\"socks\"]}\nwaitress = \"==3.0.0\"\n[dev-packages]\npytest = \"*\"\n"},
			kind: KindPipfile, files_: []string{"Pipfile"}, packages: []string{"django", "requests", "waitress"}, wsgi: "waitress",
			commands: [][]string{{"uv", "pip", "install", "-r", "REQ"}}},
		{name: "pyproject without lock", files: map[string]string{"pyproject.toml": "[project]\nname = \"notes\"\ndependencies = [\"django>=5.2\", \"gunicorn\"]\n"},
			kind: KindPyproject, files_: []string{"pyproject.toml"}, packages: []string{"django", "gunicorn"}, wsgi: "gunicorn",
			commands: [][]string{{"uv", "pip", "install", "-r", "pyproject.toml"}}},
		// uv pip install -r pyproject.toml reads [project] only: a Poetry
		// project without its lock would get nothing installed.
		{name: "poetry pyproject without lock", files: map[string]string{"pyproject.toml": "[tool.poetry.dependencies]\npython = \"^3.12\"\nDjango = \"^5.2\"\n"},
			wantErr: []string{"pyproject.toml lists its dependencies for Poetry ([tool.poetry.dependencies])", "no poetry.lock", "run `poetry lock` and commit poetry.lock"}},
		{name: "poetry group without lock", files: map[string]string{"pyproject.toml": "[tool.poetry.dependencies]\npython = \"^3.12\"\n[tool.poetry.group.dev.dependencies]\npytest = \"^8\"\n"},
			wantErr: []string{"Poetry ([tool.poetry.group.dev.dependencies])", "poetry lock"}},
		{name: "poetry 1 dev-dependencies without lock", files: map[string]string{"pyproject.toml": "[tool.poetry.dev-dependencies]\npytest = \"^8\"\n"},
			wantErr: []string{"Poetry ([tool.poetry.dev-dependencies])", "poetry lock"}},
		{name: "poetry python only", files: map[string]string{"pyproject.toml": "[tool.poetry.dependencies]\npython = \"^3.12\"\n"},
			wantErr: []string{"no requirements.txt, pyproject.toml, Pipfile or lock file"}},
		{name: "project and poetry dependencies without lock", files: map[string]string{
			"pyproject.toml": "[project]\nname = \"notes\"\ndependencies = [\"django>=5.2\"]\n[tool.poetry.dependencies]\ndjango = { source = \"mirror\" }\n"},
			kind: KindPyproject, files_: []string{"pyproject.toml"}, packages: []string{"django"},
			commands: [][]string{{"uv", "pip", "install", "-r", "pyproject.toml"}}},
		{name: "pyproject for tools only", files: map[string]string{"pyproject.toml": "[tool.ruff]\nline-length = 100\n"},
			wantErr: []string{"no requirements.txt, pyproject.toml, Pipfile or lock file"}},
		{name: "nothing", files: map[string]string{"manage.py": ""}, wantErr: []string{"no requirements.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Installer(writeTree(t, tt.files))
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.Kind != tt.kind || !slices.Equal(in.Files, tt.files_) || !slices.Equal(in.Packages, tt.packages) {
				t.Errorf("Installer = %s %q %q, want %s %q %q", in.Kind, in.Files, in.Packages, tt.kind, tt.files_, tt.packages)
			}
			if got, _ := HasWSGIServer(in); got != tt.wsgi {
				t.Errorf("HasWSGIServer = %q, want %q", got, tt.wsgi)
			}
			if tt.commands != nil && !slices.EqualFunc(in.Commands("REQ"), tt.commands, slices.Equal) {
				t.Errorf("Commands = %q, want %q", in.Commands("REQ"), tt.commands)
			}
		})
	}
}

// TestPoetryWalk converts a real Poetry 1.8 lock (lock-version 2.0, no
// groups: the graph is walked from pyproject.toml) and compares it with
// what `poetry export --only main` printed for it.
func TestPoetryWalk(t *testing.T) {
	in, err := Installer("testdata/poetry18")
	if err != nil {
		t.Fatal(err)
	}
	req := string(in.Requirements())
	// poetry export --only main (Poetry 1.8.5): package==version.
	want := []string{"amqp==5.4.2", "asgiref==3.12.1", "async-timeout==5.0.1", "billiard==4.3.2",
		"celery==5.6.3", "click-didyoumean==0.3.1", "click-plugins==1.1.1.2", "click-repl==0.4.1",
		"click==8.5.1", "django==5.2.19", "exceptiongroup==1.3.2", "kombu==5.6.2", "packaging==26.4",
		"prompt-toolkit==3.0.53", "python-dateutil==3.0.0", "redis==6.4.0", "six==1.17.0",
		"sqlparse==0.6.1", "typing-extensions==4.16.0", "tzdata==2026.6", "tzlocal==5.4.5",
		"vine==5.1.0", "wcwidth==0.9.4"}
	var got []string
	for _, line := range strings.Split(req, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " ") {
			got = append(got, strings.Fields(line)[0])
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("converted packages:\n%q\nwant (poetry export):\n%q", got, want)
	}
	for _, w := range []string{
		"exceptiongroup==1.3.2 ; python_version < \"3.11\"",
		"async-timeout==5.0.1 ; python_full_version < \"3.11.3\"",
		"django==5.2.19 \\\n    --hash=sha256:",
		"redis==6.4.0 \\\n",              // through celery[redis] → kombu[redis], the extra's marker dropped
		"typing-extensions==4.16.0 \\\n", // needed by some path without a marker
	} {
		if !strings.Contains(req, w) {
			t.Errorf("requirements lack %q:\n%s", w, req)
		}
	}
	if strings.Contains(req, "pytest") || strings.Contains(req, "extra ==") {
		t.Errorf("dev packages or extra markers in the requirements:\n%s", req)
	}
	if !in.Has("Celery") || in.Has("pytest") {
		t.Errorf("Packages = %q", in.Packages)
	}
}

func TestPoetryGroups(t *testing.T) {
	in, err := Installer("../examples/poetry-subdir/backend")
	if err != nil {
		t.Fatal(err)
	}
	req := string(in.Requirements())
	for _, w := range []string{"django==6.0.", "dj-database-url==", "gunicorn==23.0.", "tzdata==", `; sys_platform == "win32"`, "--hash=sha256:"} {
		if !strings.Contains(req, w) {
			t.Errorf("requirements lack %q:\n%s", w, req)
		}
	}
	if strings.Contains(req, "debug-toolbar") {
		t.Errorf("a dev package in the requirements:\n%s", req)
	}
	if in.Kind != KindPoetry || !slices.Equal(in.Files, []string{"pyproject.toml", "poetry.lock"}) {
		t.Errorf("Installer = %s %q", in.Kind, in.Files)
	}
}

func TestPipenv(t *testing.T) {
	in, err := Installer("../examples/pipenv")
	if err != nil {
		t.Fatal(err)
	}
	req := string(in.Requirements())
	for _, w := range []string{"django==5.2.", "dj-database-url==", "gunicorn==23.0.0", "asgiref==3.13.0 ; python_version >= '3.11' \\\n    --hash=sha256:"} {
		if !strings.Contains(req, w) {
			t.Errorf("requirements lack %q:\n%s", w, req)
		}
	}
	if strings.Contains(req, "debug-toolbar") || strings.Contains(req, "index-url") {
		t.Errorf("a dev package or the default index in the requirements:\n%s", req)
	}

	// A package pinned to a second source gets that source as an extra
	// index; a git package its commit.
	dir := writeTree(t, map[string]string{"Pipfile.lock": `{
		"_meta": {"sources": [{"name": "pypi", "url": "${PIP_INDEX_URL}"}, {"name": "private", "url": "https://pkgs.example.com/simple"}]},
		"default": {
			"internal": {"version": "==1.0", "index": "private", "hashes": ["sha256:ab"]},
			"Flask-Login": {"version": "==0.6.3", "extras": ["x"], "markers": "python_version >= '3.7'"},
			"lib": {"git": "https://example.com/lib.git", "ref": "abc123"}
		},
		"develop": {"pytest": {"version": "==8.0"}}}`})
	in, err = Installer(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Generated by Conductor from Pipfile.lock (its \"default\" packages).\n" +
		"--extra-index-url https://pkgs.example.com/simple\n" +
		"flask-login[x]==0.6.3 ; python_version >= '3.7'\n" +
		"internal==1.0 \\\n    --hash=sha256:ab\n" +
		"lib @ git+https://example.com/lib.git@abc123\n"
	if got := string(in.Requirements()); got != want {
		t.Errorf("requirements:\n%s\nwant:\n%s", got, want)
	}
}

func TestUVLock(t *testing.T) {
	in, err := Installer("../examples/cookiecutter-uv")
	if err != nil {
		t.Fatal(err)
	}
	if in.Kind != KindUV || !slices.Equal(in.Files, []string{"pyproject.toml", "uv.lock"}) {
		t.Errorf("Installer = %s %q", in.Kind, in.Files)
	}
	for _, p := range []string{"django", "django-environ", "celery", "kombu", "redis", "gunicorn"} {
		if !in.Has(p) {
			t.Errorf("%s not among %q", p, in.Packages)
		}
	}
	if in.Has("django-debug-toolbar") {
		t.Errorf("the dev group's package among %q", in.Packages)
	}
	cmds := in.Commands("/tmp/req.txt")
	if len(cmds) != 2 || cmds[0][1] != "export" || !slices.Contains(cmds[0], "--frozen") || !slices.Contains(cmds[0], "--no-default-groups") ||
		!slices.Equal(cmds[1], []string{"uv", "pip", "install", "-r", "/tmp/req.txt"}) {
		t.Errorf("Commands = %q", cmds)
	}
	if in.Requirements() != nil {
		t.Error("uv.lock converted here: uv exports it")
	}
}

func TestReuseKey(t *testing.T) {
	files := map[string]string{
		"requirements.txt":            "-r requirements/production.txt\n",
		"requirements/production.txt": "-r base.txt\ngunicorn==23.0.0\n",
		"requirements/base.txt":       "Django==5.2.19\n",
		"manage.py":                   "",
	}
	dir := writeTree(t, files)
	key := func() string {
		t.Helper()
		in, err := Installer(dir)
		if err != nil {
			t.Fatal(err)
		}
		return ReuseKey(in, "3.12.1")
	}
	k0 := key()
	if k0 != key() || len(k0) != 64 {
		t.Fatalf("key %q is not stable", k0)
	}
	in, _ := Installer(dir)
	if ReuseKey(in, "3.13.0") == k0 {
		t.Error("the interpreter does not change the key")
	}
	// Code changes keep the key.
	if err := os.WriteFile(filepath.Join(dir, "manage.py"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if key() != k0 {
		t.Error("a code change changed the key")
	}
	// A package added two includes down changes it (issue 15: -r was not
	// followed, the old virtualenv was reused).
	if err := os.WriteFile(filepath.Join(dir, "requirements/base.txt"), []byte("Django==5.2.19\ndjango-environ\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k1 := key()
	if k1 == k0 {
		t.Error("a change in an included file kept the key")
	}
	// So does a new include.
	if err := os.WriteFile(filepath.Join(dir, "requirements/base.txt"), []byte("Django==5.2.19\ndjango-environ\n-c c.txt\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "requirements/c.txt"), []byte("sqlparse==0.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	k2 := key()
	if err := os.WriteFile(filepath.Join(dir, "requirements/c.txt"), []byte("sqlparse==0.6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k2 == k1 || key() == k2 {
		t.Error("a constraints file does not count")
	}
}

func TestLocalRequirements(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"none", map[string]string{"requirements.txt": "Django==5.2\n-e git+https://example.com/x.git#egg=x\nhttps://example.com/y.whl\n"}, nil},
		{"editable project", map[string]string{"requirements.txt": "-e .\nDjango\n"}, []string{"."}},
		{"paths", map[string]string{"requirements.txt": "./vendor/pkg-1.0.tar.gz\nlibs/shared\npkg @ file:///opt/pkg.whl\n--editable=../sibling\n"},
			[]string{"./vendor/pkg-1.0.tar.gz", "libs/shared", "file:///opt/pkg.whl", "../sibling"}},
		{"uv path source", map[string]string{
			"pyproject.toml": "[project]\nname = \"app\"\ndependencies = [\"shared\"]\n",
			"uv.lock": "version = 1\n[[package]]\nname = \"app\"\nversion = \"0\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"shared\" }]\n" +
				"[package.metadata]\nrequires-dist = [{ name = \"shared\" }]\n[[package]]\nname = \"shared\"\nversion = \"1\"\nsource = { editable = \"libs/shared\" }\n",
		}, []string{"libs/shared"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Installer(writeTree(t, tt.files))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(in.Local, tt.want) {
				t.Errorf("Local = %q, want %q", in.Local, tt.want)
			}
		})
	}
}

// TestPoetryWithoutLock: the Poetry project a deploy installed nothing
// for (uv warned it "does not appear to be a Python project") is refused
// at detection, as Heroku does, telling what to commit.
func TestPoetryWithoutLock(t *testing.T) {
	_, err := Installer("testdata/poetry-nolock")
	checkErr(t, err, "pyproject.toml lists its dependencies for Poetry ([tool.poetry.dependencies]) but the repository has no poetry.lock: run `poetry lock` and commit poetry.lock")

	dir := writeTree(t, map[string]string{
		"backend/manage.py":       manage("web.settings"),
		"backend/web/settings.py": "",
		"backend/pyproject.toml":  "[tool.poetry.dependencies]\npython = \"^3.12\"\ndjango = \"^5.2\"\n",
	})
	_, err = Detect(dir, map[string]string{ConfigAppDir: "backend"})
	checkErr(t, err, "backend/pyproject.toml lists its dependencies for Poetry", "has no backend/poetry.lock", "commit backend/poetry.lock")
}

// TestPoetryRestrictedRoots: Poetry leaves out of its lock a dependency
// whose marker or python constraint cannot match the project's Pythons
// (tomli for python <3.11 in a ^3.12 project), so such a root missing
// from the lock is not a sign of a stale lock; a root without a
// restriction still is.
func TestPoetryRestrictedRoots(t *testing.T) {
	// Made by `poetry lock` (Poetry 2.5.1): tomli = {python = "<3.11"}.
	if in, err := Installer("testdata/poetry-marker"); err != nil {
		t.Errorf("a fresh lock refused: %v", err)
	} else {
		if in.Kind != KindPoetry || !in.Has("django") || !in.Has("gunicorn") || in.Has("tomli") {
			t.Errorf("Installer = %s %q", in.Kind, in.Packages)
		}
		if req := string(in.Requirements()); !strings.Contains(req, "django==5.2.19") || strings.Contains(req, "tomli") {
			t.Errorf("requirements:\n%s", req)
		}
	}

	const lock21 = "[[package]]\nname = \"django\"\nversion = \"5.2.19\"\noptional = false\ngroups = [\"main\"]\nfiles = []\n[metadata]\nlock-version = \"2.1\"\n"
	const lock20 = "[[package]]\nname = \"django\"\nversion = \"5.2.19\"\noptional = false\nfiles = []\n[metadata]\nlock-version = \"2.0\"\n"
	const poetryDeps = "[tool.poetry.dependencies]\npython = \"^3.12\"\ndjango = \"^5.2\"\n"
	tests := []struct {
		name, pyproject, lock string
		wantErr               []string
	}{
		{name: "PEP 621 marker", lock: lock21,
			pyproject: "[project]\nname = \"app\"\nrequires-python = \">=3.12\"\ndependencies = [\"django>=5.2\", \"tomli ; python_version < '3.11'\"]\n"},
		{name: "markers key", lock: lock21, pyproject: poetryDeps + "pywin32 = { version = \"^306\", markers = \"sys_platform == 'win32'\" }\n"},
		{name: "python key, lock without groups", lock: lock20, pyproject: poetryDeps + "tomli = { version = \"^2.0\", python = \"<3.11\" }\n"},
		{name: "list of constraints", lock: lock21,
			pyproject: poetryDeps + "tomli = [{ version = \"^2.0\", python = \"<3.11\" }, { version = \"^1.2\", python = \"<3.8\" }]\n"},
		{name: "array of tables", lock: lock21,
			pyproject: poetryDeps + "[[tool.poetry.dependencies.tomli]]\nversion = \"^2.0\"\npython = \"<3.11\"\n[[tool.poetry.dependencies.tomli]]\nversion = \"^1.2\"\nmarkers = \"sys_platform == 'win32'\"\n"},

		{name: "PEP 621 without a marker", lock: lock21,
			pyproject: "[project]\nname = \"app\"\ndependencies = [\"django>=5.2\", \"tomli>=2\"]\n",
			wantErr:   []string{"poetry.lock is out of date", "tomli", "poetry lock"}},
		{name: "python any", lock: lock21, pyproject: poetryDeps + "tomli = { version = \"^2.0\", python = \"*\" }\n",
			wantErr: []string{"poetry.lock is out of date", "tomli"}},
		{name: "list with an unrestricted constraint", lock: lock21,
			pyproject: poetryDeps + "tomli = [{ version = \"^2.0\", python = \"<3.11\" }, { version = \"^2.0\" }]\n",
			wantErr:   []string{"poetry.lock is out of date", "tomli"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Installer(writeTree(t, map[string]string{"pyproject.toml": tt.pyproject, "poetry.lock": tt.lock}))
			checkErr(t, err, tt.wantErr...)
			if err == nil && (in.Kind != KindPoetry || !slices.Equal(in.Packages, []string{"django"})) {
				t.Errorf("Installer = %s %q", in.Kind, in.Packages)
			}
		})
	}
}
