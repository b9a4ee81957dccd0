package safefs

import (
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// MkdirAll makes the missing directories of base/rel, each with mode perm
// and owner uid:gid set through its descriptor; directories already there
// are left as they are. A component that is a symlink (or not a directory)
// is an error, never followed.
func MkdirAll(base, rel string, perm os.FileMode, uid, gid int) error {
	if filepath.Clean(rel) == "." {
		return nil
	}
	comps, err := split(rel)
	if err != nil {
		return err
	}
	fd, err := openDirFd(base, nil)
	if err != nil {
		return err
	}
	defer func() { unix.Close(fd) }()
	for i, c := range comps {
		created := true
		if err := unix.Mkdirat(fd, c, uint32(perm.Perm())); errors.Is(err, unix.EEXIST) {
			created = false
		} else if err != nil {
			return pathErr("mkdir", filepath.Join(comps[:i+1]...), err)
		}
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			var st unix.Stat_t
			if errors.Is(err, unix.ENOTDIR) && unix.Fstatat(fd, c, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				err = unix.ELOOP
			}
			return pathErr("open", filepath.Join(comps[:i+1]...), err)
		}
		unix.Close(fd)
		fd = next
		if created {
			if err := fchown(fd, uid, gid); err != nil {
				return pathErr("chown", filepath.Join(comps[:i+1]...), err)
			}
			if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil { // not the umask's
				return pathErr("chmod", filepath.Join(comps[:i+1]...), err)
			}
		}
	}
	return nil
}

// Remove deletes base/rel if it is anything but a directory: a symlink is
// removed itself, never its target. A missing entry is not an error.
func Remove(base, rel string) error {
	comps, err := split(rel)
	if err != nil {
		return err
	}
	dfd, err := openDirFd(base, comps[:len(comps)-1])
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Unlinkat(dfd, comps[len(comps)-1], 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return pathErr("remove", rel, err)
	}
	return nil
}
