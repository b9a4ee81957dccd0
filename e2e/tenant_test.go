package e2e

// Tenant isolation (issue 14), shown from outside: a developer granted one
// app runs code as that app's unix user and nothing more. The developer
// plants symlinks wherever the app's user can write, pushes repositories
// made of links, and runs every command; after each step nothing outside
// the app changed and nothing outside the app showed.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cleanAppUsers removes, when the test ends, the unix users Conductor made
// for apps: their home is the instance's project dir, so a later run would
// be refused the name ("belongs to another Conductor instance"). Users left
// by an earlier run that was killed go first. Call it before StartInstance,
// so its cleanup runs after the instance (and the apps' processes) stopped.
func cleanAppUsers(t *testing.T, apps ...string) {
	t.Helper()
	stale := func(app string) bool {
		u, err := user.Lookup(app)
		if err != nil || u.Name != "conductor app" {
			return false
		}
		_, err = os.Stat(u.HomeDir)
		return errors.Is(err, fs.ErrNotExist)
	}
	for _, app := range apps {
		if stale(app) {
			_ = exec.Command("userdel", app).Run()
		}
	}
	t.Cleanup(func() {
		for _, app := range apps {
			for i := 0; i < 50 && stale(app); i++ { // its last processes may still be exiting
				if exec.Command("userdel", app).Run() == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	})
}

// appIdentity is the unix identity an app's code runs as.
type appIdentity struct {
	name     string
	uid, gid uint32
}

func lookupAppUser(t *testing.T, app string) appIdentity {
	t.Helper()
	u, err := user.Lookup(app)
	if err != nil {
		t.Fatalf("the app's unix user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return appIdentity{name: app, uid: uint32(uid), gid: uint32(gid)}
}

func (u appIdentity) command(script string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", "-s") // a script on stdin has no length limit
	cmd.Stdin = strings.NewReader(script)
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: []uint32{}},
		Setpgid:    true,
	}
	return cmd
}

// sh runs a shell script as the app's user, as the app's own code (a push,
// a `run`, a process) could.
func (u appIdentity) sh(t *testing.T, script string) Result {
	t.Helper()
	cmd := u.command(script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("run as %s: %v", u.name, err)
	}
	return Result{stdout.String(), stderr.String(), code}
}

// background starts a script as the app's user and returns what stops it
// (its whole process group).
func (u appIdentity) background(t *testing.T, script string) (stop func()) {
	t.Helper()
	cmd := u.command(script)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start as %s: %v", u.name, err)
	}
	return func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
}

// startOrErr is Start, returning an error instead of failing the test when
// serve does not come up, so a test can say which hostile file stopped it
// (and kill a serve that hangs).
func (in *Instance) startOrErr(within time.Duration) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cmd = exec.Command(conductorBin, in.serveCommandArgs()...)
	in.cmd.Stdout, in.cmd.Stderr = in.logs, in.logs
	readyBefore := strings.Count(in.logs.String(), readyLine)
	if err := in.cmd.Start(); err != nil {
		in.cmd = nil
		return err
	}
	in.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan<- error) { exited <- cmd.Wait() }(in.cmd, in.exited)
	deadline := time.After(within)
	for strings.Count(in.logs.String(), readyLine) == readyBefore {
		select {
		case err := <-in.exited:
			in.cmd = nil
			return fmt.Errorf("conductor serve exited before it was ready (%v)", err)
		case <-deadline:
			_ = in.cmd.Process.Kill()
			<-in.exited
			in.cmd = nil
			return fmt.Errorf("conductor serve was not ready within %s (killed)", within)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, addr := range []string{in.SSHAddr, in.HTTPAddr} {
		for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Since(start) > 60*time.Second {
				return fmt.Errorf("conductor serve said it was ready but %s does not answer", addr)
			}
		}
	}
	return nil
}

var releaseIDRE = regexp.MustCompile(`-----> Deployed \S+ at \S+ \(release ([^)\s]+)\)`)

// releaseDir is the release a successful push deployed.
func (in *Instance) releaseDir(t *testing.T, app string, r Result) string {
	t.Helper()
	m := releaseIDRE.FindStringSubmatch(r.Stderr)
	if m == nil {
		t.Fatalf("no release id in the push output: %s", r)
	}
	return filepath.Join(in.Data, "srv", "projects", app, "releases", m[1])
}

// findUnder lists the files under root (links not followed) for which match
// is true, sorted.
func findUnder(root string, match func(path string, d fs.DirEntry) bool) []string {
	var found []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && match(p, d) {
			found = append(found, p)
		}
		return nil
	})
	sort.Strings(found)
	return found
}

// hasComponent says whether a path has a component that is the app's name
// or begins with it ("<app>.git", "<app>_web_20001.ini", "<app>.conf").
func hasComponent(path, app string) bool {
	for _, c := range strings.Split(path, string(filepath.Separator)) {
		if c == app || strings.HasPrefix(c, app+"_") || strings.HasPrefix(c, app+".") {
			return true
		}
	}
	return false
}

// sentinels are root's files in a root-only directory, each with its own
// marker: a planted link points at one, so a sentinel that changed, or a
// marker that showed anywhere, names the link root followed.
type sentinels struct {
	dir    string
	prefix string
	re     *regexp.Regexp
	n      int
	link   map[string]string // sentinel file or dir (by base name) → the link that points at it
	fresh  []string          // made since the last call of takeFresh
}

