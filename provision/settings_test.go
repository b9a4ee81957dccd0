package provision

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

// checkSettingsPy parses local_settings.py with Python's ast, refuses any
// statement but one leading `from <project>.settings import *` and plain
// assignments, evaluates every assigned literal with ast.literal_eval, then
// runs the file for real (with a stub project package) from an empty working
// directory. It prints {"statements": [...], "values": {...}, "executed":
// {...}} as JSON.
const checkSettingsPy = `
import ast, json, os, runpy, sys

path, project, stubdir, workdir = sys.argv[1:5]
src = open(path, encoding="utf-8").read()
tree = ast.parse(src, path)
statements, values = [], {}
for i, node in enumerate(tree.body):
    if isinstance(node, ast.ImportFrom):
        names = [a.name for a in node.names]
        statements.append("ImportFrom %s %s level=%d" % (node.module, ",".join(names), node.level))
    elif isinstance(node, ast.Assign):
        if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
            statements.append("BadAssign line %d" % node.lineno)
            continue
        name = node.targets[0].id
        value = node.value
        # DATABASES keeps the project's other aliases: one spread of its
        # own DATABASES, and nothing else that is not a literal.
        if name == "DATABASES" and isinstance(value, ast.Dict) and None in value.keys:
            spreads = [ast.unparse(v) for k, v in zip(value.keys, value.values) if k is None]
            if spreads != ["globals().get('DATABASES', {})"]:
                statements.append("BadAssign line %d" % node.lineno)
                continue
            pairs = [(k, v) for k, v in zip(value.keys, value.values) if k is not None]
            value = ast.Dict(keys=[k for k, _ in pairs], values=[v for _, v in pairs])
        statements.append("Assign " + name)
        values[name] = ast.literal_eval(value)
    else:
        statements.append("%s line %d" % (type(node).__name__, node.lineno))

# Execute it: a stub <project>.settings stands in for Django's.
sys.path.insert(0, stubdir)
os.chdir(workdir)
g = runpy.run_path(path)
executed = {k: g[k] for k in values}
print(json.dumps({"statements": statements, "values": values, "executed": executed}))
`

type settingsResult struct {
	Statements []string       `json:"statements"`
	Values     map[string]any `json:"values"`
	Executed   map[string]any `json:"executed"`
}

func python3(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to check the generated settings (run make setup): %v", err)
	}
	return py
}

func currentUser(t *testing.T) *AppUser {
	t.Helper()
	return &AppUser{Name: "test", UID: os.Getuid(), GID: os.Getgid(), Home: t.TempDir()}
}

// runSettings writes s with WriteSettings and has Python check the result.
func runSettings(t *testing.T, s Settings) (settingsResult, string) {
	t.Helper()
	py := python3(t)
	base := t.TempDir()
	release := filepath.Join(base, "release")
	stub := filepath.Join(base, "stub")
	work := filepath.Join(base, "work")
	project, _, _ := strings.Cut(s.Module, ".")
	for _, d := range []string{release, filepath.Join(stub, project), work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(stub, project, "__init__.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stub, project, "settings.py"), []byte("FROM_PROJECT = 'yes'\nSECRET_KEY = 'from-project'\n"+
		"DATABASES = {'default': {'ENGINE': 'project-default'}, 'metrics': {'ENGINE': 'project-metrics'}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(base, "check.py")
	if err := os.WriteFile(script, []byte(checkSettingsPy), 0o644); err != nil {
		t.Fatal(err)
	}

	if err := WriteSettings(s, release, ".", currentUser(t)); err != nil {
		t.Fatalf("WriteSettings: %v", err)
	}
	path := filepath.Join(release, "local_settings.py")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("local_settings.py mode = %o, want 600", mode)
	}
	src, _ := os.ReadFile(path)

	cmd := exec.Command(py, script, path, project, stub, work)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python3 rejected local_settings.py: %v\n%s\n--- file:\n%s", err, stderr, src)
	}
	var res settingsResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("parse python output: %v\n%s", err, out)
	}
	// Nothing in the values may have run: the working dir stays empty and
	// nothing appeared next to the settings.
	for _, d := range []string{work, base} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			switch e.Name() {
			case "release", "stub", "work", "check.py":
				if d == base {
					continue
				}
			}
			t.Errorf("running local_settings.py created %s", filepath.Join(d, e.Name()))
		}
	}
	if _, err := os.Stat(filepath.Join(release, "PWNED")); err == nil {
		t.Error("running local_settings.py created PWNED")
	}
	return res, string(src)
}

