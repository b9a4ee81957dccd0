package safefs

import (
	"errors"

	"golang.org/x/sys/unix"
)

// RemoveAll deletes base/rel and, for a directory, everything in it,
// reaching it without following a link and never following one inside it
// (a link is removed, not what it points to). A missing entry is not an
// error.
func RemoveAll(base, rel string) error {
	comps, err := split(rel)
	if err != nil {
		return err
	}
	dfd, err := openDirFd(base, comps[:len(comps)-1])
	if errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return err
	}
	defer unix.Close(dfd)
	name := comps[len(comps)-1]
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return pathErr("stat", rel, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = removeTreeAt(dfd, name)
	} else {
		err = unix.Unlinkat(dfd, name, 0)
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return pathErr("remove", rel, err)
	}
	return nil
}
