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
	return setOwnerAndMode(base, rel, unix.O_CREAT, perm, uid, gid)
}

// SetOwnerIfExists is EnsureFile for a file that may not exist: a missing
// one is not created and not an error.
func SetOwnerIfExists(base, rel string, perm os.FileMode, uid, gid int) error {
	err := setOwnerAndMode(base, rel, 0, perm, uid, gid)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

func setOwnerAndMode(base, rel string, create int, perm os.FileMode, uid, gid int) error {
	fd, err := openRegular(base, rel, unix.O_RDONLY|create, uint32(perm.Perm()))
	if err != nil {
		return err
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
