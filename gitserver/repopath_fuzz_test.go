package gitserver

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

// FuzzAppFromRepoPath: a repo path is accepted only when it is one of the
// spellings of a valid app name ("app", "/app", "app.git", "/app.git",
// each with an optional trailing "/"), and the repository it names is a
// direct child of the repos dir.
func FuzzAppFromRepoPath(f *testing.F) {
	for _, s := range []string{"hello", "/hello.git/", "../x", "/../../etc/passwd", "a/../../b", "hello.git.git", "hello/",
		"//hello", "hello//", "./hello", "hello/.", "héllo", "hello\x00", "root", "a--b", "-a", ".git", "/"} {
		f.Add(s)
	}
	repos := "/data/repos"
	f.Fuzz(func(t *testing.T, p string) {
		name, err := AppFromRepoPath(p)
		if err != nil {
			if name != "" {
				t.Fatalf("%q: name %q returned with the error", p, name)
			}
			return
		}
		if err := conductor.ValidateAppName(name); err != nil {
			t.Fatalf("%q accepted as %q: %v", p, name, err)
		}
		if strings.Contains(name, "/") || strings.Contains(name, "..") {
			t.Fatalf("%q accepted as %q", p, name)
		}
		spelled := false
		for _, s := range []string{name, "/" + name, name + ".git", "/" + name + ".git"} {
			spelled = spelled || p == s || p == s+"/"
		}
		if !spelled {
			t.Fatalf("%q accepted as %q but is not one of its spellings", p, name)
		}
		if dir := filepath.Join(repos, name+".git"); filepath.Dir(dir) != repos {
			t.Fatalf("%q names %s, outside %s", p, dir, repos)
		}
	})
}
