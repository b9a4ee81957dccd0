package backup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"time"
	"unicode"

	"golang.org/x/sys/unix"
)

// An app's data dir is the app's: its code, running as its unix user,
// can put anything there, at any moment, so to root it is hostile input
// (docs/security.md). The archive is therefore read through descriptors
// only: each directory is opened from its parent's descriptor, each entry
// with O_NOFOLLOW|O_NONBLOCK, and what was opened is then fstat'ed and read
// from that same descriptor. A symlink is archived as a link and never
// followed, a directory symlink never walked into, a FIFO opened without
// blocking and left out, and nothing is read by name after it was checked
// (the app cannot swap a file for a link in between). Conductor's own trees
// (certs, repositories) are read the same way.

// maxDepth bounds how deep a walk goes: each level holds a descriptor, and
// an app could nest directories until root runs out of them.
const maxDepth = 256

// source says whose files a walk reads.
type source struct {
	// app is the app whose data dir this is; "" for Conductor's own files,
	// whose problems fail the backup.
	app string
	// uid and gid are the app's unix user when Conductor runs as root
	// (check is set): a regular file the app could not read itself (a
	// hard link to root's file) is left out, since restore gives the app
	// everything in its data dir.
	uid, gid int
	check    bool
	// special may archive an entry itself (the app's SQLite database);
	// it reports whether it did.
	special func(a *archiveWriter, dirfd int, base, name, rel string) (bool, error)
	// notes say what of an app's data dir was left out, and why.
	notes []string
}

// problem records why rel was left out of an app's data, or fails the
// backup for Conductor's own files.
func (s *source) problem(rel string, err error) error {
	if s.app == "" {
		return fmt.Errorf("archive %s: %w", rel, err)
	}
	s.note(rel, err.Error())
	return nil
}

func (s *source) note(rel, why string) {
	s.notes = append(s.notes, printable(rel)+": "+printable(why))
}

// readable tells whether the app's user could read the file st itself.
func (s *source) readable(st *unix.Stat_t) bool {
	if !s.check {
		return true
	}
	switch {
	case int(st.Uid) == s.uid:
		return true // its owner can always chmod it
	case int(st.Gid) == s.gid:
		return st.Mode&0o040 != 0
	}
	return st.Mode&0o004 != 0
}

// printable makes names and messages an app controls safe to show on an
// admin's terminal, and short.
func printable(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == unicode.ReplacementChar || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// header is the tar header of the entry st, named name.
func header(name string, st *unix.Stat_t, typ byte, link string) *tar.Header {
	hdr := &tar.Header{
		Typeflag: typ,
		Name:     name,
		Linkname: link,
		Mode:     int64(st.Mode & 0o7777),
		Uid:      int(st.Uid),
		Gid:      int(st.Gid),
		ModTime:  time.Unix(st.Mtim.Unix()),
	}
	switch typ {
	case tar.TypeReg:
		hdr.Size = st.Size
	case tar.TypeDir:
		hdr.Name += "/"
	}
	return hdr
}

// openDir opens the directory dir (a path root trusts) for a walk.
func openDir(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// fileIn adds the entry base of the directory dir (a path root trusts) as
// name; it must exist unless optional.
func (a *archiveWriter) fileIn(name, dir, base string, optional bool) error {
	d, err := openDir(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(int(d.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if optional && errors.Is(err, unix.ENOENT) {
			return nil
		}
		return &fs.PathError{Op: "stat", Path: path.Join(dir, base), Err: err}
	}
	return a.at(int(d.Fd()), base, name, base, &source{}, 0)
}

// treeIn adds the directory dir (a path root trusts) as prefix, with
// everything under it, in name order; a missing dir adds nothing.
func (a *archiveWriter) treeIn(prefix, dir string, src *source) error {
	d, err := openDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer d.Close()
	return a.walkOpen(d, prefix, ".", src, 0)
}

// walkOpen adds the open directory d as name, then its entries.
func (a *archiveWriter) walkOpen(d *os.File, name, rel string, src *source, depth int) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(d.Fd()), &st); err != nil {
		return src.problem(rel, err)
	}
	if err := a.tw.WriteHeader(header(name, &st, tar.TypeDir, "")); err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return src.problem(rel, err)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := a.at(int(d.Fd()), n, name+"/"+n, path.Join(rel, n), src, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// at adds the entry base of the open directory dirfd as name: a regular
// file with the content read from the descriptor it was opened and
// checked with, a directory with its entries, a symlink as a link. FIFOs,
// sockets and devices are left out, and entries that vanish while the walk
// runs (git's temporary files) too.
func (a *archiveWriter) at(dirfd int, base, name, rel string, src *source, depth int) error {
	if src.special != nil {
		if done, err := src.special(a, dirfd, base, name, rel); err != nil || done {
			return err
		}
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ELOOP): // O_NOFOLLOW met a symlink
		return a.linkAt(dirfd, base, name, rel, src)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENXIO): // gone; a socket
		return nil
	case err != nil:
		return src.problem(rel, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return src.problem(rel, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if !src.readable(&st) {
			src.note(rel, fmt.Sprintf("left out: owned by uid %d and not readable by the app (a hard link to another user's file?)", st.Uid))
			return nil
		}
		return a.content(name, &st, f)
	case unix.S_IFDIR:
		if depth >= maxDepth {
			src.note(rel, fmt.Sprintf("left out: deeper than %d directories", maxDepth))
			return nil
		}
		return a.walkOpen(f, name, rel, src, depth)
	}
	return nil // FIFOs, sockets, devices: nothing to keep
}

// linkAt adds the symlink base of dirfd as a link entry. It is read with
// readlinkat, which never follows it.
func (a *archiveWriter) linkAt(dirfd int, base, name, rel string, src *source) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return src.problem(rel, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		// Swapped for something else since the open: the next
		// backup will see what it is now.
		return src.problem(rel, errors.New("changed while it was read"))
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, base, buf)
	if err != nil {
		return src.problem(rel, err)
	}
	return a.tw.WriteHeader(header(name, &st, tar.TypeSymlink, string(buf[:n])))
}

// content adds the regular file open as f, of which st is the fstat.
func (a *archiveWriter) content(name string, st *unix.Stat_t, f *os.File) error {
	hdr := header(name, st, tar.TypeReg, "")
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	// A file that shrinks while it is read (a log rotated) is padded to
	// the size the header promised; one that grows is cut there.
	n, err := io.CopyN(a.tw, f, hdr.Size)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	if n < hdr.Size {
		if _, err := io.CopyN(a.tw, zeros{}, hdr.Size-n); err != nil {
			return err
		}
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
