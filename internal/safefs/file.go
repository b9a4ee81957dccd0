package safefs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// EnsureFile makes base/rel a regular file if nothing is there, and gives
// the regular file there mode perm and owner uid:gid through its
// descriptor. A symlink (or anything but a regular file) there is an
// error, and nothing is changed through it.
func EnsureFile(base, rel string, perm os.FileMode, uid, gid int) error {
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
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, uint32(perm.Perm()))
	if err != nil {
		return pathErr("open", rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return pathErr("stat", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return pathErr("open", rel, ErrNotRegular)
	}
	if err := fchown(fd, uid, gid); err != nil {
		return pathErr("chown", rel, err)
	}
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil {
		return pathErr("chmod", rel, err)
	}
	return nil
}

// SetOwnerIfExists is EnsureFile for a file that may not exist: a missing
// one is not created and not an error.
func SetOwnerIfExists(base, rel string, perm os.FileMode, uid, gid int) error {
	if _, err := Lstat(base, rel); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return ensureExisting(base, rel, perm, uid, gid)
}

func ensureExisting(base, rel string, perm os.FileMode, uid, gid int) error {
	comps, err := split(rel)
	if err != nil {
		return err
	}
	dfd, err := openDirFd(base, comps[:len(comps)-1])
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, comps[len(comps)-1], unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return pathErr("open", rel, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return pathErr("stat", rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return pathErr("open", rel, ErrNotRegular)
	}
	if err := fchown(fd, uid, gid); err != nil {
		return pathErr("chown", rel, err)
	}
	return unix.Fchmod(fd, uint32(perm.Perm()))
}
