// Package safefs is how root touches files inside directories that an app
// user (or a pushed repository) controls, without following a symlink or
// opening something that is not what it claims to be.
//
// Every function takes a trusted base directory (one whose ancestors only
// root can change) and a path relative to it. Each component of that path is
// opened with openat(O_NOFOLLOW) from the previous one's descriptor, so a
// symlink anywhere in it fails the call instead of leading root elsewhere;
// ownership and modes are changed with fchown/fchmod on the opened
// descriptor, never by name. See docs/security.md.
package safefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrSymlink is returned (wrapped in a *fs.PathError) when a component of
// the path is a symbolic link.
var ErrSymlink = errors.New("is a symbolic link")

// ErrNotRegular is returned when the path names something other than a
// regular file (a directory, a FIFO, a device, a socket).
var ErrNotRegular = errors.New("is not a regular file")

// Keep is passed as a uid or gid to leave that id as it is.
const Keep = -1

func split(rel string) ([]string, error) {
	rel = filepath.ToSlash(filepath.Clean(rel))
	if rel == "." || !filepath.IsLocal(rel) {
		return nil, &fs.PathError{Op: "open", Path: rel, Err: fs.ErrInvalid}
	}
	return strings.Split(rel, "/"), nil
}

func pathErr(op, path string, err error) error {
	if errors.Is(err, unix.ELOOP) {
		err = ErrSymlink
	}
	return &fs.PathError{Op: op, Path: path, Err: err}
}

// openDirFd opens base, then each of comps as a directory without following
// symlinks, and returns the last descriptor.
func openDirFd(base string, comps []string) (int, error) {
	fd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: base, Err: err}
	}
	for i, c := range comps {
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) && isSymlinkAt(base, comps[:i+1]) {
				err = unix.ELOOP
			}
			return -1, pathErr("open", filepath.Join(comps[:i+1]...), err)
		}
		fd = next
	}
	return fd, nil
}

// isSymlinkAt tells whether base/comps is a symlink, for a clearer error
// (O_DIRECTORY|O_NOFOLLOW on a link gives ENOTDIR, not ELOOP).
func isSymlinkAt(base string, comps []string) bool {
	fi, err := os.Lstat(filepath.Join(append([]string{base}, comps...)...))
	return err == nil && fi.Mode()&fs.ModeSymlink != 0
}

// OpenDir opens base/rel as a directory reached without symlinks.
func OpenDir(base, rel string) (*os.File, error) {
	var comps []string
	if filepath.Clean(rel) != "." {
		var err error
		if comps, err = split(rel); err != nil {
			return nil, err
		}
	}
	fd, err := openDirFd(base, comps)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), filepath.Join(base, rel)), nil
}

// Open opens base/rel for reading. It must be a regular file reached
// without symlinks; a FIFO planted there cannot block the caller.
func Open(base, rel string) (*os.File, error) {
	fd, err := openRegular(base, rel, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	// Reads of a regular file never block; clear O_NONBLOCK anyway so
	// the file behaves as any other.
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err == nil {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFL, flags&^unix.O_NONBLOCK)
	}
	return os.NewFile(uintptr(fd), filepath.Join(base, rel)), nil
}

// openRegular opens base/rel with flags (plus O_NOFOLLOW, O_NONBLOCK and
// O_CLOEXEC), reached without symlinks, and returns its descriptor if it
// is a regular file.
func openRegular(base, rel string, flags int, perm uint32) (int, error) {
	comps, err := split(rel)
	if err != nil {
		return -1, err
	}
	dfd, err := openDirFd(base, comps[:len(comps)-1])
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, comps[len(comps)-1], flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, perm)
	if err != nil {
		return -1, pathErr("open", rel, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, pathErr("stat", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, pathErr("open", rel, ErrNotRegular)
	}
	return fd, nil
}

// ReadFile reads base/rel (see Open), at most max bytes: a larger file is
// an error rather than a way to make root read gigabytes.
func ReadFile(base, rel string, max int64) ([]byte, error) {
	f, err := Open(base, rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, &fs.PathError{Op: "read", Path: rel, Err: fmt.Errorf("larger than %d bytes", max)}
	}
	return data, nil
}

// Lstat describes base/rel itself (a symlink is described, not followed),
// reaching it without symlinks.
func Lstat(base, rel string) (*unix.Stat_t, error) {
	comps, err := split(rel)
	if err != nil {
		return nil, err
	}
	dfd, err := openDirFd(base, comps[:len(comps)-1])
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, comps[len(comps)-1], &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, pathErr("stat", rel, err)
	}
	return &st, nil
}

