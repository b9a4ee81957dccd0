package e2e

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// markers are files a hostile input would create if any of it ran as
// code; none may exist after the suite.
var markers = []string{"/tmp/conductor-hostile-cfg", "/tmp/conductor-hostile-tick", "/tmp/conductor-hostile-proc",
	"/root/conductor-hostile-target", "/etc/conductor-hostile"}

// djangoEscape is django.utils.html.escape, as the hello app shows GREETING.
func djangoEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#x27;").Replace(s)
}

// TestHostile replays hostile input against a deployed app: config values,
// domains, branch names, a Procfile, requirements and symlinks. Each is
// refused with a clear message or kept as data; none runs code outside the
// app's own processes or writes outside the app's directories, and the
// serving release keeps serving.
func TestHostile(t *testing.T) {
	t.Parallel()
	for _, m := range markers {
		_ = os.Remove(m)
	}
	in := StartInstance(t)
	work := in.WorkTree("hello")
	in.pushOK(work, "hostile")
	serving := func(t *testing.T) {
		t.Helper()
		code, body, _ := in.Get("hostile", "/")
		if code != 200 || !strings.Contains(body, "Hello from Conductor") {
			t.Fatalf("the app stopped serving: %d %q", code, body)
		}
	}
	noMarkers := func(t *testing.T) {
		t.Helper()
		for _, m := range markers {
			if _, err := os.Lstat(m); err == nil {
				t.Errorf("%s exists: hostile input ran or wrote outside the app", m)
			}
		}
	}
	// tryPush commits a change, pushes it expecting a refusal mentioning
	// want, and undoes the commit so the next case starts from the
	// deployed tree.
	tryPush := func(t *testing.T, want string, change func()) Result {
		t.Helper()
		change()
		in.Commit(work, "hostile")
		defer in.mustGit(work, "reset", "-q", "--hard", "HEAD~1")
		r := in.Push(work, "hostile", "main")
		if r.Code == 0 || !strings.Contains(r.Stderr, want) {
			t.Errorf("push: want a refusal mentioning %q, got %s", want, r)
		}
		return r
	}
	writeFile := func(name, content string) func() {
		return func() {
			if err := os.WriteFile(filepath.Join(work, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("config values", func(t *testing.T) {
		value := "it's \"quoted\" $(touch /tmp/conductor-hostile-cfg) `touch /tmp/conductor-hostile-tick` ; \\ %s {}\n" +
			"second line \u00fcn\u00efc\u00f8d\u00e9 \U0001F600 </p><script>"
		r := in.SSH(in.AdminKey, "config:set hostile GREETING="+shellQuote(value))
		if r.Code != 0 {
			t.Fatalf("config:set with a hostile value: %s", r)
		}
		if got := must(t, "config:get", in.SSH(in.AdminKey, "config:get hostile GREETING")); strings.TrimSuffix(got, "\n") != value {
			t.Errorf("config:get = %q, want %q", got, value)
		}
		// The app gets the value as data, byte for byte, in its environment.
		waitFor(t, "the app to show the new greeting", func() bool {
			_, body, _ := in.Get("hostile", "/")
			return strings.Contains(body, "<p>greeting: "+djangoEscape(value)+"</p>")
		})
		noMarkers(t)

		// A NUL cannot be typed into ssh's command line: send it raw.
		client := in.dialSSH(in.AdminKey)
		defer client.Close()
		for _, cmd := range []string{"config:set hostile 'A=x\x00y'", "domains:add hostile 'a.example.org\x00b'"} {
			sess, err := client.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			out, err := sess.CombinedOutput(cmd)
			if err == nil || !strings.Contains(string(out), "error: ") {
				t.Errorf("%q: want a refusal, got %v %q", cmd, err, out)
			}
			if strings.HasPrefix(cmd, "config") && !strings.Contains(string(out), "NUL byte") {
				t.Errorf("%q: the refusal should say why: %q", cmd, out)
			}
		}
		if got := must(t, "config", in.SSH(in.AdminKey, "config hostile --json")); strings.Contains(got, `"A"`) {
			t.Errorf("a value with a NUL was stored: %s", got)
		}
	})

	t.Run("domains", func(t *testing.T) {
		for _, d := range []string{"evil.org;\n}\nserver { listen 80; root /; }", "a\"b.org", "a'b.org", "$(id).org", "`id`.org",
			"\u00fcn\u00efc\u00f8d\u00e9.org", "a.org\nb.org", "a b.org", "*.evil.org", "a.org;include /etc/passwd"} {
			refused(t, "domains:add "+d, in.SSH(in.AdminKey, "domains:add hostile "+shellQuote(d)), "invalid domain")
		}
		if got := must(t, "domains", in.SSH(in.AdminKey, "domains hostile --json")); strings.Contains(got, "org") {
			t.Errorf("a hostile domain was stored: %s", got)
		}
		conf, err := os.ReadFile(filepath.Join(in.Data, "nginx", "sites", "hostile.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(conf), "evil") || strings.Count(string(conf), "server {") != 1 {
			t.Errorf("the site changed:\n%s", conf)
		}
		serving(t)
	})

	t.Run("branches", func(t *testing.T) {
		before := must(t, "deploys", in.SSH(in.AdminKey, "deploys hostile --json"))
		for _, b := range []string{"x;touch-conductor-hostile", "$(id)", "`id`", "a'b", `a"b`, "a|b&c", "\u00fcn\u00efc\u00f8d\u00e9", "${IFS}x", "a<b>c"} {
			in.mustGit(work, "branch", "-f", b)
			r := in.Push(work, "hostile", "refs/heads/"+b)
			if r.Code == 0 || !strings.Contains(r.Stderr, "invalid ref") {
				t.Errorf("push of branch %q: want a refusal mentioning \"invalid ref\", got %s", b, r)
			}
		}
		// An unusual but valid name is stored and not deployed.
		in.mustGit(work, "branch", "-f", "feature/odd.name_1-2")
		if r := in.Push(work, "hostile", "feature/odd.name_1-2"); r.Code != 0 {
			t.Errorf("push of feature/odd.name_1-2: %s", r)
		}
		refs := runCmd(t, "", nil, nil, "git", "--git-dir", filepath.Join(in.Data, "repos", "hostile.git"),
			"for-each-ref", "--format=%(refname)").Stdout
		if strings.TrimSpace(refs) != "refs/heads/feature/odd.name_1-2\nrefs/heads/main" {
			t.Errorf("refs after the branch pushes:\n%s", refs)
		}
		if after := must(t, "deploys", in.SSH(in.AdminKey, "deploys hostile --json")); after != before {
			t.Errorf("a branch push deployed:\nbefore %s\nafter %s", before, after)
		}
		serving(t)
		noMarkers(t)
	})

	t.Run("procfile", func(t *testing.T) {
		// Procfile commands are the app's own code, run by bash as the app
		// user (as Heroku and Dokku run them): shell operators work, and
		// what a command tries beyond that user's reach fails as that user.
		tryPush(t, "release command failed", writeFile("Procfile",
			"web: gunicorn hello.wsgi --log-file -\nrelease: echo hostile > /root/conductor-hostile-target\n"))
		serving(t)
		writeFile("Procfile", "web: touch /etc/conductor-hostile ; exec gunicorn hello.wsgi --log-file -\n")()
		in.Commit(work, "procfile reaching outside")
		if r := in.Push(work, "hostile", "main"); r.Code != 0 {
			t.Errorf("push of a web command whose first part fails: %s", r)
		}
		writeFile("Procfile", "web: gunicorn hello.wsgi --log-file -\n")()
		in.Commit(work, "plain procfile")
		in.pushOK(work, "hostile")
		serving(t)
		noMarkers(t)
	})

	t.Run("terminal escapes in build output", func(t *testing.T) {
		// The release phase prints an OSC title sequence and a cursor
		// move: the pusher sees the text, never the escapes.
		writeFile("Procfile", "web: gunicorn hello.wsgi --log-file -\n"+
			`release: python -c "print(chr(27)+']0;pwned'+chr(7)+chr(27)+'[2Aescaped-build-line')"`+"\n")()
		in.Commit(work, "escapes")
		r := in.Push(work, "hostile", "main")
		// The pushed commit stays (the branch moved); the next cases start
		// from the original Procfile in a new commit on top of it.
		writeFile("Procfile", "web: gunicorn hello.wsgi --log-file -\n")()
		in.Commit(work, "no escapes")
		if r.Code != 0 || !strings.Contains(r.Stderr, "escaped-build-line") {
			t.Fatalf("push: %s", r)
		}
		if strings.ContainsAny(r.Stderr, "\x1b\x07") {
			t.Errorf("build output reached the pusher with terminal escapes: %q", r.Stderr)
		}
		serving(t)
	})

	t.Run("requirements", func(t *testing.T) {
		shadow, err := os.ReadFile("/etc/shadow")
		if err != nil {
			t.Fatal(err)
		}
		// Root reads requirements files (for the virtualenv's reuse key)
		// only inside the repository; the installer runs as the app user.
		r := tryPush(t, `requirements.txt includes "/etc/shadow", which is outside the repository`, writeFile("requirements.txt", "-r /etc/shadow\n"))
		if line, _, _ := strings.Cut(string(shadow), "\n"); strings.Contains(r.Stderr, line) {
			t.Errorf("the build printed /etc/shadow")
		}
		tryPush(t, "installing the dependencies failed", writeFile("requirements.txt", "--target /root/conductor-hostile-target\nDjango==5.2.19\n"))
		tryPush(t, "installing the dependencies failed", writeFile("requirements.txt", "-e ../../..\n"))
		tryPush(t, "installing the dependencies failed", writeFile("requirements.txt", "-e /etc\n"))
		serving(t)
		noMarkers(t)
	})

	t.Run("symlinks", func(t *testing.T) {
		shadow, err := os.ReadFile("/etc/shadow")
		if err != nil {
			t.Fatal(err)
		}
		before, err := os.Stat("/etc/shadow")
		if err != nil {
			t.Fatal(err)
		}
		symlink := func(target, name string) func() {
			return func() {
				if err := os.Symlink(target, filepath.Join(work, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
		// A link out of the release fails the push at unpack, naming it.
		tryPush(t, "symlink static/evil points outside the release (/etc/shadow)", symlink("/etc/shadow", "static/evil"))
		tryPush(t, "symlink staticfiles points outside the release (/etc)", symlink("/etc", "staticfiles"))
		tryPush(t, "symlink static/up points outside the release (../..)", symlink("../..", "static/up"))
		// A link inside it is the repository's business; the static root
		// itself as a link (here to the app's sources) is removed by the
		// builder and collectstatic makes a real directory, so nginx serves
		// the app's collected files.
		symlink("static", "staticfiles")()
		in.Commit(work, "staticfiles -> static")
		if r := in.Push(work, "hostile", "main"); r.Code != 0 {
			t.Fatalf("push with staticfiles -> static: %s", r)
		}
		cur, err := os.Readlink(filepath.Join(in.Data, "srv", "projects", "hostile", "current"))
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(filepath.Join(cur, "staticfiles")); err != nil || !fi.IsDir() {
			t.Errorf("the served staticfiles is not a real directory: %v %v", fi, err)
		}
		if code, body, _ := in.Get("hostile", "/static/hello.css"); code != 200 || !strings.Contains(body, "conductor-example-static") {
			t.Errorf("GET /static/hello.css = %d %q, want the app's file", code, body)
		}

		for _, p := range []string{"/static/evil", "/static/shadow", "/static/passwd"} {
			if _, body, _ := in.Get("hostile", p); bytes.Contains([]byte(body), shadow[:min(len(shadow), 20)]) || strings.Contains(body, "root:x:0:0") {
				t.Errorf("GET %s served a system file: %q", p, body)
			}
		}
		after, err := os.Stat("/etc/shadow")
		if err != nil {
			t.Fatal(err)
		}
		bst, ast := before.Sys().(*syscall.Stat_t), after.Sys().(*syscall.Stat_t)
		if bst.Uid != ast.Uid || bst.Gid != ast.Gid || before.Mode() != after.Mode() {
			t.Errorf("/etc/shadow changed owner or mode: %v %d:%d -> %v %d:%d", before.Mode(), bst.Uid, bst.Gid, after.Mode(), ast.Uid, ast.Gid)
		}
		// No copy of /etc/shadow anywhere under the app's dirs.
		_ = filepath.WalkDir(filepath.Join(in.Data, "srv"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if b, err := os.ReadFile(p); err == nil && len(shadow) > 0 && bytes.Contains(b, shadow) {
				t.Errorf("%s holds a copy of /etc/shadow", p)
			}
			return nil
		})
		serving(t)
		noMarkers(t)
	})
}