func newSentinels(t *testing.T) *sentinels {
	dir := filepath.Join(t.TempDir(), "sentinels")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil { // whatever the umask
		t.Fatal(err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "sentinel_" + hex.EncodeToString(b) + "_"
	return &sentinels{dir: dir, prefix: prefix, re: regexp.MustCompile(prefix + `[0-9]+`), link: map[string]string{}}
}

// content is a sentinel's text: a valid Procfile, so root reading it as
// one goes on and shows the marker (as the web command) rather than
// stopping at a syntax error.
func (s *sentinels) content(marker string) []byte {
	return []byte("web: " + marker + "\n")
}

// file makes a sentinel file for the link at link.
func (s *sentinels) file(t *testing.T, link string) string {
	t.Helper()
	s.n++
	p := filepath.Join(s.dir, fmt.Sprintf("f%d", s.n))
	if err := os.WriteFile(p, s.content(s.prefix+strconv.Itoa(s.n)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.link[filepath.Base(p)] = link
	s.fresh = append(s.fresh, p)
	return p
}

// directory makes a sentinel dir (0700, with an index.html) for link.
func (s *sentinels) directory(t *testing.T, link string) string {
	t.Helper()
	s.n++
	d := filepath.Join(s.dir, fmt.Sprintf("d%d", s.n))
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "index.html"), s.content(s.prefix+strconv.Itoa(s.n)), 0o600); err != nil {
		t.Fatal(err)
	}
	s.link[filepath.Base(d)] = link
	s.fresh = append(s.fresh, d, filepath.Join(d, "index.html"))
	return d
}

func (s *sentinels) takeFresh() []string {
	f := s.fresh
	s.fresh = nil
	return f
}

// behind names the link behind a sentinel path ("" outside the sentinels).
func (s *sentinels) behind(p string) string {
	rel, err := filepath.Rel(s.dir, p)
	if err != nil || strings.HasPrefix(rel, "..") || rel == "." {
		return ""
	}
	first, _, _ := strings.Cut(rel, string(filepath.Separator))
	if l, ok := s.link[first]; ok {
		return " (sentinel of the link " + l + ")"
	}
	return " (in the sentinel dir)"
}

// markers lists the sentinel markers in text, each with its link.
func (s *sentinels) markers(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range s.re.FindAllString(text, -1) {
		if seen[m] {
			continue
		}
		seen[m] = true
		n := strings.TrimPrefix(m, s.prefix)
		l := s.link["f"+n]
		if l == "" {
			l = s.link["d"+n]
		}
		out = append(out, fmt.Sprintf("the content of sentinel %s (behind the link %s)", n, l))
	}
	return out
}

// A snapshot records type, owner, mode and content hash of every file under
// some roots (links not followed).
type snapEntry struct {
	typ, perm fs.FileMode
	uid, gid  uint32
	hash      string // regular files of classFull
	link      string // symlinks
}

type snapshot map[string]snapEntry

type pathClass int

const (
	classSkip  pathClass = iota // not recorded: the app's own trees
	classFull                   // type, owner, mode and content must not change; nothing may appear or go
	classChurn                  // content may change, files may come and go (state, logs, the app's own root-side files); a file that stays keeps its type, owner and mode
	classSeed                   // the host's package seed, which root fills in the background after a deploy (builder/seed.go): anything may change, but everything in it stays root's, written by no one else, its links inside it
)

// fileKey identifies a file's content without reading it: a write changes
// its ctime, which no one but the kernel sets.
type fileKey struct {
	dev, ino           uint64
	size, mtime, ctime int64
}

func keyOf(st *syscall.Stat_t) fileKey {
	return fileKey{uint64(st.Dev), st.Ino, st.Size, st.Mtim.Nano(), st.Ctim.Nano()}
}

// readRegular reads a regular file without following a link and without
// blocking on a FIFO an app could have put in its place.
func readRegular(p string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// hostileRun is one hostile developer against one instance: the app they
// were granted, an app they were not, and all they must not reach.
type hostileRun struct {
	in         *Instance
	app, other string
	dev        string // the developer's private key
	user       appIdentity
	work       string
	version    int
	ports      []string
	sent       *sentinels

	natsToken, conductorDB   string            // paths
	otherSpec, otherSettings string            // paths
	secrets                  map[string]string // text that must never show → what it is
	base                     snapshot
	hashes                   map[fileKey]string
	scanned                  map[fileKey][]string
	reported                 map[string]bool
	planted                  map[string]bool
	orig                     int
	down                     bool // conductor did not start again: no step can run
	lastDirs                 string
	log                      []string // one line per step, for the summary
}

func (h *hostileRun) projectDir() string { return filepath.Join(h.in.Data, "srv", "projects", h.app) }
func (h *hostileRun) envDir() string     { return filepath.Join(h.in.Data, "srv", "environments", h.app) }

// classify says how a path is compared between snapshots. Left out, beyond
// the app's own trees: the state database (every command writes it), the
// JetStream store, nginx's and circusd's logs, pid files and sockets, the
// app's own files in root's directories (its repository, watcher, site,
// anything named after it: they change with each deploy and go with
// apps:destroy), and the other app's process logs (its processes write
// them, and a restart of conductor restarts them). Each of these still
// keeps its type, owner and mode.
func (h *hostileRun) classify(p string) pathClass {
	if h.sent.behind(p) != "" || p == h.sent.dir {
		return classFull
	}
	rel, err := filepath.Rel(h.in.Data, p)
	if err != nil || strings.HasPrefix(rel, "..") {
		return classFull
	}
	for _, own := range []string{h.projectDir(), h.envDir()} {
		if p == own || strings.HasPrefix(p, own+string(filepath.Separator)) {
			return classSkip
		}
	}
	if rel == seedDir || strings.HasPrefix(rel, seedDir+"/") {
		return classSeed
	}
	base := filepath.Base(p)
	switch {
	case strings.HasPrefix(rel, "conductor.db"),
		rel == "nats" || strings.HasPrefix(rel, "nats/"),
		rel == "nginx/access.log", rel == "nginx/traffic.log", rel == "nginx/error.log", rel == "nginx/nginx.pid",
		rel == "circus/circusd.pid", rel == "circus/circusd.log", strings.HasSuffix(base, ".sock"),
		hasComponent(rel, h.app),
		hasComponent(rel, h.other) && strings.Contains(base, ".log"):
		return classChurn
	}
	return classFull
}

func (h *hostileRun) hash(p string, st *syscall.Stat_t) string {
	k := keyOf(st)
	if s, ok := h.hashes[k]; ok {
		return s
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "unreadable: " + err.Error()
	}
	s := hex.EncodeToString(sum.Sum(nil))
	h.hashes[k] = s
	return s
}

func (h *hostileRun) entry(p string) (snapEntry, bool) {
	fi, err := os.Lstat(p)
	if err != nil {
		return snapEntry{}, false
	}
	st := fi.Sys().(*syscall.Stat_t)
	e := snapEntry{typ: fi.Mode().Type(), perm: fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
		uid: st.Uid, gid: st.Gid}
	switch {
	case fi.Mode().IsRegular() && h.classify(p) == classFull:
		e.hash = h.hash(p, st)
	case fi.Mode()&fs.ModeSymlink != 0:
		e.link, _ = os.Readlink(p)
	}
	return e, true
}

func (h *hostileRun) snapshot() snapshot {
	s := snapshot{}
	for _, root := range []string{h.in.Data, h.sent.dir} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // gone while we walked (JetStream, a deploy)
			}
			if h.classify(p) == classSkip {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if e, ok := h.entry(p); ok {
				s[p] = e
			}
			return nil
		})
	}
	return s
}

