package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSeededFirstDeploy: once one app has installed Django, root's seed
// holds Django's modules compiled, and a second app's first deploy links
// them into its new virtualenv instead of compiling them (Python uses
// them: they match the source). The seed is root's: neither app's user can
// change a compiled module, add one, move one or hard-link one, nor list
// the seed; the second app's cache holds no file of root's.
func TestSeededFirstDeploy(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	a, b := "seed-first", "seed-second"
	claimApp(t, a)
	claimApp(t, b)
	work := in.WorkTree("hello")
	if r := in.Push(work, a, "main"); r.Code != 0 {
		t.Fatalf("push %s: %s", a, r)
	} else if strings.Contains(r.Stdout+r.Stderr, "host's package seed") {
		t.Fatalf("the first app's push linked a seed that should not exist yet: %s", r)
	}
	// The seeding runs after the first app's virtualenv, in the background.
	if !in.waitSeeded(t, 1) {
		t.Fatalf("the seed was never filled:\n%s", in.logs.String())
	}

	r := in.Push(work, b, "main")
	if r.Code != 0 {
		t.Fatalf("push %s: %s", b, r)
	}
	if out := r.Stdout + r.Stderr; !strings.Contains(out, "directories from the host's package seed") {
		t.Fatalf("the second app's first deploy did not link the seed's compiled modules:\n%s", out)
	}
	if code, body, _ := in.Get(b, "/"); code != 200 {
		t.Fatalf("GET / of %s: %d %s", b, code, body)
	}

	seed := filepath.Join(in.Data, "srv", "uv-seed")
	links, _ := filepath.Glob(filepath.Join(in.Data, "srv", "environments", b, "*", "lib", "python3*", "site-packages", "django", "db", "models", "__pycache__"))
	if len(links) != 1 {
		t.Fatalf("django/db/models/__pycache__ in %s's virtualenv: %q", b, links)
	}
	target, err := os.Readlink(links[0])
	if err != nil || !strings.HasPrefix(target, seed+"/") {
		t.Fatalf("%s is not a link into the seed: %q, %v", links[0], target, err)
	}
	pycs, _ := filepath.Glob(filepath.Join(target, "*.pyc"))
	if len(pycs) == 0 {
		t.Fatalf("no compiled module in %s", target)
	}
	for _, p := range append(pycs, target) {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
			t.Fatalf("%s: uid %d, mode %v: not root's alone", p, st.Uid, fi.Mode())
		}
	}
	venv := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(links[0])))))))
	userB := lookupAppUser(t, b)
	// Python finds the seed's module valid for the app's own source.
	out := userB.sh(t, fmt.Sprintf("cd /tmp && %s -v -c 'import django.db.models' 2>&1\n", shellQuote(filepath.Join(venv, "bin", "python"))))
	if !strings.Contains(out.Stdout, filepath.Join(links[0], "__init__.cpython-")) || !strings.Contains(out.Stdout, " matches "+filepath.Join(filepath.Dir(links[0]), "__init__.py")) {
		t.Fatalf("python did not use the seed's module:\n%s", out)
	}

	for _, app := range []string{a, b} {
		u := lookupAppUser(t, app)
		home := filepath.Join(in.Data, "srv", "projects", app, "home")
		script := fmt.Sprintf(`d=%s; f=%s; home=%s
(echo x >> "$f") 2>/dev/null && echo CHANGED
(true > "$d/planted.cpython-311.pyc") 2>/dev/null && echo ADDED
mv "$f" "$f.x" 2>/dev/null && echo MOVED
ln "$f" "$home/linked.pyc" 2>/dev/null && echo LINKED
ls %s >/dev/null 2>&1 && echo LISTED
echo done
`, shellQuote(target), shellQuote(pycs[0]), shellQuote(home), shellQuote(seed))
		r := u.sh(t, script)
		if strings.TrimSpace(r.Stdout) != "done" {
			t.Fatalf("%s's user could change the seed: %s", app, r)
		}
	}

	// The second app's cache is its own: uv's interpreter facts copied
	// in, no file of root's.
	var roots []string
	_ = filepath.WalkDir(filepath.Join(in.Data, "srv", "environments", b, ".cache"), func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if fi, err := e.Info(); err == nil && fi.Sys().(*syscall.Stat_t).Uid != userB.uid {
			roots = append(roots, p)
		}
		return nil
	})
	if len(roots) != 0 {
		t.Fatalf("files of another user in %s's cache: %q", b, roots)
	}
}

// waitSeeded waits until n seedings have ended (each logs "uv seed: added"
// or "uv seed: nothing added" once its files are in place), and says
// whether they all added something. The first deploy of an instance
// starts one in the background, after its push returned.
func (in *Instance) waitSeeded(t *testing.T, n int) bool {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		logs := in.logs.String()
		added := strings.Count(logs, `msg="uv seed: added"`)
		if ended := added + strings.Count(logs, `msg="uv seed: nothing added"`); ended >= n {
			return added >= n
		}
		if time.Now().After(deadline) {
			t.Fatalf("no end of %d seeding(s) in conductor's log in 3 min", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
