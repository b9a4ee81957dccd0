package pybuild

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/hasadna/conductor"
)

// Kind is the package manager a project uses, told by its files.
type Kind string

const (
	// KindRequirements is requirements.txt, with its -r/-c includes.
	KindRequirements Kind = "requirements"
	// KindUV is pyproject.toml with uv.lock.
	KindUV Kind = "uv"
	// KindPoetry is pyproject.toml with poetry.lock.
	KindPoetry Kind = "poetry"
	// KindPipenv is Pipfile.lock (with its Pipfile).
	KindPipenv Kind = "pipenv"
	// KindPipfile is a Pipfile without a lock.
	KindPipfile Kind = "pipfile"
	// KindPyproject is pyproject.toml's dependencies without a lock.
	KindPyproject Kind = "pyproject"
)

// Install is how to install a project's dependencies into a virtualenv:
// what Installer found and read.
//
// Everything is installed with uv, into the virtualenv named by
// VIRTUAL_ENV, from the host's configured index (UV_INDEX_URL and the like,
// so a mirror works), checking the hashes the lock files carry. Lock files
// uv cannot read are converted here to a pinned requirements list
// (Requirements), which the builder writes to a file of its own and names
// to Commands. The project itself is never installed into the
// virtualenv: a virtualenv is reused across releases with the same
// dependencies, so an installed (or editable) copy of the code would be
// the first release's; the code runs from the release directory.
type Install struct {
	Kind Kind
	// Files are the files that decide what gets installed (requirements
	// includes followed), relative to the install directory.
	Files []string
	// Packages are the normalized names of the distributions installed
	// (for lock files, all of them; for unlocked files, the ones named),
	// as far as the files tell: a requirement given as a URL has none.
	Packages []string
	// Local are the requirements that are paths (-e ., ./libs/pkg, a
	// uv path source): they are installed from the tree the virtualenv is
	// built from, so a virtualenv reused by a later release would hold an
	// older copy of them. The builder should not reuse one for them (or
	// refuse them); Poetry and Pipenv path packages are refused here.
	Local []string

	sums         map[string][32]byte
	requirements []byte
}

// errNoDependencies: a directory has no dependency file at all.
var errNoDependencies = conductor.Errorf(conductor.ENOTFOUND, "no requirements.txt, pyproject.toml, Pipfile or lock file")

// Installer finds the package manager of the project in dir and reads its
// files: requirements.txt; pyproject.toml with uv.lock or poetry.lock;
// Pipfile.lock; a Pipfile alone; else pyproject.toml's dependencies. More
// than one of requirements.txt, uv.lock, poetry.lock and Pipfile.lock (or
// a Pipfile without its lock) is an error naming them, as on Heroku:
// which one the developers keep up to date cannot be told. A directory
// with none of them is an ENOTFOUND error.
func Installer(dir string) (*Install, error) {
	return installer(dir, ".")
}

func installer(root, sub string) (*Install, error) {
	has := func(name string) bool { return exists(root, join(sub, name)) }
	var found []string
	for _, f := range []string{"requirements.txt", "uv.lock", "poetry.lock", "Pipfile.lock"} {
		if has(f) {
			found = append(found, f)
		}
	}
	if has("Pipfile") && !has("Pipfile.lock") {
		found = append(found, "Pipfile")
	}
	if len(found) > 1 {
		what := "package manager files"
		if !has("requirements.txt") {
			what = "lock files"
		}
		return nil, invalidf("%s %s: %s. Conductor installs from exactly one (as Heroku does): delete the one no longer kept up to date",
			what, where(sub), strings.Join(found, " and "))
	}
	in := &Install{sums: map[string][32]byte{}}
	var err error
	switch {
	case len(found) == 0:
		err = in.readPyproject(root, sub)
	case found[0] == "requirements.txt":
		err = in.readRequirements(root, sub)
	case found[0] == "uv.lock":
		err = in.readUV(root, sub)
	case found[0] == "poetry.lock":
		err = in.readPoetry(root, sub)
	case found[0] == "Pipfile.lock":
		err = in.readPipenv(root, sub)
	default:
		err = in.readPipfile(root, sub)
	}
	if err != nil {
		return nil, err
	}
	sort.Strings(in.Packages)
	in.Packages = compactStrings(in.Packages)
	return in, nil
}

