package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hasadna/conductor/internal/safefs"
)

// An app's SQLite database is snapshotted by the app's own unix user, not
// by root. Root handing SQLite the path (or a descriptor: SQLite resolves
// /proc/self/fd/N back to a path to find the -wal and -shm files, and opens
// those by name too) would let the app point db.sqlite3, or its -wal or
// -shm, at conductor.db or any root file: copied into the app's backup and
// restored as the app's, or truncated by SQLite's shared-memory setup.
// Running `sqlite3 -readonly … "VACUUM INTO …"` (the CLI `make setup`
// installs) with the app's uid and gid and no supplementary groups, the
// snapshot can hold only what the app could read anyway, with SQLite's own
// locking and WAL handling. It writes into a directory of its own, owned
// by the app, in a root-owned 0711 temp dir; root then opens the result
// without following links, checks it is a regular file the app owns, and
// archives it from that descriptor.

// appUser is the unix user an app's code runs as.
type appUser struct {
	uid, gid int
}

// lookupAppUser finds the app's unix user (named after it) when Conductor
// runs as root; otherwise apps run as Conductor's own user.
func lookupAppUser(app string) (appUser, error) {
	if os.Geteuid() != 0 {
		return appUser{os.Getuid(), os.Getgid()}, nil
	}
	u, err := user.Lookup(app)
	if err != nil {
		return appUser{}, fmt.Errorf("its unix user: %w", err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return appUser{}, err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return appUser{}, err
	}
	if uid == 0 || gid == 0 {
		return appUser{}, fmt.Errorf("its unix user %s is root's (uid %d, gid %d)", app, uid, gid)
	}
	return appUser{uid, gid}, nil
}

// sqliteTimeout bounds how long the snapshot waits for the app's writers;
// snapshotTimeout how long it may take in all (the app could stop it).
const (
	sqliteTimeout   = 10 * time.Second
	snapshotTimeout = time.Hour
)

// snapshotAsApp writes a VACUUM INTO snapshot of the database at db (an
// absolute path) as the app's user u, into a new directory of its own
// under dir (a root-owned directory that app users may traverse), and
// returns it open for reading.
func snapshotAsApp(ctx context.Context, app string, u appUser, db, dir string) (*os.File, error) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		return nil, fmt.Errorf("the sqlite3 program is needed to snapshot SQLite databases (apt-get install sqlite3): %w", err)
	}
	own := filepath.Join(dir, app)
	if err := os.Mkdir(own, 0o700); err != nil {
		return nil, err
	}
	root := os.Geteuid() == 0
	if root {
		// dir is root's and own was just made in it: no one else
		// could have put a link there.
		if err := os.Lchown(own, u.uid, u.gid); err != nil {
			return nil, err
		}
	}
	const snap = "db.sqlite3"
	dst := filepath.Join(own, snap)
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sqlite3, "-batch", "-bail", "-readonly", "-init", "/dev/null",
		"-cmd", ".timeout "+strconv.Itoa(int(sqliteTimeout/time.Millisecond)),
		db, "VACUUM INTO "+sqlString(dst))
	cmd.Dir = own
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C.UTF-8", "HOME=/nonexistent"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if root {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{}}
	}
	cmd.WaitDelay = 5 * time.Second
	// The app can make a process of its own user say anything, at
	// length: only the start of it is kept.
	out := &headBuffer{max: 500}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("sqlite3 as the app's user: %w: %s", err, strings.TrimSpace(out.String()))
	}
	// The app's processes could have replaced the snapshot meanwhile
	// (own is theirs): only a regular file of theirs is taken.
	f, err := safefs.Open(dir, filepath.Join(app, snap))
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, err
	}
	if root && int(st.Uid) != u.uid {
		f.Close()
		return nil, errors.New("the snapshot was replaced by a file the app does not own")
	}
	return f, nil
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	bytes.Buffer
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - h.Len(); room > 0 {
		h.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
