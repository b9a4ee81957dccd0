package pybuild

import (
	"github.com/BurntSushi/toml"
)

// uvLock is what is read of a uv.lock: the packages and their edges, to
// tell which distributions a non-dev install has.
type uvLock struct {
	Package []struct {
		Name                 string             `toml:"name"`
		Source               map[string]any     `toml:"source"`
		Dependencies         []uvDep            `toml:"dependencies"`
		OptionalDependencies map[string][]uvDep `toml:"optional-dependencies"`
		Metadata             struct {
			RequiresDist []struct {
				Name string `toml:"name"`
			} `toml:"requires-dist"`
		} `toml:"metadata"`
	} `toml:"package"`
}

type uvDep struct {
	Name  string   `toml:"name"`
	Extra []string `toml:"extra"`
}

// readUV reads pyproject.toml and uv.lock. uv itself installs from the
// lock (see Commands); here the lock is checked against pyproject.toml
// (a dependency missing from the lock means it was not re-locked, and a
// frozen install would leave it out silently) and walked for the names
// of what a non-dev install gets.
func (in *Install) readUV(root, sub string) error {
	p, err := in.readPyprojectFile(root, sub, true)
	if err != nil {
		return err
	}
	data, err := in.read(root, sub, "uv.lock", maxLock)
	if err != nil {
		return err
	}
	var lock uvLock
	if err := toml.Unmarshal(data, &lock); err != nil {
		return invalidf("%s: %v", join(sub, "uv.lock"), tomlProblem(err))
	}
	in.Kind = KindUV
	byName := map[string]int{}
	rootIdx := -1
	for i, pkg := range lock.Package {
		n := normName(pkg.Name)
		if _, dup := byName[n]; !dup {
			byName[n] = i
		}
		for _, k := range []string{"virtual", "editable"} {
			if s, _ := pkg.Source[k].(string); s == "." && (p.Project.Name == "" || normName(p.Project.Name) == n) {
				rootIdx = i
			}
		}
	}
	if rootIdx < 0 {
		for _, pkg := range lock.Package {
			in.Packages = append(in.Packages, normName(pkg.Name))
		}
		return nil
	}
	locked := map[string]bool{}
	for _, r := range lock.Package[rootIdx].Metadata.RequiresDist {
		locked[normName(r.Name)] = true
	}
	for _, d := range p.Project.Dependencies {
		if name, _, _ := parseRequirement(d); name != "" && !locked[name] {
			return invalidf("%s is out of date: %s, a dependency in pyproject.toml, is not in it; run `uv lock` and commit uv.lock", join(sub, "uv.lock"), name)
		}
	}
	// Walk the root's own dependencies (not its dev groups), with the
	// extras each edge asks for.
	type item struct {
		name  string
		extra []string
	}
	base := map[string]bool{}
	extras := map[string]bool{}
	queue := []item{}
	for _, d := range lock.Package[rootIdx].Dependencies {
		queue = append(queue, item{normName(d.Name), d.Extra})
	}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		i, ok := byName[it.name]
		if !ok {
			continue
		}
		pkg := lock.Package[i]
		if !base[it.name] {
			base[it.name] = true
			in.Packages = append(in.Packages, it.name)
			for _, k := range []string{"editable", "directory", "path"} {
				if s, ok := pkg.Source[k].(string); ok {
					in.Local = append(in.Local, s)
				}
			}
			for _, d := range pkg.Dependencies {
				queue = append(queue, item{normName(d.Name), d.Extra})
			}
		}
		for _, e := range it.extra {
			e = normName(e)
			if extras[it.name+"["+e+"]"] {
				continue
			}
			extras[it.name+"["+e+"]"] = true
			for _, d := range pkg.OptionalDependencies[e] {
				queue = append(queue, item{normName(d.Name), d.Extra})
			}
		}
	}
	return nil
}
