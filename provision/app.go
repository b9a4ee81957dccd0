package provision

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/hasadna/conductor"
	"github.com/hasadna/conductor/internal/safefs"
	"golang.org/x/sys/unix"
)

// PortRange is where app port pairs are allocated.
type PortRange struct{ From, To int }

// NewApp validates and records a new app: its database kind, a free port
// pair and a secret key. Host-side provisioning, the database included,
// happens on its first deploy. Whether a server of that kind is configured
// is Databases.CheckKind's question.
func NewApp(ctx context.Context, store conductor.Store, name, dbKind, host string, ports PortRange) (*conductor.App, error) {
	if err := conductor.ValidateNewAppName(name); err != nil {
		return nil, err
	}
	switch dbKind {
	case conductor.DBSQLite, conductor.DBPostgres, conductor.DBMySQL:
	default:
		return nil, conductor.Errorf(conductor.EINVALID, "unknown database %q: use sqlite, postgres or mysql", dbKind)
	}
	used, err := store.UsedPorts(ctx)
	if err != nil {
		return nil, err
	}
	pair, err := allocatePorts(used, ports)
	if err != nil {
		return nil, err
	}
	app := &conductor.App{Name: name, DBKind: dbKind, Host: host, Ports: pair, SecretKey: RandomString(50)}
	if err := store.CreateApp(ctx, app); err != nil {
		return nil, err
	}
	return app, nil
}

// allocatePorts picks the two lowest ports in the range that no app holds
// and that nothing else is listening on right now.
func allocatePorts(used []int, r PortRange) ([2]int, error) {
	taken := map[int]bool{}
	for _, p := range used {
		taken[p] = true
	}
	var pair [2]int
	n := 0
	for p := r.From; p <= r.To && n < 2; p++ {
		if taken[p] || !portFree(p) {
			continue
		}
		pair[n] = p
		n++
	}
	if n < 2 {
		return pair, conductor.Errorf(conductor.ECONFLICT, "no free ports left in %d-%d", r.From, r.To)
	}
	return pair, nil
}

func portFree(p int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// RandomString returns n random characters from [A-Za-z0-9]: safe in any
// config format, shell-free, and still ~5.95 bits of entropy each.
func RandomString(n int) string {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alnum))))
		if err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err))
		}
		b[i] = alnum[k.Int64()]
	}
	return string(b)
}

// Dirs creates the app's directories and (re)sets who owns them. What root
// must trust lives in root's directories: the project dir itself,
// releases/, logs/ (circusd, as root, appends to the files there) and run/
// (process specs); the app's group may read logs and run. The app owns its
// data, its HOME and, later, each release's code and each virtualenv. The
// project and releases dirs are 0711 so nginx's workers reach static files
// while another app's user cannot list them; data, home and the
// environments dir are private to the app.
//
// Every directory is reached with safefs (no symlink followed), since an
// app user may have planted links before this runs; entries it may have
// left in logs/ and run/ when they were its own go.
func Dirs(ctx context.Context, l Layout, app string, u *AppUser) error {
	root, appUID, appGID := safefs.Keep, u.UID, u.GID
	if os.Geteuid() == 0 {
		root = 0
	}
	for _, top := range []string{l.ProjectsDir(), l.EnvironmentsRoot()} {
		if err := os.MkdirAll(top, 0o711); err != nil {
			return fmt.Errorf("create %s: %w", top, err)
		}
	}
	dirs := []struct {
		base, rel string
		mode      os.FileMode
		uid, gid  int
	}{
		{l.ProjectsDir(), app, 0o711, root, root},
		{l.ProjectsDir(), app + "/releases", 0o711, root, root},
		{l.ProjectsDir(), app + "/data", 0o711, appUID, appGID}, // nginx's workers pass through to media/
		{l.ProjectsDir(), app + "/data/media", 0o755, appUID, appGID},
		{l.ProjectsDir(), app + "/home", 0o700, appUID, appGID},
		{l.ProjectsDir(), app + "/logs", 0o750, root, appGID},
		{l.ProjectsDir(), app + "/run", 0o750, root, appGID},
		{l.EnvironmentsRoot(), app, 0o750, root, appGID},
	}
	for _, d := range dirs {
		// A symlink where a directory goes: the app's own directories are
		// its business (data/media may point elsewhere in its data) and
		// are left alone; one of root's goes, and a real one is made.
		if st, err := safefs.Lstat(d.base, d.rel); err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if d.uid == appUID && appUID != root {
				continue
			}
			if err := os.Remove(filepath.Join(d.base, d.rel)); err != nil {
				return fmt.Errorf("directory of %s: %w", app, err)
			}
		}
		if err := safefs.EnsureDir(d.base, d.rel, d.mode, d.uid, d.gid); err != nil {
			return fmt.Errorf("directory of %s: %w", app, err)
		}
	}
	self := os.Geteuid()
	// circusd writes the logs as root; run-process trusts the specs. Specs
	// the app user once owned are rewritten by the builder (AdoptSpecs).
	if err := safefs.RemoveForeign(l.ProjectsDir(), app+"/logs", self); err != nil {
		return fmt.Errorf("clean the logs of %s: %w", app, err)
	}
	if err := safefs.RemoveForeign(l.ProjectsDir(), app+"/run", self, appUID); err != nil {
		return fmt.Errorf("clean the run dir of %s: %w", app, err)
	}
	return nil
}