func TestWriteSettingsHostileValues(t *testing.T) {
	injection := `x"; import os; os.system("touch PWNED"); "`
	tests := []struct {
		name      string
		secret    string
		hosts     []string
		db        Database
		wantKey   string // when it differs from secret (invalid UTF-8)
		wantHosts []string
	}{
		{name: "plain", secret: "abcDEF123", hosts: []string{"hello.localhost", "127.0.0.1", "localhost"}},
		{name: "double quote injection", secret: injection, hosts: []string{injection}},
		{name: "single quote injection", secret: `x'; import os; os.system('touch PWNED'); '`, hosts: []string{`'`}},
		{name: "triple quotes", secret: `""" + __import__("os").system("touch PWNED") + """`, hosts: []string{`'''`, `"""`}},
		{name: "backslashes", secret: `\`, hosts: []string{`a\`, `\\"`, `\x41\u0041\N{DIGIT ONE}`}},
		{name: "newlines", secret: "a\nimport os\nos.system('touch PWNED')\n#", hosts: []string{"x\r\ny", "\u2028\u2029\u0085"}},
		{name: "nul and controls", secret: "a\x00b\x01\x07\x1b[31m\x7f", hosts: []string{"\x00"}},
		{name: "unicode", secret: "שלום-🌍-café-\u200f-\ufeff", hosts: []string{"éxample.com", "例え.jp"}},
		{name: "template syntax", secret: "{{ .SecretKey }} {% raw %} %s %(x)s ${x} $x", hosts: []string{"{{", "}}"}},
		{name: "comment and fstring", secret: `# x" f"{__import__('os').system('touch PWNED')}`, hosts: nil},
		{name: "invalid utf-8", secret: "a\xffb\xc3", hosts: []string{"\xfe"}, wantKey: "a\ufffdb\ufffd", wantHosts: []string{"\ufffd"}},
		{name: "empty", secret: "", hosts: []string{""}},
		{
			name: "database with host", secret: "k", hosts: []string{"h"},
			db: Database{
				Engine: "django.db.backends.postgresql", Name: `db"name`, Host: "127.0.0.1", Port: "5432",
				User: `u'ser`, Password: "p\"w'\n\\\x00{{x}}" + injection,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := tt.db
			if db.Engine == "" {
				db = Database{Engine: "django.db.backends.sqlite3", Name: "/srv/projects/hello/data/db \"x\".sqlite3"}
			}
			db.Alias = "default"
			// A second alias Conductor manages (db:create --alias reports).
			reports := Database{Alias: "reports", Engine: "django.db.backends.mysql", Name: "hello_reports", Host: "/run/mysqld/mysqld.sock",
				User: "hello_reports", Password: tt.secret}
			s := Settings{
				App: "hello\nimport os", Release: `r1"""'''`, Module: "proj.settings",
				SecretKey: tt.secret, Hosts: tt.hosts, DBs: []Database{db, reports},
				StaticRoot: `/srv/static "dir"\`, MediaRoot: "/srv/media\n'x'",
			}
			res, src := runSettings(t, s)

			// One import, then assignments only.
			if len(res.Statements) == 0 || res.Statements[0] != "ImportFrom proj.settings * level=0" {
				t.Fatalf("first statement = %v, want the project settings import\n%s", res.Statements, src)
			}
			for _, st := range res.Statements[1:] {
				if !strings.HasPrefix(st, "Assign ") {
					t.Errorf("unexpected statement %q in local_settings.py:\n%s", st, src)
				}
			}
			var assigned []string
			for _, st := range res.Statements[1:] {
				assigned = append(assigned, strings.TrimPrefix(st, "Assign "))
			}
			sort.Strings(assigned)
			for _, name := range []string{"ALLOWED_HOSTS", "DATABASES", "DEBUG", "MEDIA_ROOT", "SECRET_KEY", "STATIC_ROOT", "STATIC_URL"} {
				if i := sort.SearchStrings(assigned, name); i == len(assigned) || assigned[i] != name {
					t.Errorf("%s is not assigned (assignments: %v)", name, assigned)
				}
			}

			wantKey := tt.secret
			if tt.wantKey != "" {
				wantKey = tt.wantKey
			}
			if got := res.Values["SECRET_KEY"]; got != wantKey {
				t.Errorf("SECRET_KEY = %q, want exactly %q\n%s", got, wantKey, src)
			}
			if got := res.Executed["SECRET_KEY"]; got != wantKey {
				t.Errorf("executed SECRET_KEY = %q, want exactly %q", got, wantKey)
			}
			wantHosts := tt.hosts
			if tt.wantHosts != nil {
				wantHosts = tt.wantHosts
			}
			gotHosts := []string{}
			for _, h := range res.Values["ALLOWED_HOSTS"].([]any) {
				gotHosts = append(gotHosts, h.(string))
			}
			if wantHosts == nil {
				wantHosts = []string{}
			}
			if !reflect.DeepEqual(gotHosts, wantHosts) {
				t.Errorf("ALLOWED_HOSTS = %q, want %q", gotHosts, wantHosts)
			}
			if res.Values["DEBUG"] != false {
				t.Errorf("DEBUG = %v, want False", res.Values["DEBUG"])
			}
			if res.Values["STATIC_ROOT"] != s.StaticRoot || res.Values["MEDIA_ROOT"] != s.MediaRoot {
				t.Errorf("STATIC_ROOT = %q, MEDIA_ROOT = %q", res.Values["STATIC_ROOT"], res.Values["MEDIA_ROOT"])
			}
			def := res.Values["DATABASES"].(map[string]any)["default"].(map[string]any)
			wantDB := map[string]any{"ENGINE": db.Engine, "NAME": db.Name}
			if db.Host != "" {
				wantDB["HOST"], wantDB["PORT"], wantDB["USER"], wantDB["PASSWORD"] = db.Host, db.Port, db.User, db.Password
			}
			if !reflect.DeepEqual(def, wantDB) {
				t.Errorf("DATABASES[default] = %q, want %q", def, wantDB)
			}
			// Executed, "default" and "reports" are Conductor's and the
			// project's other aliases stay.
			dbs := res.Executed["DATABASES"].(map[string]any)
			wantReports := map[string]any{"ENGINE": reports.Engine, "NAME": reports.Name, "HOST": reports.Host, "PORT": "", "USER": reports.User, "PASSWORD": wantKey}
			if !reflect.DeepEqual(dbs["default"], wantDB) || !reflect.DeepEqual(dbs["reports"], wantReports) ||
				!reflect.DeepEqual(dbs["metrics"], map[string]any{"ENGINE": "project-metrics"}) || len(dbs) != 3 {
				t.Errorf("executed DATABASES = %q, want Conductor's default and reports, and the project's metrics alias", dbs)
			}
			// The generated file itself is plain ASCII: no raw newline or
			// NUL from a value can reach it.
			for i, c := range []byte(src) {
				if c > 0x7e || (c < 0x20 && c != '\n') {
					t.Fatalf("byte %#x at %d in local_settings.py", c, i)
				}
			}
		})
	}
}

func TestWriteSettingsRejectsBadModule(t *testing.T) {
	for _, module := range []string{"", "proj; import os", "1proj", "my-proj", "../proj", "proj\n", "os import *\nimport os", "proj.", ".proj", "a..b", "a.b-c"} {
		dir := t.TempDir()
		err := WriteSettings(Settings{Module: module, SecretKey: "k"}, dir, ".", currentUser(t))
		if code := conductor.ErrorCode(err); code != conductor.EINVALID {
			t.Errorf("WriteSettings(module %q) error = %v (code %q), want EINVALID", module, err, code)
		}
		if _, err := os.Stat(filepath.Join(dir, "local_settings.py")); err == nil {
			t.Errorf("WriteSettings(module %q) wrote local_settings.py", module)
		}
	}
}
