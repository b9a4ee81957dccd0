package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/hasadna/conductor/sqlite"
)

// Disk thresholds: below either, a deploy (a new virtualenv is easily
// 100 MB) or SQLite's next checkpoint may fail.
const (
	minFreeBytes   = 1 << 30
	minFreePercent = 10
)

// existingParent is path or its nearest existing parent: a data dir not
// made yet lives on its parent's filesystem.
func existingParent(path string) string {
	for p := filepath.Clean(path); ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || p == filepath.Dir(p) {
			return p
		}
	}
}

// SameFilesystem tells whether a and b are on one filesystem.
func SameFilesystem(a, b string) bool {
	var sa, sb syscall.Stat_t
	if syscall.Stat(existingParent(a), &sa) != nil || syscall.Stat(existingParent(b), &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev
}

// Disk checks the free space of the filesystem holding path.
func Disk(check, path string) Result {
	at := existingParent(path)
	var st syscall.Statfs_t
	if err := syscall.Statfs(at, &st); err != nil {
		return fail(check, "check that "+at+" is mounted", "statfs %s: %v", at, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	total := st.Blocks * uint64(st.Bsize)
	percent := 0.0
	if total > 0 {
		percent = 100 * float64(free) / float64(total)
	}
	detail := fmt.Sprintf("%s free of %s (%.0f%%) on the filesystem of %s", bytesString(free), bytesString(total), percent, path)
	if free < minFreeBytes || percent < minFreePercent {
		return warn(check, "free space: remove old backups, `apt-get clean`, or grow the filesystem (Conductor keeps --keep-releases releases and virtualenvs per app)",
			"only %s", detail)
	}
	return ok(check, "%s", detail)
}

func bytesString(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d KiB", n>>10)
	}
}

// StateDB checks that conductor.db opens, is intact, and that its schema
// is the one this binary expects. initCmd is what creates it.
func StateDB(ctx context.Context, data, initCmd string) Result {
	const name = "state db"
	path := filepath.Join(data, "conductor.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fail(name, initCmd+" (or give the right --data)", "%s does not exist", path)
	}
	st, err := sqlite.Migrations(ctx, path)
	if err != nil {
		return fail(name, "restore "+path+" from a backup (conductor restore)", "%s does not open: %v", path, err)
	}
	if problem, err := sqlite.QuickCheck(ctx, path); err != nil || problem != "" {
		return fail(name, "restore "+path+" from a backup (conductor restore)", "%s is damaged: %s%v", path, problem, errOrEmpty(err))
	}
	switch {
	case len(st.Unknown) > 0:
		return fail(name, "run the conductor binary that wrote it (or a newer one); this one is older",
			"%s has migrations %v that this conductor does not know", path, st.Unknown)
	case len(st.Pending) > 0:
		return warn(name, "restart conductor serve with this binary: it applies them at start",
			"%s lacks migrations %s", path, strings.Join(st.Pending, ", "))
	}
	return ok(name, "%s opens, passes quick_check, all %d migrations applied", path, st.Applied)
}

func errOrEmpty(err error) any {
	if err == nil {
		return ""
	}
	return err
}

// DataDir checks the permissions of the data dir: app users must traverse
// it (and every parent) to reach their releases, and must not read
// Conductor's secrets in it. initCmd is what creates it.
func DataDir(data, initCmd string) Result {
	const name = "data dir"
	fi, err := os.Stat(data)
	if err != nil {
		return fail(name, initCmd, "%v", err)
	}
	if !fi.IsDir() {
		return fail(name, "give --data a directory", "%s is not a directory", data)
	}
	for d := data; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fail(name, "check the path of --data", "%v", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fail(name, "chmod o+x "+d, "app users cannot reach their releases under %s: %s is not searchable by others", data, d)
		}
		if d == filepath.Dir(d) {
			break
		}
	}
	if fi.Mode().Perm()&0o004 != 0 {
		return warn(name, "chmod 711 "+data, "%s can be listed by every user (mode %04o)", data, fi.Mode().Perm())
	}
	// The state db holds every app's database password and secret key;
	// the data dir is traversable, so its files are reachable by name.
	var readable []string
	for _, f := range []string{"conductor.db", "conductor.db-wal", "ssh_host_ed25519_key", "nats.token", "nats-tls/ca.key"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err == nil && fi.Mode().Perm()&0o004 != 0 {
			readable = append(readable, filepath.Join(data, f))
		}
	}
	if len(readable) > 0 {
		return fail(name, "chmod 600 "+strings.Join(readable, " "),
			"every user (app processes included) can read %s, which hold secrets (app database passwords and secret keys, private keys, the NATS token)", strings.Join(readable, ", "))
	}
	return ok(name, "%s (mode %04o) and its parents are traversable by app users; its secrets are private", data, fi.Mode().Perm())
}