func describeOwner(uid, gid uint32) string {
	name := func(id uint32, lookup func(string) (string, error)) string {
		if n, err := lookup(strconv.Itoa(int(id))); err == nil {
			return n
		}
		return strconv.Itoa(int(id))
	}
	return name(uid, func(s string) (string, error) {
		u, err := user.LookupId(s)
		if err != nil {
			return "", err
		}
		return u.Username, nil
	}) + ":" + name(gid, func(s string) (string, error) {
		g, err := user.LookupGroupId(s)
		if err != nil {
			return "", err
		}
		return g.Name, nil
	})
}

func (e snapEntry) String() string {
	return fmt.Sprintf("%v %s", e.typ|e.perm, describeOwner(e.uid, e.gid))
}

// finding is one thing that is wrong, and what identifies it across
// steps (by numbers: an owner's name goes with apps:destroy).
type finding struct{ key, msg string }

// changes lists what differs from the baseline that may not.
func (h *hostileRun) changes(after snapshot) []finding {
	var out []finding
	for p, b := range h.base {
		c := h.classify(p)
		if c == classSeed {
			continue // seedFindings
		}
		a, ok := after[p]
		if !ok {
			if c == classFull {
				out = append(out, finding{p + " removed", p + h.sent.behind(p) + ": removed"})
			}
			continue
		}
		var what []string
		key := p
		if a.typ != b.typ || a.perm != b.perm {
			what = append(what, fmt.Sprintf("mode %v → %v", b.typ|b.perm, a.typ|a.perm))
			key += fmt.Sprintf(" mode %o", a.typ|a.perm)
		}
		if a.uid != b.uid || a.gid != b.gid {
			what = append(what, fmt.Sprintf("owner %s → %s", describeOwner(b.uid, b.gid), describeOwner(a.uid, a.gid)))
			key += fmt.Sprintf(" owner %d:%d", a.uid, a.gid)
		}
		if c == classFull && a.hash != b.hash {
			what = append(what, "content changed")
			key += " content"
		}
		if c == classFull && a.link != b.link {
			what = append(what, fmt.Sprintf("link %q → %q", b.link, a.link))
			key += " link " + a.link
		}
		if len(what) > 0 {
			out = append(out, finding{key, p + h.sent.behind(p) + ": " + strings.Join(what, ", ")})
		}
	}
	for p, a := range after {
		if h.classify(p) == classSeed {
			out = append(out, h.seedFindings(p, a, after)...)
			continue
		}
		if _, ok := h.base[p]; ok {
			continue
		}
		if h.classify(p) == classFull {
			out = append(out, finding{p + " appeared", fmt.Sprintf("%s%s: appeared (%v)", p, h.sent.behind(p), a)})
		} else if a.uid == h.user.uid && !hasComponent(p, h.app) {
			out = append(out, finding{p + " appeared as the app's", fmt.Sprintf("%s: appeared owned by the app's user (%v)", p, a)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].msg < out[j].msg })
	return out
}

// seedDir is the host's package seed, under the data dir (Layout.SeedCache).
const seedDir = "srv/uv-seed"

// seedFindings checks one entry of the seed: root's, writable by no one
// else where others can reach it, and a link in it stays in it (uv's
// cache links its wheels to their unpacked archives with relative links).
// Root fills the seed while steps run, so what it holds is not compared
// with the baseline.
func (h *hostileRun) seedFindings(p string, e snapEntry, all snapshot) []finding {
	var out []finding
	seed := filepath.Join(h.in.Data, seedDir)
	if e.uid != 0 || e.gid != 0 {
		out = append(out, finding{p + " seed owner", fmt.Sprintf("%s: in the host's package seed, owned by %s", p, describeOwner(e.uid, e.gid))})
	}
	reachable := true // every dir from the seed down to p can be passed by others
	for d := filepath.Dir(p); p != seed && reachable; d = filepath.Dir(d) {
		reachable = all[d].perm&0o001 != 0
		if d == seed {
			break
		}
	}
	if e.typ&fs.ModeSymlink == 0 && e.perm&0o022 != 0 && reachable {
		out = append(out, finding{p + " seed mode", fmt.Sprintf("%s: in the host's package seed, writable by group or others (%v)", p, e.typ|e.perm)})
	}
	if e.typ&fs.ModeSymlink != 0 {
		target := e.link
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		if target != seed && !strings.HasPrefix(target, seed+string(filepath.Separator)) {
			out = append(out, finding{p + " seed link", fmt.Sprintf("%s: a link in the host's package seed to %q, out of it", p, e.link)})
		}
	}
	return out
}

// leaks lists the secrets and sentinel markers in text.
func (h *hostileRun) leaks(text string) []string {
	out := h.sent.markers(text)
	for s, what := range h.secrets {
		if s != "" && strings.Contains(text, s) {
			out = append(out, what)
		}
	}
	return out
}

// sqliteHeader starts every SQLite database, conductor.db included: in an
// output or conductor's log, root read a database for someone. (Not looked
// for in the app's own trees, which hold its own database.)
const sqliteHeader = "SQLite format 3\x00"

// outputLeaks is leaks, and a database's content.
func (h *hostileRun) outputLeaks(text string) []string {
	out := h.leaks(text)
	if strings.Contains(text, sqliteHeader) {
		out = append(out, "the content of a SQLite database (conductor.db?)")
	}
	return out
}

// scanOwnTrees lists the files of the app's own trees that hold what the
// app may not read: root copied it there.
func (h *hostileRun) scanOwnTrees() []string {
	var out []string
	for _, root := range []string{h.projectDir(), h.envDir()} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil || fi.Size() > 4<<20 {
				return nil
			}
			k := keyOf(fi.Sys().(*syscall.Stat_t))
			found, ok := h.scanned[k]
			if !ok {
				if data, err := readRegular(p, 4<<20); err == nil {
					found = h.leaks(string(data))
				}
				h.scanned[k] = found
			}
			for _, f := range found {
				out = append(out, p+" holds "+f)
			}
			return nil
		})
	}
	return out
}

