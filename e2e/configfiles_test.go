package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// configWorkTree is the hello app with the views of e2e/testdata/configfiles
// (GET /secret answers secrets.json as the app reads it, POST /upload
// counts the body) and a repository file at secrets.json.
func (in *Instance) configWorkTree(t *testing.T) string {
	t.Helper()
	work := in.WorkTree("hello")
	src := filepath.Join("testdata", "configfiles")
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(work, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	in.Commit(work, "config file views")
	return work
}

// currentDir is the serving release's directory.
func (in *Instance) currentDir(t *testing.T, app string) string {
	t.Helper()
	dir, err := os.Readlink(filepath.Join(in.Data, "srv", "projects", app, "current"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func (in *Instance) wantSecret(t *testing.T, app, want string) {
	t.Helper()
	if code, body, _ := in.Get(app, "/secret"); code != 200 || body != want {
		t.Fatalf("GET /secret = %d %q, want 200 %q", code, body, want)
	}
}

// wantPlaced checks the config file on disk: a regular file, 0600, the
// app user's, with the content.
func wantPlaced(t *testing.T, path, app, content string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("config file: %v", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 || fileOwner(fi) != app {
		t.Errorf("%s: mode %v owner %s, want a regular file 0600 owned by %s", path, fi.Mode(), fileOwner(fi), app)
	}
	if b, _ := os.ReadFile(path); string(b) != content {
		t.Errorf("%s holds %q, want %q", path, b, content)
	}
}

// TestConfigFiles: config:file stores a file the app reads at its path in
// every release, 0600 and the app's; a repository file there is replaced
// (the push says so); it survives pushes and is in backups; listings never
// show the content; paths are validated; links the app user plants at the
// path or on the way to it are never followed by root; config:file:remove
// takes it away from the serving release.
func TestConfigFiles(t *testing.T) {
	t.Parallel()
	const app = "cfgfiles"
	cleanAppUsers(t, app)
	in := StartInstance(t)
	admin := in.AdminKey
	work := in.configWorkTree(t)

	// Stored before the first push: it applies to the first deploy.
	first := `{"token": "s3cret-marker-1"}`
	must(t, "apps:create", in.SSH(admin, "apps:create "+app))
	out := must(t, "config:file", in.SSHIn(admin, "config:file "+app+" secrets.json", first))
	if !strings.Contains(out, "Stored secrets.json") || strings.Contains(out, "s3cret") {
		t.Errorf("config:file output: %q", out)
	}
	r := in.pushOK(work, app)
	if !strings.Contains(r.Stderr, "Config file secrets.json ("+strconv.Itoa(len(first))+" bytes) (replaces the repository's file)") {
		t.Errorf("the push does not say the repository's secrets.json was replaced: %s", r.Stderr)
	}
	if strings.Contains(r.Stderr, "s3cret") {
		t.Errorf("the push output shows the file's content: %s", r.Stderr)
	}
	in.wantSecret(t, app, first)
	wantPlaced(t, filepath.Join(in.releaseDir(t, app, r), "secrets.json"), app, first)

	// Listed without content, as text and JSON.
	list := must(t, "config:files", in.SSH(admin, "config:files "+app))
	sum := sha256.Sum256([]byte(first))
	if !strings.Contains(list, "secrets.json") || !strings.Contains(list, hex.EncodeToString(sum[:])[:12]) || !strings.Contains(list, " "+strconv.Itoa(len(first))+" ") || strings.Contains(list, "s3cret") {
		t.Errorf("config:files:\n%s", list)
	}
	var files []map[string]any
	if err := json.Unmarshal([]byte(must(t, "config:files --json", in.SSH(admin, "config:files "+app+" --json"))), &files); err != nil || len(files) != 1 {
		t.Fatalf("config:files --json: %v %v", files, err)
	}
	if files[0]["path"] != "secrets.json" || files[0]["sha256"] != hex.EncodeToString(sum[:]) || files[0]["size"] != float64(len(first)) || files[0]["updated_by"] != "admin" {
		t.Errorf("config:files --json: %v", files[0])
	}
	if _, ok := files[0]["content"]; ok {
		t.Errorf("config:files --json has the content: %v", files[0])
	}

	// A change restarts the app with the new file.
	second := `{"token": "s3cret-marker-2"}`
	r = in.SSHIn(admin, "config:file "+app+" secrets.json", second)
	if r.Code != 0 || !strings.Contains(r.Stdout+r.Stderr, "Deployed") {
		t.Fatalf("config:file with a restart: %s", r)
	}
	in.wantSecret(t, app, second)

	// The next push places it again.
	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	r = in.pushOK(work, app)
	in.wantSecret(t, app, second)
	wantPlaced(t, filepath.Join(in.releaseDir(t, app, r), "secrets.json"), app, second)

	// Invalid paths and sizes change nothing.
	list = must(t, "config:files", in.SSH(admin, "config:files "+app))
	for _, tc := range []struct{ path, content, want string }{
		{"../secrets.json", "x", `may not contain ".."`},
		{"/etc/passwd", "x", "absolute"},
		{"staticfiles/leak.json", "x", "nginx serves"},
		{"local_settings.py", "x", "reserved"},
		{"'a b'", "x", "may only hold"},
		{"big.json", strings.Repeat("x", 512<<10+1), "larger than 512 KiB"},
		{"empty.json", "", "no file on stdin"},
	} {
		r := in.SSHIn(admin, "config:file "+app+" "+tc.path, tc.content)
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("config:file %s: want an error saying %q: %s", tc.path, tc.want, r)
		}
	}
	if list2 := must(t, "config:files", in.SSH(admin, "config:files "+app)); list2 != list {
		t.Errorf("a refused config:file changed the list:\n%s\nwas\n%s", list2, list)
	}

	// A developer stores and lists; only an admin reads the content back.
	dev := in.NewKey("dev")
	must(t, "keys:add dev", in.SSHIn(admin, "keys:add dev", readFile(t, dev+".pub")))
	must(t, "access:grant", in.SSH(admin, "access:grant "+app+" dev"))
	if r := in.SSH(dev, "config:file:get "+app+" secrets.json"); r.Code == 0 || strings.Contains(r.Stdout, "s3cret") {
		t.Errorf("a developer read the content: %s", r)
	}
	if got := must(t, "config:file:get", in.SSH(admin, "config:file:get "+app+" secrets.json")); got != second {
		t.Errorf("config:file:get = %q, want %q", got, second)
	}
	must(t, "config:files as dev", in.SSH(dev, "config:files "+app))
	if audit := must(t, "audit", in.SSH(admin, "audit")); !strings.Contains(audit, "config:file") || strings.Contains(audit, "s3cret") {
		t.Errorf("audit:\n%s", audit)
	}

	// It is in the backup: the archive's snapshot of the state holds it.
	archive := filepath.Join(in.Dir, "backup.tar.gz")
	must(t, "backup", runCmd(t, "", nil, nil, conductorBin, "backup", "--data", in.Data, "--out", archive))
	if got := backupStateQuery(t, archive, `SELECT content FROM config_files WHERE path = 'secrets.json'`); got != second {
		t.Errorf("the backup's state holds %q, want %q", got, second)
	}

	// The app user replaces the file with a link to a root file: root
	// replaces the link, never writes through it.
	u := lookupAppUser(t, app)
	outside := filepath.Join(in.Dir, "roots-file.txt")
	if err := os.WriteFile(outside, []byte("root's own\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A restart links the serving release's files into a directory of its
	// own, the planted link too, and replaces it there.
	cur := in.currentDir(t, app)
	must(t, "plant a link", u.sh(t, "ln -sf "+shellQuote(outside)+" "+shellQuote(filepath.Join(cur, "secrets.json"))))
	third := `{"token": "s3cret-marker-3"}`
	if r := in.SSHIn(admin, "config:file "+app+" secrets.json", third); r.Code != 0 {
		t.Fatalf("config:file over a planted link: %s", r)
	}
	if b, _ := os.ReadFile(outside); string(b) != "root's own\n" {
		t.Errorf("root wrote through the planted link: %q", b)
	}
	if fi, err := os.Stat(outside); err != nil || fi.Mode().Perm() != 0o644 || fileOwner(fi) != "root" {
		t.Errorf("the link's target changed: %v %v", fi, err)
	}
	if cur2 := in.currentDir(t, app); cur2 == cur {
		t.Errorf("the restart ran in the serving release's directory %s", cur)
	} else {
		cur = cur2
	}
	planted := filepath.Join(cur, "secrets.json")
	wantPlaced(t, planted, app, third)
	in.wantSecret(t, app, third)

	// A link on the way to a file (conf -> a root dir) fails the restart
	// and nothing is written there; the release keeps serving.
	outsideDir := filepath.Join(in.Dir, "roots-dir")
	if err := os.Mkdir(outsideDir, 0o755); err != nil {
		t.Fatal(err)
	}
	must(t, "plant a dir link", u.sh(t, "ln -s "+shellQuote(outsideDir)+" "+shellQuote(filepath.Join(cur, "conf"))))
	r = in.SSHIn(admin, "config:file "+app+" conf/db.json", `{"db": "s3cret"}`)
	if r.Code == 0 || !strings.Contains(r.Stdout+r.Stderr, "symbolic link") {
		t.Errorf("config:file through a linked dir: want a failed restart naming the link: %s", r)
	}
	if entries, _ := os.ReadDir(outsideDir); len(entries) != 0 {
		t.Errorf("root wrote into the linked dir: %v", entries)
	}
	in.wantSecret(t, app, third)
	must(t, "remove the dir link", u.sh(t, "rm "+shellQuote(filepath.Join(cur, "conf"))))
	r = in.SSH(admin, "ps:restart "+app)
	if r.Code != 0 {
		t.Fatalf("ps:restart: %s", r)
	}
	cur = in.currentDir(t, app)
	wantPlaced(t, filepath.Join(cur, "conf", "db.json"), app, `{"db": "s3cret"}`)
	if fi, err := os.Stat(filepath.Join(cur, "conf")); err != nil || fi.Mode().Perm() != 0o750 || fileOwner(fi) != app {
		t.Errorf("the made dir conf: %v %v, want 0750 and %s's", fi, err, app)
	}

	// Removing takes the file out of the serving release.
	must(t, "config:file:remove", in.SSH(admin, "config:file:remove "+app+" secrets.json"))
	if code, body, _ := in.Get(app, "/secret"); code != 404 {
		t.Errorf("after config:file:remove, GET /secret = %d %q, want 404", code, body)
	}
	if p := filepath.Join(in.currentDir(t, app), "secrets.json"); p == planted {
		t.Errorf("config:file:remove restarted in the serving release's directory")
	} else if _, err := os.Lstat(p); err == nil {
		t.Errorf("%s is still there after config:file:remove", p)
	}
	if r := in.SSH(admin, "config:file:remove "+app+" secrets.json"); r.Code == 0 || !strings.Contains(r.Stderr, "has no config file secrets.json") {
		t.Errorf("removing it again: %s", r)
	}
	// The next push brings back the repository's own file.
	setVersion(t, work, "v3")
	in.Commit(work, "v3")
	in.pushOK(work, app)
	in.wantSecret(t, app, "{\"from\": \"the repository\"}\n")
}

// post sends body to the app's path through the front nginx.
func (in *Instance) post(app, path string, body []byte) (int, string) {
	in.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+in.HTTPAddr+path, bytes.NewReader(body))
	req.Host = app + ".localhost"
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMaxBody: an app takes uploads up to 100m by default (nginx's own
// default is 1m), CONDUCTOR_MAX_BODY sets its limit, and a value that is
// not a size is refused and changes nothing.
func TestMaxBody(t *testing.T) {
	t.Parallel()
	const app = "upsize"
	cleanAppUsers(t, app)
	in := StartInstance(t)
	admin := in.AdminKey
	in.pushOK(in.configWorkTree(t), app)
	five := bytes.Repeat([]byte("u"), 5<<20)
	if code, body := in.post(app, "/upload", five); code != 200 || body != "received 5242880 bytes\n" {
		t.Fatalf("a 5 MB upload with the default limit: %d %q", code, body)
	}
	site, err := os.ReadFile(filepath.Join(in.Data, "nginx", "sites", app+".conf"))
	if err != nil || !bytes.Contains(site, []byte("client_max_body_size 100m;")) {
		t.Errorf("the app's server block has no client_max_body_size 100m (%v):\n%s", err, site)
	}

	must(t, "config:set", in.SSH(admin, "config:set "+app+" CONDUCTOR_MAX_BODY=1m"))
	if code, body := in.post(app, "/upload", five); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a 5 MB upload with CONDUCTOR_MAX_BODY=1m: %d %q, want 413", code, body)
	}
	if code, body := in.post(app, "/upload", bytes.Repeat([]byte("u"), 1<<19)); code != 200 {
		t.Errorf("a 512 KiB upload with CONDUCTOR_MAX_BODY=1m: %d %q", code, body)
	}

	before := must(t, "deploys", in.SSH(admin, "deploys "+app))
	for _, bad := range []string{"12x", "0", "1m;", "11g", "'1 m'"} {
		r := in.SSH(admin, "config:set "+app+" CONDUCTOR_MAX_BODY="+bad)
		if r.Code == 0 || !strings.Contains(r.Stderr, "CONDUCTOR_MAX_BODY") {
			t.Errorf("config:set CONDUCTOR_MAX_BODY=%s: want a refusal: %s", bad, r)
		}
	}
	if got := strings.TrimSpace(must(t, "config:get", in.SSH(admin, "config:get "+app+" CONDUCTOR_MAX_BODY"))); got != "1m" {
		t.Errorf("after refused values CONDUCTOR_MAX_BODY = %q, want 1m", got)
	}
	if after := must(t, "deploys", in.SSH(admin, "deploys "+app)); after != before {
		t.Errorf("a refused value restarted the app:\n%s\nwas\n%s", after, before)
	}

	must(t, "config:unset", in.SSH(admin, "config:unset "+app+" CONDUCTOR_MAX_BODY"))
	if code, body := in.post(app, "/upload", five); code != 200 {
		t.Errorf("a 5 MB upload after config:unset: %d %q", code, body)
	}
}

// backupStateQuery runs query on the state snapshot (conductor.db) in a
// backup archive.
func backupStateQuery(t *testing.T, archive, query string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no conductor.db in the backup: %v", err)
		}
		if h.Name != "conductor.db" {
			continue
		}
		db := filepath.Join(t.TempDir(), "conductor.db")
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(db, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("sqlite3", db, query).CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3: %v %s", err, out)
		}
		return strings.TrimSuffix(string(out), "\n")
	}
}

// TestConfigFilesRollback: a rollback places the app's config files as
// they are now: one removed since the release ran is not in the rollback's
// directory (a removed secret does not come back), and one added since is
// placed in it. The kept release's own directory is left as it was.
func TestConfigFilesRollback(t *testing.T) {
	t.Parallel()
	const app = "cfgroll"
	cleanAppUsers(t, app)
	in := StartInstance(t)
	admin := in.AdminKey
	work := in.configWorkTree(t)
	must(t, "apps:create", in.SSH(admin, "apps:create "+app))
	must(t, "config:file", in.SSHIn(admin, "config:file "+app+" secrets.json", "old-secret"))
	r := in.pushOK(work, app) // v1
	v1 := in.releaseDir(t, app, r)
	in.wantSecret(t, app, "old-secret")
	setVersion(t, work, "v2")
	in.Commit(work, "v2")
	in.pushOK(work, app) // v2

	must(t, "config:file:remove", in.SSH(admin, "config:file:remove "+app+" secrets.json")) // v3
	if code, _, _ := in.Get(app, "/secret"); code != 404 {
		t.Fatalf("after config:file:remove, GET /secret = %d, want 404", code)
	}
	must(t, "rollback to v1", in.SSH(admin, "rollback "+app+" v1")) // v4, v1's files in a dir of its own
	if code, body, _ := in.Get(app, "/secret"); code != 404 {
		t.Errorf("after a rollback to v1, GET /secret = %d %q: the removed file came back", code, body)
	}
	_, _, v4 := in.currentRelease(app)
	if v4 == v1 {
		t.Errorf("the rollback runs in v1's directory %s, want one of its own", v1)
	}
	if _, err := os.Lstat(filepath.Join(v4, "secrets.json")); err == nil {
		t.Errorf("the removed config file is in the rollback's directory")
	}
	if b, err := os.ReadFile(filepath.Join(v1, "secrets.json")); err != nil || string(b) != "old-secret" {
		t.Errorf("v1's own secrets.json = %q, %v: want it as v1 left it", b, err)
	}

	must(t, "config:file new", in.SSHIn(admin, "config:file "+app+" secrets.json --no-restart", "new-secret"))
	must(t, "rollback to v2", in.SSH(admin, "rollback "+app+" v2"))
	in.wantSecret(t, app, "new-secret")
}
