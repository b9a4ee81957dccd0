package pybuild

import (
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
)

// Bounds of a walk through a pushed tree: a repository with a million
// files or a deep maze of directories costs the same as a small one.
const (
	maxWalkEntries = 5000
	maxWalkDirs    = 500
)

// skipDirs are directories that hold no project code: dependencies,
// build output, virtualenvs, collected static files.
var skipDirs = map[string]bool{
	"node_modules": true, "__pycache__": true, "site-packages": true,
	"venv": true, "env": true, "virtualenv": true,
	"static": true, "staticfiles": true, "media": true,
	"dist": true, "build": true, "htmlcov": true,
}

// walk calls fn for the entries of root/sub down to depth levels (1: sub's
// own entries), in lexical order, breadth first. Hidden entries and
// skipDirs are passed over; symbolic links are reported as files, never
// followed into, so a link cycle or a link out of the tree leads nowhere.
func walk(root, sub string, depth int, fn func(rel string, isDir bool)) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return
	}
	defer r.Close()
	entries, dirs := 0, 0
	level := []string{sub}
	for d := 0; d < depth && len(level) > 0; d++ {
		var next []string
		for _, dir := range level {
			if dirs++; dirs > maxWalkDirs {
				return
			}
			f, err := r.Open(filepath.FromSlash(dir))
			if err != nil {
				continue
			}
			list, err := f.ReadDir(maxWalkEntries - entries + 1)
			f.Close()
			if err != nil && err != io.EOF && len(list) == 0 {
				continue
			}
			sort.Slice(list, func(i, j int) bool { return list[i].Name() < list[j].Name() })
			for _, e := range list {
				if entries++; entries > maxWalkEntries {
					return
				}
				name := e.Name()
				if name == "" || name[0] == '.' {
					continue
				}
				rel := path.Join(dir, name)
				isDir := e.Type().IsDir() // from lstat: a link to a directory is not one
				if isDir && skipDirs[name] {
					continue
				}
				fn(rel, isDir)
				if isDir {
					next = append(next, rel)
				}
			}
		}
		level = next
	}
}