// read reads an input file (relative to the install directory) and
// records its digest.
func (in *Install) read(root, sub, name string, max int64) ([]byte, error) {
	data, err := readFile(root, join(sub, name), max)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, invalidf("%s: a link to nothing in the repository", join(sub, name))
	} else if err != nil {
		return nil, err
	}
	in.record(name, data)
	return data, nil
}

func (in *Install) record(name string, data []byte) {
	if _, ok := in.sums[name]; !ok {
		in.Files = append(in.Files, name)
	}
	in.sums[name] = sha256.Sum256(data)
}

func (in *Install) readRequirements(root, sub string) error {
	r := &reqFiles{root: root, sub: sub, seen: map[string]bool{}}
	if err := r.add("requirements.txt", false, ""); err != nil {
		return err
	}
	for _, f := range r.files {
		in.record(f.name, f.data)
	}
	in.Kind, in.Packages, in.Local = KindRequirements, r.names, r.local
	return nil
}

// pyproject is what is read of a pyproject.toml.
type pyproject struct {
	Project struct {
		Name           string   `toml:"name"`
		RequiresPython string   `toml:"requires-python"`
		Dependencies   []string `toml:"dependencies"`
		Dynamic        []string `toml:"dynamic"`
	} `toml:"project"`
	Tool struct {
		Poetry struct {
			Dependencies    map[string]any `toml:"dependencies"`
			DevDependencies map[string]any `toml:"dev-dependencies"` // Poetry 1.0 to 1.1
			Group           map[string]struct {
				Dependencies map[string]any `toml:"dependencies"`
			} `toml:"group"`
		} `toml:"poetry"`
	} `toml:"tool"`
}

func (in *Install) readPyprojectFile(root, sub string, required bool) (*pyproject, error) {
	if !exists(root, join(sub, "pyproject.toml")) {
		if required {
			return nil, invalidf("no pyproject.toml %s beside the lock file", where(sub))
		}
		return nil, errNoDependencies
	}
	data, err := in.read(root, sub, "pyproject.toml", maxManifest)
	if err != nil {
		return nil, err
	}
	var p pyproject
	if err := toml.Unmarshal(data, &p); err != nil {
		return nil, invalidf("%s: %v", join(sub, "pyproject.toml"), tomlProblem(err))
	}
	return &p, nil
}

// readPyproject handles a pyproject.toml with no lock file: uv installs
// its [project] dependencies (building the metadata when they are
// dynamic). One with none (a pyproject.toml that only configures tools) is
// no dependency file. A Poetry project without its lock is refused, as on
// Heroku: uv reads no [tool.poetry] table, so nothing would be installed.
func (in *Install) readPyproject(root, sub string) error {
	p, err := in.readPyprojectFile(root, sub, false)
	if err != nil {
		return err
	}
	if table := poetryTable(p); table != "" && len(p.Project.Dependencies) == 0 {
		return invalidf("%s lists its dependencies for Poetry (%s) but the repository has no %s: run `poetry lock` and commit %s",
			join(sub, "pyproject.toml"), table, join(sub, "poetry.lock"), join(sub, "poetry.lock"))
	}
	deps := len(p.Project.Dependencies) > 0
	for _, d := range p.Project.Dynamic {
		deps = deps || d == "dependencies"
	}
	if !deps {
		return errNoDependencies
	}
	in.Kind = KindPyproject
	for _, d := range p.Project.Dependencies {
		if name, _, _ := parseRequirement(d); name != "" {
			in.Packages = append(in.Packages, name)
		}
	}
	return nil
}

// poetryTable names the first table of p that lists dependencies for
// Poetry (its python, the interpreter, is none), "" when none does.
func poetryTable(p *pyproject) string {
	for name := range p.Tool.Poetry.Dependencies {
		if name != "python" {
			return "[tool.poetry.dependencies]"
		}
	}
	for _, g := range sortedKeys(p.Tool.Poetry.Group) {
		if len(p.Tool.Poetry.Group[g].Dependencies) > 0 {
			return "[tool.poetry.group." + tomlKey(g) + ".dependencies]"
		}
	}
	if len(p.Tool.Poetry.DevDependencies) > 0 {
		return "[tool.poetry.dev-dependencies]"
	}
	return ""
}

// tomlKey writes a key as TOML would: bare when it can be, else quoted
// (a pushed file's key may hold anything).
func tomlKey(k string) string {
	if k != "" && strings.Trim(k, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		return k
	}
	return strconv.Quote(k)
}

// Requirements is the pinned requirements list converted from the lock
// file (poetry.lock, Pipfile.lock) or Pipfile, nil for the kinds uv reads
// itself. The builder writes it to a file and passes its path to Commands.
func (in *Install) Requirements() []byte {
	return in.requirements
}