// check asserts, after a step, that nothing outside the app changed and
// that nothing the app may not read showed in the step's outputs, the
// server's log or the app's own files. Each finding is reported once, at
// the first step that shows it.
func (h *hostileRun) check(t *testing.T, step string, outputs map[string]string) {
	t.Helper()
	report := func(key, msg string) {
		if !h.reported[key] {
			h.reported[key] = true
			t.Error(msg)
		}
	}
	names := make([]string, 0, len(outputs))
	for name := range outputs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, l := range h.outputLeaks(outputs[name]) {
			t.Errorf("%s: %s shows %s", step, name, l)
		}
	}
	for _, l := range h.outputLeaks(h.in.logs.String()) {
		report("log "+l, fmt.Sprintf("%s: conductor's log shows %s", step, l))
	}
	for _, l := range h.scanOwnTrees() {
		report("tree "+l, fmt.Sprintf("%s: %s, which the app's user can read", step, l))
	}
	for _, c := range h.changes(h.snapshot()) {
		report("change "+c.key, fmt.Sprintf("%s: %s", step, c.msg))
	}
}

// plantLevel is how far the developer goes in the app's writable trees.
type plantLevel int

const (
	plantNone    plantLevel = iota
	plantAdd                // links at every name that does not exist yet, but a release's files and what the app opens
	plantReplace            // also at a release's files, and in place of the files and links at those names
	plantDirs               // also at the names the app opens, and in place of every directory it can move
)

func (l plantLevel) String() string {
	return [...]string{"no links", "links added", "files replaced by links", "the app's files and dirs replaced by links"}[l]
}

// plantName is a name Conductor uses in an app's trees.
type plantName struct {
	name string
	dir  bool       // a directory's name: the link points at a sentinel dir
	from plantLevel // planted from this level on (plantAdd if zero)
	real string     // the link points at this file of the platform instead of a sentinel
}

func (h *hostileRun) names() []plantName {
	names := []plantName{
		{name: "web.log"}, {name: "web.log.1"}, {name: "web.log.2"}, {name: "web.log.3"},
		{name: "worker.log"}, {name: "release.log"},
		{name: "zz.log", real: h.natsToken}, {name: "yy.log", real: h.otherSettings}, {name: "xx.log", real: h.conductorDB},
		{name: ".conductor-complete"},
		{name: "media", dir: true}, {name: "staticfiles", dir: true}, {name: "static", dir: true},
		{name: "current", dir: true}, {name: "releases", dir: true}, {name: "data", dir: true},
		{name: "logs", dir: true}, {name: "run", dir: true}, {name: ".cache", dir: true}, {name: "bin", dir: true},
		{name: h.app + "_worker.json"}, {name: h.app + "_worker.json.tmp"},
	}
	// A release's own files: a link there fails the app's next deploy or
	// restart, so they come after the steps that need one to go through.
	for _, n := range []string{"local_settings.py", "Procfile", "requirements.txt", "manage.py", "runtime.txt",
		".python-version", "pyproject.toml", "uv.lock", "poetry.lock", "Pipfile", "Pipfile.lock", "package.json"} {
		names = append(names, plantName{name: n, from: plantReplace})
	}
	// What the app's processes open: a link there stops the app.
	for _, n := range []string{"db.sqlite3", "db.sqlite3-journal", "db.sqlite3-wal", "db.sqlite3-shm", "pyvenv.cfg"} {
		names = append(names, plantName{name: n, from: plantDirs})
	}
	for i, port := range h.ports {
		spec := h.app + "_web_" + port + ".json"
		tmp := plantName{name: spec + ".tmp"}
		if i == 1 {
			tmp.real = h.otherSettings
		}
		names = append(names, plantName{name: spec, real: h.otherSpec}, tmp)
		// Other process types' specs are per release too (process.ReleaseWatcher).
		names = append(names, plantName{name: h.app + "_worker_" + port + ".json"})
	}
	return names
}

// plant makes the app's user plant links at every name Conductor uses, in
// every directory of the app's trees that the user can write (the
// virtualenvs' lib/, include/ and share/ and pip's cache excepted: Conductor
// names nothing in them), up to level.
func (h *hostileRun) plant(t *testing.T, level plantLevel) {
	t.Helper()
	if level == plantNone {
		return
	}
	// Root lists the trees (the app's user may not list a directory of
	// root's it can still reach through); the app's user says which
	// directories it can write.
	e := h.envDir()
	pruned := func(p string) bool {
		rel, err := filepath.Rel(e, p)
		if err == nil && !strings.HasPrefix(rel, "..") {
			parts := strings.Split(rel, "/")
			if len(parts) == 2 && (parts[1] == "lib" || parts[1] == "lib64" || parts[1] == "include" || parts[1] == "share") ||
				len(parts) >= 2 && parts[0] == ".cache" {
				return true
			}
		}
		return strings.Contains(filepath.Base(p), ".hostile-orig")
	}
	var test strings.Builder
	for _, root := range []string{h.projectDir(), e} {
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			if pruned(p) {
				return filepath.SkipDir
			}
			fmt.Fprintf(&test, "[ -w %s ] && echo %s\n", shellQuote(p), shellQuote(p))
			return nil
		})
	}
	r := h.user.sh(t, test.String()+"true\n")
	if r.Code != 0 {
		t.Fatalf("find the app's writable dirs: %s", r)
	}
	dirs := strings.Fields(r.Stdout)
	var script strings.Builder
	link := func(target, at string) {
		fmt.Fprintf(&script, "ln -s -- %s %s && echo %s\n", shellQuote(target), shellQuote(at), shellQuote(at))
	}
	target := func(n plantName, at string) string {
		switch {
		case n.real != "":
			return n.real
		case n.dir:
			return h.sent.directory(t, at)
		}
		return h.sent.file(t, at)
	}
	replaceDir := func(n plantName, at string) {
		h.orig++
		fmt.Fprintf(&script, "mv -T -- %s %s && ", shellQuote(at), shellQuote(fmt.Sprintf("%s.hostile-orig%d", at, h.orig)))
		link(target(n, at), at)
	}
	for _, d := range dirs {
		for _, n := range h.names() {
			if level < n.from {
				continue
			}
			at := filepath.Join(d, n.name)
			fi, err := os.Lstat(at)
			switch {
			case err != nil:
				link(target(n, at), at)
			case level < plantReplace || fi.IsDir() || h.planted[at]:
			default:
				fmt.Fprintf(&script, "rm -f -- %s && ", shellQuote(at))
				link(target(n, at), at)
			}
		}
	}
	if level == plantDirs {
		// Every directory in a writable one, deepest first, so a directory
		// is replaced before its parent goes.
		sort.SliceStable(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
		for _, d := range dirs {
			entries, _ := os.ReadDir(d)
			for _, ent := range entries {
				if ent.IsDir() && !strings.Contains(ent.Name(), ".hostile-orig") {
					replaceDir(plantName{name: ent.Name(), dir: true}, filepath.Join(d, ent.Name()))
				}
			}
		}
	}
	h.recordSentinels()
	r = h.user.sh(t, script.String())
	n := 0
	for _, at := range strings.Fields(r.Stdout) {
		h.planted[at] = true
		n++
	}
	var rel []string
	for _, d := range dirs {
		rd, _ := filepath.Rel(filepath.Join(h.in.Data, "srv"), d)
		rel = append(rel, rd)
	}
	sort.Strings(rel)
	list := strings.Join(rel, " ")
	if list == h.lastDirs {
		list = "as before"
	}
	h.lastDirs = strings.Join(rel, " ")
	t.Logf("%s: the app's user planted %d links in %d writable dirs (%s)", level, n, len(dirs), list)
}