// WriteFile replaces base/rel with a new regular file holding data, with
// mode perm, owned by uid:gid (Keep leaves root's). It writes a temporary
// file created exclusively in the same directory and renames it over
// whatever was there, a symlink included (rename replaces the link itself).
func WriteFile(base, rel string, data []byte, perm os.FileMode, uid, gid int) error {
	comps, err := split(rel)
	if err != nil {
		return err
	}
	dfd, err := openDirFd(base, comps[:len(comps)-1])
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	name := comps[len(comps)-1]
	tmp := fmt.Sprintf(".%s.%d.tmp", name, os.Getpid())
	_ = unix.Unlinkat(dfd, tmp, 0)
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return pathErr("create", rel, err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	err = func() error {
		if _, err := f.Write(data); err != nil {
			return err
		}
		if err := fchown(fd, uid, gid); err != nil {
			return err
		}
		return unix.Fchmod(fd, uint32(perm.Perm()))
	}()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, name)
	}
	if err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return pathErr("write", rel, err)
	}
	return nil
}

// EnsureDir makes base/rel a directory (creating missing components with
// mode perm and owner uid:gid) reached without symlinks, and sets the last
// component's mode and owner through its descriptor.
func EnsureDir(base, rel string, perm os.FileMode, uid, gid int) error {
	var comps []string
	if filepath.Clean(rel) != "." {
		var err error
		if comps, err = split(rel); err != nil {
			return err
		}
	}
	fd, err := openDirFd(base, nil)
	if err != nil {
		return err
	}
	for i, c := range comps {
		if err := unix.Mkdirat(fd, c, uint32(perm.Perm())); err != nil && !errors.Is(err, unix.EEXIST) {
			unix.Close(fd)
			return pathErr("mkdir", filepath.Join(comps[:i+1]...), err)
		}
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil && errors.Is(err, unix.ENOTDIR) {
			var st unix.Stat_t
			if unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = unix.ELOOP
			}
		}
		unix.Close(fd)
		if err != nil {
			return pathErr("open", filepath.Join(comps[:i+1]...), err)
		}
		fd = next
	}
	defer unix.Close(fd)
	if err := fchown(fd, uid, gid); err != nil {
		return pathErr("chown", rel, err)
	}
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return pathErr("chmod", rel, err)
	}
	return nil
}

func fchown(fd, uid, gid int) error {
	if os.Geteuid() != 0 || (uid == Keep && gid == Keep) {
		return nil
	}
	return unix.Fchown(fd, uid, gid)
}

// RemoveForeign deletes the entries of base/rel that root should not trust
// there: anything but a regular file owned by one of owners. It is run when
// a directory the app user could once write becomes root's, so what the
// app left in it (a symlink, a FIFO, a directory) goes.
func RemoveForeign(base, rel string, owners ...int) error {
	d, err := OpenDir(base, rel)
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	dfd := int(d.Fd())
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG && slices.Contains(owners, int(st.Uid)) {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = removeTreeAt(dfd, n)
		} else {
			err = unix.Unlinkat(dfd, n, 0)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return pathErr("remove", filepath.Join(rel, n), err)
		}
	}
	return nil
}

// removeTreeAt removes the directory name in dfd and everything in it,
// never following a symlink.
func removeTreeAt(dfd int, name string) error {
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	names, err := d.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			var st unix.Stat_t
			if unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				err = removeTreeAt(fd, n)
			} else {
				err = unix.Unlinkat(fd, n, 0)
			}
			if err != nil && !errors.Is(err, unix.ENOENT) {
				break
			}
			err = nil
		}
	}
	d.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
}

// ReadFileConfined reads base/rel through os.Root: symlinks are followed
// only while they stay beneath base (a repository's requirements.txt may
// be a link to requirements/prod.txt), and it must be a regular file of at
// most max bytes. For files whose content is the app's own business and
// whose links may legitimately point within the tree.
func ReadFileConfined(base, rel string, max int64) ([]byte, error) {
	root, err := os.OpenRoot(base)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.OpenFile(rel, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, &fs.PathError{Op: "read", Path: rel, Err: fmt.Errorf("larger than %d bytes", max)}
	}
	return data, nil
}

// Tail returns the last n lines of base/rel (reached as Open does), read
// from at most its last 64 KiB; "" if it cannot be read.
func Tail(base, rel string, n int) string {
	f, err := Open(base, rel)
	if err != nil {
		return ""
	}
	defer f.Close()
	const window = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > window {
		if _, err := f.Seek(fi.Size()-window, io.SeekStart); err != nil {
			return ""
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, window))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