// Commands are the commands that install the dependencies, each an argv
// to run in the install directory with VIRTUAL_ENV set to the virtualenv
// (uv pip installs into it). requirementsFile is a path the builder
// chose, outside the release tree, where it wrote Requirements() (for
// KindUV, where the first command writes uv's export of the lock); it is
// unused by the other kinds.
func (in *Install) Commands(requirementsFile string) [][]string {
	switch in.Kind {
	case KindRequirements:
		return [][]string{{"uv", "pip", "install", "-r", "requirements.txt"}}
	case KindUV:
		// uv sync would install from the lock's URLs (the index it was
		// locked against) and the project itself; the export keeps the
		// lock's pins and hashes and installs them from the host's index.
		return [][]string{
			{"uv", "export", "--frozen", "--format", "requirements.txt", "--no-default-groups",
				"--no-emit-workspace", "--no-header", "--output-file", requirementsFile},
			{"uv", "pip", "install", "-r", requirementsFile},
		}
	case KindPoetry, KindPipenv, KindPipfile:
		return [][]string{{"uv", "pip", "install", "-r", requirementsFile}}
	case KindPyproject:
		return [][]string{{"uv", "pip", "install", "-r", "pyproject.toml"}}
	}
	return nil
}

// Describe says in a few words what will be installed, for the build
// output.
func (in *Install) Describe() string {
	switch in.Kind {
	case KindRequirements:
		if n := len(in.Files) - 1; n > 0 {
			return fmt.Sprintf("requirements.txt (with %d included file%s)", n, plural(n))
		}
		return "requirements.txt"
	case KindUV:
		return fmt.Sprintf("uv.lock (%d packages)", len(in.Packages))
	case KindPoetry:
		return fmt.Sprintf("poetry.lock (%d packages, converted to a pinned requirements list)", len(in.Packages))
	case KindPipenv:
		return fmt.Sprintf("Pipfile.lock (%d packages, converted to a pinned requirements list)", len(in.Packages))
	case KindPipfile:
		return "Pipfile without Pipfile.lock (versions are not pinned)"
	case KindPyproject:
		return "pyproject.toml dependencies (no lock file: versions are not pinned)"
	}
	return string(in.Kind)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ReuseKey is the identity of the virtualenv that in installs with the
// interpreter python (its full version, say 3.12.7, and whatever else
// tells one build of it from another): a hex SHA-256 of the kind, every
// input file's content (requirements includes too), the generated
// requirements, the install commands and the interpreter. Equal keys mean
// an existing virtualenv can be reused with no install at all.
func ReuseKey(in *Install, python string) string {
	h := sha256.New()
	fmt.Fprintf(h, "conductor pybuild virtualenv v1\nkind %s\npython %q\n", in.Kind, python)
	names := append([]string(nil), in.Files...)
	sort.Strings(names)
	for _, n := range names {
		sum := in.sums[n]
		fmt.Fprintf(h, "file %q %x\n", n, sum[:])
	}
	if in.requirements != nil {
		fmt.Fprintf(h, "generated %x\n", sha256.Sum256(in.requirements))
	}
	for _, c := range in.Commands("REQUIREMENTS") {
		fmt.Fprintf(h, "run %q\n", c)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// wsgiServers are distributions that serve a WSGI or ASGI app.
var wsgiServers = []string{"gunicorn", "uvicorn", "waitress", "uwsgi", "pyuwsgi", "hypercorn", "daphne", "granian", "bjoern", "meinheld"}

// HasWSGIServer tells whether one of the servers that can run a Django app
// (gunicorn, uvicorn, waitress, uWSGI, hypercorn, daphne, granian...) is
// among the packages in installs, and which: the builder adds a pinned
// gunicorn to an app that has none and no web process of its own.
func HasWSGIServer(in *Install) (name string, ok bool) {
	for _, s := range wsgiServers {
		if in.Has(s) {
			return s, true
		}
	}
	return "", false
}

// Has tells whether the distribution name is among in's packages.
func (in *Install) Has(name string) bool {
	n := normName(name)
	i := sort.SearchStrings(in.Packages, n)
	return i < len(in.Packages) && in.Packages[i] == n
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// tomlProblem shortens a TOML parse error to its position and message.
func tomlProblem(err error) string {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("line %d: %s", pe.Position.Line, pe.Message)
	}
	return err.Error()
}
