package pybuild

import (
	"strings"
	"testing"
)

// uvTooOld is what the uv Conductor installs (0.13.9) printed for
// `uv pip install -r requirements.txt` asking for django>=6.1 (whose
// releases require Python >=3.12) into a Python 3.11 virtualenv, as the
// build log shows it: indented.
const uvTooOld = `       Using Python 3.11.7 environment at: /srv/apps/blog/venv
       error: No solution found when resolving dependencies
         cause: Because django>=6.1 requires Python >=3.12 and you require django>=6.1, we can conclude that your requirements are unsatisfiable.
`

// uvTooOldWrapped: the same uv through a dependency, in colour, wrapped
// (COLUMNS=40 FORCE_COLOR=1, `uv pip install site`).
const uvTooOldWrapped = "\x1b[2mUsing Python 3.11.7 environment at: venv\x1b[0m\n\x1b[1m\x1b[31merror\x1b[39m\x1b[0m\x1b[1m:\x1b[0m No solution found when resolving\n       dependencies\n" +
	"  \x1b[1m\x1b[31mcause\x1b[39m\x1b[0m\x1b[1m:\x1b[0m Because all versions of django\n         require Python >=3.12, <3.14\n         and all versions of site depend\n         on django, we can conclude that\n" +
	"         all versions of site cannot\n         be used.\n         And because you require site,\n         we can conclude that your\n         requirements are unsatisfiable.\n"

// uvCurrentPython is the other uv versions' report (the one in the bug
// report), wrapped.
const uvCurrentPython = `  × No solution found when resolving dependencies:
  ╰─▶ Because the current Python version (3.11.2) does not satisfy
      Python>=3.12 and django>=6.1 depends on Python>=3.12, we can conclude
      that django>=6.1 cannot be used.
      And because you require django>=6.1, we can conclude that your
      requirements are unsatisfiable.
`

func TestInstallHint(t *testing.T) {
	tests := []struct {
		name   string
		build  Build
		output string
		want   []string // none: no hint
	}{
		{name: "no version named", build: Build{AppDir: "."}, output: uvTooOld,
			want: []string{"the app names no Python version, and the host's default, Python 3.11.7, does not satisfy Python>=3.12 (django>=6.1 requires Python>=3.12): name a Python version that does in .python-version (3.12, say) and push again"}},
		{name: "wrapped, colours, a range", build: Build{AppDir: "."}, output: uvTooOldWrapped,
			want: []string{"Python 3.11.7, does not satisfy Python>=3.12,<3.14 (all versions of django require Python>=3.12,<3.14)", "(3.12, say)"}},
		{name: "other uv versions", build: Build{AppDir: "."}, output: uvCurrentPython,
			want: []string{"the app names no Python version, and the host's default, Python 3.11.2, does not satisfy Python>=3.12 (django>=6.1 depends on Python>=3.12): name a Python version that does in .python-version (3.12, say) and push again"}},
		{name: "app in a subdirectory", build: Build{AppDir: "backend"}, output: uvTooOld,
			want: []string{"in backend/.python-version (3.12, say)"}},
		{name: "named by requires-python", build: Build{AppDir: ".", Python: ">=3.10", PythonSource: "pyproject.toml (requires-python)"}, output: uvTooOld,
			want: []string{"Python 3.11.7 (chosen for >=3.10 from pyproject.toml (requires-python)) does not satisfy Python>=3.12", "in .python-version (3.12, say), which wins over pyproject.toml (requires-python), and push again"}},
		{name: "named by .python-version", build: Build{AppDir: "backend", Python: "3.11", PythonSource: ".python-version"}, output: uvTooOld,
			want: []string{"change .python-version to a Python version that does (3.12, say)"}},
		{name: "version unknown", build: Build{AppDir: "."},
			output: "  cause: Because django>=6.1 requires Python >=3.12 and you require django>=6.1",
			want:   []string{"the app names no Python version, and the host's default Python does not satisfy Python>=3.12 (django>=6.1 requires Python>=3.12): name a Python version that does in .python-version and push"}},
		{name: "no version to suggest", build: Build{AppDir: "."},
			output: "Because the current Python version (3.12.3) does not satisfy Python==3.12.4 and x==1 depends on Python==3.12.4, we can conclude",
			want:   []string{"does not satisfy Python==3.12.4 (x==1 depends on Python==3.12.4): name a Python version that does in .python-version and push"}},
		{name: "another failure", build: Build{AppDir: "."},
			output: "Using Python 3.11.7 environment at: venv\nerror: No solution found when resolving dependencies\n  cause: Because there is no version of djangoo and you require djangoo, we can conclude that your requirements are unsatisfiable."},
		{name: "no output", build: Build{AppDir: "."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.build.InstallHint(tt.output)
			if len(tt.want) == 0 && got != "" {
				t.Errorf("hint %q, want none", got)
			}
			if len(tt.want) > 0 && got == "" {
				t.Fatalf("no hint, want one saying %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("hint %q does not say %q", got, w)
				}
			}
		})
	}
}