// recordSentinels adds the sentinels made since the last call to the
// baseline: they exist before any link points at them.
func (h *hostileRun) recordSentinels() {
	for _, s := range h.sent.takeFresh() {
		if en, ok := h.entry(s); ok {
			h.base[s] = en
		}
	}
}

// push commits a new version and pushes it as the developer.
func (h *hostileRun) push(t *testing.T) Result {
	t.Helper()
	h.version++
	setVersion(t, h.work, fmt.Sprintf("v%d", h.version))
	h.in.Commit(h.work, fmt.Sprintf("v%d", h.version))
	return h.in.Git(h.dev, h.work, "push", h.in.RepoURL(h.app), "main")
}

// ssh runs a command as the developer.
func (h *hostileRun) ssh(cmd string) Result { return h.in.SSH(h.dev, cmd) }

func stepOutput(name string, r Result) map[string]string {
	return map[string]string{name: r.Stdout + r.Stderr}
}

// pathRE matches a repository path as a word of an error message
// ("static" but not "collectstatic" or "staticfiles").
func pathRE(p string) *regexp.Regexp {
	return regexp.MustCompile(`(^|[^A-Za-z0-9_-])` + regexp.QuoteMeta(p) + `($|[^A-Za-z0-9_-])`)
}

// pushLinks pushes the example app with links in place of some paths
// (repository path → link target). Refused, the error must name one of
// them; deployed, each must be confined to the release: gone, a real file
// or directory, or a link that resolves inside the release.
func (h *hostileRun) pushLinks(t *testing.T, links map[string]string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(h.work)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != ".git" {
			if err := os.RemoveAll(filepath.Join(h.work, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.CopyFS(h.work, os.DirFS(filepath.Join("..", "examples", "hello"))); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for p, target := range links {
		paths = append(paths, p)
		at := filepath.Join(h.work, p)
		if err := os.RemoveAll(at); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, at); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(paths)
	if len(paths) > 0 { // past the example's .gitignore (local_settings.py)
		h.in.mustGit(h.work, append([]string{"add", "-f", "--"}, paths...)...)
	}
	h.recordSentinels()
	r := h.push(t)
	for _, p := range paths {
		if mode := strings.Fields(h.in.mustGit(h.work, "ls-tree", "HEAD", "--", p)); len(mode) == 0 || mode[0] != "120000" {
			t.Fatalf("the pushed commit has no link at %s: %v", p, mode)
		}
	}
	if r.Code != 0 && len(paths) == 0 {
		t.Errorf("the example app did not deploy: %s", r)
	} else if r.Code != 0 {
		named := false
		for _, p := range paths {
			named = named || pathRE(p).MatchString(r.Stderr)
		}
		if !named {
			t.Errorf("the push of links at %v was refused without naming them:\n%s", paths, r.Stderr)
		}
		return stepOutput("push", r)
	}
	rel := h.in.releaseDir(t, h.app, r)
	for _, p := range paths {
		at := filepath.Join(rel, p)
		fi, err := os.Lstat(at)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue // gone, or made a real file or dir
		}
		target, _ := os.Readlink(at)
		resolved := target
		if !filepath.IsAbs(target) {
			resolved = filepath.Join(filepath.Dir(at), target)
		}
		if resolved != rel && !strings.HasPrefix(resolved, rel+string(filepath.Separator)) {
			t.Errorf("the push deployed with %s a link out of the release (-> %s)", p, target)
		}
	}
	return stepOutput("push", r)
}

// hostileStep is one row of TestHostileDeveloper: the links planted before
// it, and what it does, giving the outputs to search.
type hostileStep struct {
	name  string
	plant plantLevel
	do    func(t *testing.T, h *hostileRun) map[string]string
}

func sshStep(name string, level plantLevel, cmd string) hostileStep {
	return hostileStep{name, level, func(t *testing.T, h *hostileRun) map[string]string {
		return stepOutput(name, h.ssh(strings.ReplaceAll(cmd, "APP", h.app)))
	}}
}

func pushStep(name string, level plantLevel) hostileStep {
	return hostileStep{name, level, func(t *testing.T, h *hostileRun) map[string]string {
		return stepOutput(name, h.push(t))
	}}
}

// runStep runs a one-off command, which must run as the app's user.
func runStep(name string, level plantLevel) hostileStep {
	return hostileStep{name, level, func(t *testing.T, h *hostileRun) map[string]string {
		r := h.ssh("run " + h.app + " -- sh -c 'id -u; env'")
		if first, _, _ := strings.Cut(r.Stdout, "\n"); r.Code == 0 && first != strconv.Itoa(int(h.user.uid)) {
			t.Errorf("run ran as uid %q, not the app's user (%d)", first, h.user.uid)
		}
		return stepOutput(name, r)
	}}
}

// restartStep stops and starts conductor serve, which must come up.
func restartStep(name string, level plantLevel) hostileStep {
	return hostileStep{name, level, func(t *testing.T, h *hostileRun) map[string]string {
		mark := len(h.in.logs.String())
		h.in.Stop()
		if err := h.in.startOrErr(60 * time.Second); err != nil {
			t.Errorf("conductor did not start again with the app's links in place: %v\n%s", err, h.in.logs.String()[mark:])
			h.down = true
		}
		return nil
	}}
}

// hostileSteps is the table: every command a developer (or, for
// apps:destroy and backup, the admin) runs, at each level of planted links.
// A new command is a new row.
var hostileSteps = []hostileStep{
	// Repositories made of links, before anything is planted.
	{"push: local_settings.py is a link", plantNone, func(t *testing.T, h *hostileRun) map[string]string {
		return h.pushLinks(t, map[string]string{"local_settings.py": h.sent.file(t, "repository local_settings.py")})
	}},
	{"push: Procfile is a link", plantNone, func(t *testing.T, h *hostileRun) map[string]string {
		return h.pushLinks(t, map[string]string{"Procfile": h.sent.file(t, "repository Procfile")})
	}},
	{"push: requirements.txt is a link", plantNone, func(t *testing.T, h *hostileRun) map[string]string {
		return h.pushLinks(t, map[string]string{"requirements.txt": h.sent.file(t, "repository requirements.txt")})
	}},
	{"push: static/ is a link", plantNone, func(t *testing.T, h *hostileRun) map[string]string {
		return h.pushLinks(t, map[string]string{"static": h.sent.directory(t, "repository static/")})
	}},
	{"push: links to a dir, .., / and out of the release", plantNone, func(t *testing.T, h *hostileRun) map[string]string {
		return h.pushLinks(t, map[string]string{
			"link-dir":           h.sent.directory(t, "repository link-dir"),
			"link-up":            "..",
			"link-root":          "/",
			"greetings/link-out": "../../../../../nats.token",
			"link-settings":      h.otherSettings,
		})
	}},
	{"push: the example again", plantNone, func(t *testing.T, h *hostileRun) map[string]string {
		return h.pushLinks(t, nil)
	}},

	// Links where nothing was, the app still working.
	pushStep("push", plantAdd),
	sshStep("deploy main", plantAdd, "deploy APP main"),
	{"push with new requirements, a process planting the venv marker", plantAdd, func(t *testing.T, h *hostileRun) map[string]string {
		target := h.sent.file(t, h.envDir()+"/<new venv>/.conductor-complete (planted while pip ran)")
		h.recordSentinels()
		stop := h.user.background(t, fmt.Sprintf(`while :; do for d in %s/*/; do
			[ -e "${d}.conductor-complete" ] || [ -L "${d}.conductor-complete" ] || ln -s %s "${d}.conductor-complete" 2>/dev/null
		done; sleep 0.05; done`, shellQuote(h.envDir()), shellQuote(target)))
		defer stop()
		f, err := os.OpenFile(filepath.Join(h.work, "requirements.txt"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "# requirements v%d\n", h.version+1)
		f.Close()
		return stepOutput("push", h.push(t))
	}},
	sshStep("config:set", plantAdd, "config:set APP HOSTILE=1"),
	sshStep("ps:restart", plantAdd, "ps:restart APP"),
	sshStep("ps:scale", plantAdd, "ps:scale APP web=2"),
	sshStep("ps", plantAdd, "ps APP"),
	sshStep("domains:add", plantAdd, "domains:add APP tenant-hostile.example.org"),
	sshStep("logs", plantAdd, "logs APP -n 1000"),
	sshStep("logs --process web", plantAdd, "logs APP --process web"),
	sshStep("logs --process zz (-> nats.token)", plantAdd, "logs APP --process zz"),
	sshStep("logs --process yy (-> other's local_settings.py)", plantAdd, "logs APP --process yy"),
	sshStep("logs --process xx (-> conductor.db)", plantAdd, "logs APP --process xx"),
	sshStep("logs --build", plantAdd, "logs APP --build"),
	runStep("run", plantAdd),
	{"static files through nginx", plantAdd, func(t *testing.T, h *hostileRun) map[string]string {
		out := map[string]string{}
		cur, err := filepath.EvalSymlinks(filepath.Join(h.projectDir(), "current"))
		if err != nil {
			t.Logf("no current release to read static files of: %v", err)
			return out
		}
		entries, _ := os.ReadDir(filepath.Join(cur, "staticfiles"))
		for _, e := range entries {
			for _, p := range []string{"/static/" + e.Name(), "/static/" + e.Name() + "/index.html"} {
				_, body, _ := h.in.Get(h.app, p)
				out["GET "+p] = body
			}
		}
		return out
	}},
	sshStep("rollback", plantAdd, "rollback APP"),

	// The app's files replaced by links.
	pushStep("push (files replaced)", plantReplace),
	sshStep("config:set (files replaced)", plantReplace, "config:set APP HOSTILE=2"),
	sshStep("logs (files replaced)", plantReplace, "logs APP -n 1000"),
	sshStep("logs --process web (files replaced)", plantReplace, "logs APP --process web"),
	runStep("run (files replaced: the spec is the other app's)", plantReplace),
	restartStep("restart conductor (files replaced)", plantReplace),

	// The app's directories replaced by links.
	pushStep("push (dirs replaced)", plantDirs),
	sshStep("config:set (dirs replaced)", plantDirs, "config:set APP HOSTILE=3"),
	sshStep("logs (dirs replaced)", plantDirs, "logs APP -n 1000"),
	runStep("run (dirs replaced)", plantDirs),
	{"backup (dirs replaced)", plantDirs, func(t *testing.T, h *hostileRun) map[string]string {
		archive := filepath.Join(h.in.Dir, "hostile-backup.tar.gz")
		r := runCmd(t, "", nil, nil, conductorBin, "backup", "--data", h.in.Data, "--out", archive)
		out := stepOutput("backup", r)
		if f, err := os.Open(archive); err == nil {
			defer f.Close()
			if gz, err := gzip.NewReader(f); err == nil {
				data, _ := io.ReadAll(gz)
				// The archive holds the state (secrets included) for the
				// admin; no sentinel may be in it.
				for _, m := range h.sent.markers(string(data)) {
					t.Errorf("the backup archive holds %s", m)
				}
			}
		}
		return out
	}},
	restartStep("restart conductor (dirs replaced)", plantDirs),
	{"apps:destroy (admin)", plantDirs, func(t *testing.T, h *hostileRun) map[string]string {
		return stepOutput("apps:destroy", h.in.SSH(h.in.AdminKey, "apps:destroy "+h.app+" --confirm "+h.app))
	}},
}

// TestHostileDeveloper plays a developer granted one app: code of theirs
// runs as the app's user, which plants links at every name Conductor uses
// wherever it can write; they push repositories made of links and run every
// command. After each step, no file outside the app's own trees changed
// content, owner or mode (the platform's files, a second app's, and
// sentinels in a root-only dir), and nothing the app may not read (the
// sentinels' markers, the NATS token, the other app's secret key) showed in
// any output, build log, conductor's log or the app's own files.
func TestHostileDeveloper(t *testing.T) {
	t.Parallel()
	const app, other = "tnt-dev", "tnt-other"
	cleanAppUsers(t, app, other)
	in := StartInstance(t)
	h := &hostileRun{in: in, app: app, other: other, sent: newSentinels(t),
		hashes: map[fileKey]string{}, scanned: map[fileKey][]string{}, reported: map[string]bool{}, planted: map[string]bool{}}

	h.dev = in.NewKey("dev")
	must(t, "keys:add dev", in.SSHIn(in.AdminKey, "keys:add dev", readFile(t, h.dev+".pub")))
	must(t, "apps:create", in.SSH(in.AdminKey, "apps:create "+app))
	must(t, "access:grant", in.SSH(in.AdminKey, "access:grant "+app+" dev"))

	in.pushOK(in.WorkTree("hello"), other)
	// A config value of the other app's: its processes' environment
	// (and so its process spec) holds it.
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	otherConfig := "tenant-config-" + hex.EncodeToString(b)
	must(t, "config:set "+other, in.SSH(in.AdminKey, "config:set "+other+" TENANT_SECRET="+otherConfig))
	otherRelease, err := filepath.EvalSymlinks(filepath.Join(in.Data, "srv", "projects", other, "current"))
	if err != nil {
		t.Fatalf("%s's current release: %v", other, err)
	}
	h.work = in.WorkTree("hello")
	if r := in.Git(h.dev, h.work, "push", in.RepoURL(app), "main"); r.Code != 0 || !strings.Contains(r.Stderr, "-----> Deployed "+app) {
		t.Fatalf("the developer's first push: %s", r)
	}
	h.user = lookupAppUser(t, app)
	h.ports = strings.Fields(in.stateQuery("SELECT port_a || ' ' || port_b FROM apps WHERE name = '%s'", app))
	h.natsToken = filepath.Join(in.Data, "nats.token")
	h.conductorDB = filepath.Join(in.Data, "conductor.db")
	h.otherSettings = filepath.Join(otherRelease, "local_settings.py")
	specs := findUnder(in.Data, func(p string, d fs.DirEntry) bool {
		return d.Type().IsRegular() && strings.HasPrefix(d.Name(), other+"_web_") && strings.HasSuffix(d.Name(), ".json")
	})
	if len(h.ports) != 2 || len(specs) != 1 {
		t.Fatalf("ports of %s %v, process specs of %s %v: the test needs updating", app, h.ports, other, specs)
	}
	h.otherSpec = specs[0]
	token := strings.TrimSpace(readFile(t, h.natsToken))
	otherKey := in.stateQuery("SELECT secret_key FROM apps WHERE name = '%s'", other)
	if len(token) < 16 || len(otherKey) < 16 || !strings.Contains(readFile(t, h.otherSettings), otherKey) {
		t.Fatalf("the NATS token %q or %s's secret key %q is not what this test expects", token, other, otherKey)
	}
	if !strings.Contains(readFile(t, h.otherSpec), otherConfig) {
		t.Fatalf("%s's process spec %s does not hold its config: the test needs updating", other, h.otherSpec)
	}
	h.secrets = map[string]string{token: "the NATS token", otherKey: other + "'s SECRET_KEY", otherConfig: other + "'s config value"}
	h.base = h.snapshot()

	start := time.Now()
	for _, step := range hostileSteps {
		t.Run(step.name, func(t *testing.T) {
			began := time.Now()
			if _, err := user.Lookup(app); err == nil {
				h.plant(t, step.plant)
			}
			out := step.do(t, h)
			h.check(t, step.name, out)
			summary := ""
			for _, o := range out {
				if o != "" {
					summary = outcome(o)
				}
			}
			h.log = append(h.log, fmt.Sprintf("%-60s %6s  %s", step.name, time.Since(began).Round(100*time.Millisecond), summary))
		})
		if h.down {
			t.Fatalf("conductor is down after %q: the steps after it cannot run\n%s", step.name, strings.Join(h.log, "\n"))
		}
	}
	t.Logf("steps (%s):\n%s", time.Since(start).Round(time.Second), strings.Join(h.log, "\n"))

	// The other app, its files untouched, still serves.
	if code, body, _ := in.Get(other, "/"); code != 200 || !strings.Contains(body, "Hello from Conductor") {
		t.Errorf("%s stopped serving: %d %q", other, code, body)
	}
}

// outcome is the line of an output that says how it ended: the first
// error line, else the last line.
func outcome(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for _, l := range lines {
		l = strings.TrimSpace(strings.TrimPrefix(l, "remote:"))
		if (strings.HasPrefix(l, "!") || strings.HasPrefix(l, "error:")) && !strings.Contains(l, "failed to push some refs") {
			return l
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// TestAppsCannotReadEachOther: the unix user of one app cannot read another
// app's code, settings, virtualenv, logs, process specs or database, nor the
// front nginx's access log and site files.
func TestAppsCannotReadEachOther(t *testing.T) {
	t.Parallel()
	const a, b = "tnt-a", "tnt-b"
	cleanAppUsers(t, a, b)
	in := StartInstance(t)
	rel := in.releaseDir(t, a, in.pushOK(in.WorkTree("hello"), a))
	in.pushOK(in.WorkTree("hello"), b)
	if code, _, _ := in.Get(a, "/"); code != 200 { // a line in a's log and in the access log
		t.Fatalf("GET / on %s = %d", a, code)
	}
	ub := lookupAppUser(t, b)

	named := func(name string) func(string, fs.DirEntry) bool {
		return func(p string, d fs.DirEntry) bool {
			return d.Type().IsRegular() && d.Name() == name && hasComponent(p, a)
		}
	}
	first := func(paths []string) string {
		if len(paths) == 0 {
			return ""
		}
		return paths[0]
	}
	accessLog := ""
	if m := regexp.MustCompile(`(?m)^\s*access_log\s+"?([^";\s]+)`).FindStringSubmatch(readFile(t, filepath.Join(in.Data, "nginx", "nginx.conf"))); m != nil {
		accessLog = m[1]
	}
	targets := []struct{ what, path string }{
		{"release code (manage.py)", filepath.Join(rel, "manage.py")},
		{"release code (greetings/views.py)", filepath.Join(rel, "greetings", "views.py")},
		{"local_settings.py", filepath.Join(rel, "local_settings.py")},
		{"virtualenv (pyvenv.cfg)", first(findUnder(in.Data, named("pyvenv.cfg")))},
		{"virtualenv (django/__init__.py)", first(findUnder(in.Data, func(p string, d fs.DirEntry) bool {
			return named("__init__.py")(p, d) && strings.HasSuffix(p, "/site-packages/django/__init__.py")
		}))},
		{"process log (web.log)", first(findUnder(in.Data, named("web.log")))},
		{"process spec", first(findUnder(in.Data, func(p string, d fs.DirEntry) bool {
			return d.Type().IsRegular() && strings.HasPrefix(d.Name(), a+"_web_") && strings.HasSuffix(d.Name(), ".json")
		}))},
		{"database (db.sqlite3)", first(findUnder(in.Data, named("db.sqlite3")))},
		{"front nginx access log", accessLog},
		{"git repository (HEAD)", filepath.Join(in.Data, "repos", a+".git", "HEAD")},
		{"git repository (config)", filepath.Join(in.Data, "repos", a+".git", "config")},
		{"nginx site file", first(findUnder(filepath.Join(in.Data, "nginx"), func(p string, d fs.DirEntry) bool {
			return d.Type().IsRegular() && strings.HasSuffix(d.Name(), ".conf") && hasComponent(p, a)
		}))},
	}
	for _, target := range targets {
		if target.path == "" {
			t.Errorf("%s of %s: not found under %s: the layout changed, update this test", target.what, a, in.Data)
			continue
		}
		fi, err := os.Stat(target.path)
		if err != nil || fi.Size() == 0 {
			t.Errorf("%s of %s (%s): %v, size %v: the test needs a non-empty file", target.what, a, target.path, err, fi)
			continue
		}
		r := ub.sh(t, "head -c 256 -- "+shellQuote(target.path))
		if r.Code == 0 || !strings.Contains(r.Stderr, "Permission denied") {
			t.Errorf("%s's user read %s's %s (%s): %s\n%s", b, a, target.what, target.path, r, modesAlong(in.Dir, target.path))
		}
	}
}

// modesAlong describes the mode and owner of path and each directory above
// it up to top, to say which one let another user in.
func modesAlong(top, path string) string {
	var lines []string
	for p := path; ; p = filepath.Dir(p) {
		if fi, err := os.Lstat(p); err == nil {
			st := fi.Sys().(*syscall.Stat_t)
			lines = append(lines, fmt.Sprintf("  %v %s %s", fi.Mode(), describeOwner(st.Uid, st.Gid), p))
		}
		if p == top || p == "/" || p == "." {
			break
		}
	}
	return strings.Join(lines, "\n")
}

// TestBrokenAppDoesNotStopServe: an app's developer breaks the Procfile of
// its serving release (garbage, a link to a file of root's, a FIFO) and
// conductor restarts: serve starts, the other app serves, the broken app
// serves on (start-up reads no Procfile) or the log names it and its
// Procfile, and nothing of root's file shows.
func TestBrokenAppDoesNotStopServe(t *testing.T) {
	t.Parallel()
	const bad, fine = "tnt-bad", "tnt-fine"
	cleanAppUsers(t, bad, fine)
	in := StartInstance(t)
	rel := in.releaseDir(t, bad, in.pushOK(in.WorkTree("hello"), bad))
	in.pushOK(in.WorkTree("hello"), fine)
	u := lookupAppUser(t, bad)
	sent := newSentinels(t)
	secret := sent.file(t, "Procfile of "+bad)
	procfile := shellQuote(filepath.Join(rel, "Procfile"))

	for _, c := range []struct{ name, script string }{
		{"garbage", `printf 'this is not a Procfile\n\001\377 ;; : |\n' > ` + procfile},
		{"symlink to a root-only file", "rm -f -- " + procfile + " && ln -s -- " + shellQuote(secret) + " " + procfile},
		{"fifo", "rm -f -- " + procfile + " && mkfifo -- " + procfile},
	} {
		if r := u.sh(t, c.script); r.Code != 0 && strings.Contains(r.Stderr, "Permission denied") {
			t.Logf("%s: %s's user cannot change its serving release's Procfile: nothing to show", c.name, bad)
			continue
		} else if r.Code != 0 {
			t.Fatalf("%s: as %s: %s", c.name, bad, r)
		}
		mark := len(in.logs.String())
		in.Stop()
		err := in.startOrErr(60 * time.Second)
		log := in.logs.String()[mark:]
		if err != nil {
			t.Errorf("%s Procfile in %s's serving release: %v\n%s", c.name, bad, err, log)
		} else {
			waitFor(t, fine+" to serve after the restart", func() bool {
				code, body, _ := in.Get(fine, "/")
				return code == 200 && strings.Contains(body, "Hello from Conductor")
			})
			// Start-up never reads a release's Procfile: the watchers run
			// from root's specs in run/ (or, when circusd was stopped, are
			// installed again from them), so the broken app serves on too.
			// Were it read, the log would have to name the app and its
			// Procfile.
			if code, body, _ := in.Get(bad, "/"); (code != 200 || !strings.Contains(body, "Hello from Conductor")) && !logNames(log, bad, "Procfile") {
				t.Errorf("%s Procfile: after the restart %s answers %d and conductor's log has no line naming it and its Procfile:\n%s", c.name, bad, code, log)
			}
		}
		for _, m := range sent.markers(in.logs.String()[mark:]) {
			t.Errorf("%s Procfile: conductor's log shows %s", c.name, m)
		}
		if err != nil {
			// Put a good Procfile back to go on with the next case.
			if r := u.sh(t, "rm -f -- "+procfile+" && echo 'web: gunicorn hello.wsgi --log-file -' > "+procfile); r.Code != 0 {
				t.Fatalf("restore the Procfile: %s", r)
			}
			in.Start()
		}
	}
}

// logNames says whether one line of log names all of words.
func logNames(log string, words ...string) bool {
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		all := true
		for _, w := range words {
			all = all && strings.Contains(sc.Text(), w)
		}
		if all {
			return true
		}
	}
	return false
}
