package pybuild

import (
	"testing"
)

func TestPythonVersion(t *testing.T) {
	tests := []struct {
		name       string
		files      map[string]string
		want, from string
		wantErr    []string
	}{
		{name: "none", files: map[string]string{"manage.py": ""}},
		{name: ".python-version 3.13", files: map[string]string{".python-version": "3.13\n"}, want: "3.13", from: ".python-version"},
		{name: ".python-version patch", files: map[string]string{".python-version": "3.12.4"}, want: "3.12.4", from: ".python-version"},
		{name: ".python-version comments and several", files: map[string]string{".python-version": "# pinned by pyenv\n\n3.11.9\n3.12.1\n"}, want: "3.11.9", from: ".python-version"},
		{name: ".python-version cpython-", files: map[string]string{".python-version": "cpython-3.12"}, want: "3.12", from: ".python-version"},
		{name: ".python-version uv full key", files: map[string]string{".python-version": "cpython-3.12.4-linux-x86_64-gnu"}, want: "3.12.4", from: ".python-version"},
		{name: ".python-version specifier", files: map[string]string{".python-version": ">=3.11, <3.13"}, want: ">=3.11,<3.13", from: ".python-version"},
		{name: ".python-version system falls through", files: map[string]string{".python-version": "system", "runtime.txt": "python-3.10.13"}, want: "3.10.13", from: "runtime.txt"},
		{name: ".python-version pypy", files: map[string]string{".python-version": "pypy3.10"}, wantErr: []string{"only CPython"}},
		{name: ".python-version free-threaded", files: map[string]string{".python-version": "3.13t"}, wantErr: []string{"free-threaded"}},
		{name: ".python-version garbage", files: map[string]string{".python-version": "latest"}, wantErr: []string{".python-version", "not a Python version"}},
		{name: ".python-version wins over runtime.txt", files: map[string]string{".python-version": "3.13", "runtime.txt": "python-3.10.13"}, want: "3.13", from: ".python-version"},
		{name: "runtime.txt 3.10", files: map[string]string{"runtime.txt": "python-3.10\n"}, want: "3.10", from: "runtime.txt"},
		{name: "runtime.txt full", files: map[string]string{"runtime.txt": "python-3.12.4"}, want: "3.12.4", from: "runtime.txt"},
		{name: "runtime.txt bad", files: map[string]string{"runtime.txt": "3.12"}, wantErr: []string{"runtime.txt", "python-X.Y"}},
		{name: "requires-python", files: map[string]string{"pyproject.toml": "[project]\nname = \"x\"\nrequires-python = \">=3.11, <3.13\"\n"}, want: ">=3.11,<3.13", from: "pyproject.toml (requires-python)"},
		{name: "requires-python cookiecutter", files: map[string]string{"pyproject.toml": "[project]\nrequires-python = \"==3.13.*\"\n"}, want: "==3.13.*", from: "pyproject.toml (requires-python)"},
		{name: "requires-python bad", files: map[string]string{"pyproject.toml": "[project]\nrequires-python = \"python3\"\n"}, wantErr: []string{"requires-python"}},
		{name: "poetry python", files: map[string]string{"pyproject.toml": "[tool.poetry.dependencies]\npython = \"^3.11\"\ndjango = \"^5.2\"\n"}, want: "^3.11", from: "pyproject.toml ([tool.poetry.dependencies] python)"},
		{name: "pyproject without a version", files: map[string]string{"pyproject.toml": "[tool.ruff]\nline-length = 100\n", "Pipfile": "[requires]\npython_version = \"3.12\"\n"}, want: "3.12", from: "Pipfile ([requires] python_version)"},
		{name: "pyproject broken", files: map[string]string{"pyproject.toml": "[project\n"}, wantErr: []string{"pyproject.toml", "line 2"}},
		{name: "Pipfile full version wins", files: map[string]string{"Pipfile": "[requires]\npython_version = \"3.12\"\npython_full_version = \"3.12.1\"\n"}, want: "3.12.1", from: "Pipfile ([requires] python_full_version)"},
		{name: "Pipfile bad", files: map[string]string{"Pipfile": "[requires]\npython_version = \"three\"\n"}, wantErr: []string{"Pipfile", "python_version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, from, err := PythonVersion(writeTree(t, tt.files))
			checkErr(t, err, tt.wantErr...)
			if got != tt.want || from != tt.from {
				t.Errorf("PythonVersion = %q, %q; want %q, %q", got, from, tt.want, tt.from)
			}
		})
	}
}

func TestMatchVersion(t *testing.T) {
	pyenv := []string{"3.10.13", "3.12.1", "3.13.0", "3.11.7"}
	tests := []struct {
		request   string
		available []string
		want      string
		wantErr   []string
	}{
		{"3.12", pyenv, "3.12.1", nil},
		{"3.13", pyenv, "3.13.0", nil},
		{"3.10", pyenv, "3.10.13", nil},
		{"3.10.13", pyenv, "3.10.13", nil},
		{"3", pyenv, "3.13.0", nil},
		{"3.12", []string{"3.12.1", "3.12.7", "3.12.10"}, "3.12.10", nil},
		{"3.12.4", pyenv, "", []string{"Python 3.12.4 is not available", "installed are 3.10.13, 3.11.7, 3.12.1, 3.13.0"}},
		{"3.9", pyenv, "", []string{"not available"}},
		{">=3.11,<3.13", pyenv, "3.12.1", nil},
		{">=3.11, <3.13", pyenv, "3.12.1", nil},
		{">=3.8", pyenv, "3.13.0", nil},
		{">3.12", pyenv, "3.13.0", nil},
		{">3.12.0", pyenv, "3.13.0", nil},
		{"<3.12", pyenv, "3.11.7", nil},
		{"<=3.12", pyenv, "3.11.7", nil},
		{"<=3.12.1", pyenv, "3.12.1", nil},
		{"==3.12.*", pyenv, "3.12.1", nil},
		{"==3.12", pyenv, "", []string{"not available"}},
		{"!=3.13.*", pyenv, "3.12.1", nil},
		{"~=3.11", pyenv, "3.13.0", nil},
		{"~=3.11.2", pyenv, "3.11.7", nil},
		{"^3.11", pyenv, "3.13.0", nil},
		{"~3.11", pyenv, "3.11.7", nil},
		{">=3.8,<3.11 || >=3.13", pyenv, "3.13.0", nil},
		{">=3.8,<3.11 || >=3.14", pyenv, "3.10.13", nil},
		{"*", pyenv, "3.13.0", nil},
		{"3.12", []string{"cpython-3.12.1", "cpython-3.13.0"}, "cpython-3.12.1", nil},
		{"3.12", []string{"junk", "3.12.1"}, "3.12.1", nil},
		{"3.12", nil, "", []string{"no Python is installed"}},
		{"three", pyenv, "", []string{"not a version specifier"}},
		{"", pyenv, "", []string{"Python"}},
	}
	for _, tt := range tests {
		t.Run(tt.request, func(t *testing.T) {
			got, err := MatchVersion(tt.request, tt.available)
			checkErr(t, err, tt.wantErr...)
			if got != tt.want {
				t.Errorf("MatchVersion(%q) = %q, want %q", tt.request, got, tt.want)
			}
		})
	}
}

func TestPythonMarker(t *testing.T) {
	tests := map[string]string{
		"<3.11":                `python_version < "3.11"`,
		">=3.8,<3.11.3":        `python_version >= "3.8" and python_full_version < "3.11.3"`,
		"^3.8":                 `python_version >= "3.8" and python_version < "4"`,
		"3.10":                 `python_version == "3.10.*"`,
		"*":                    ``,
		">=3.8,<3.9 || >=3.12": `(python_version >= "3.8" and python_version < "3.9") or python_version >= "3.12"`,
	}
	for in, want := range tests {
		if got := pythonMarker(in); got != want {
			t.Errorf("pythonMarker(%q) = %q, want %q", in, got, want)
		}
	}
}
