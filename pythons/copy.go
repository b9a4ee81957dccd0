package pythons

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// maxText is the largest file whose text is searched for the source's
// prefix: sysconfig data, Makefiles, pkg-config files and scripts are
// small; libpython.a and the like are not text.
const maxText = 4 << 20

// copier copies an installation tree from src into dst, a temporary
// directory that will be renamed to final.
type copier struct {
	src, dst, final string
	olds            []string // prefixes the installation wrote into its files, longest first
	// rewritten are the .py files (relative to dst) whose text named the
	// source: their compiled caches are stale.
	rewritten []string
}

// copyTree copies c.src into c.dst without following links. Directories
// are made private while they fill up and get their final modes last.
func (c *copier) copyTree(ctx context.Context) error {
	type dir struct {
		path  string
		mode  fs.FileMode
		mtime time.Time
	}
	var dirs []dir
	err := filepath.WalkDir(c.src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(c.src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(c.dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if rel != "." {
				if err := os.Mkdir(to, 0o700); err != nil {
					return err
				}
			}
			dirs = append(dirs, dir{to, fi.Mode(), fi.ModTime()})
		case d.Type()&fs.ModeSymlink != 0:
			return c.copyLink(path, to, rel)
		case d.Type().IsRegular():
			return c.copyFile(path, to, rel, fi)
		}
		// Sockets, pipes and devices have no place in an installation.
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setOwner(dirs[i].path); err != nil {
			return err
		}
		if err := os.Chmod(dirs[i].path, public(dirs[i].mode, true)); err != nil {
			return err
		}
		_ = os.Chtimes(dirs[i].path, time.Time{}, dirs[i].mtime)
	}
	return nil
}

// public is the mode of a copied file or directory: its own permission
// bits, readable by everyone, runnable by everyone when anyone could run
// it (or it is a directory), writable by its owner only, no set-id bits.
func public(m fs.FileMode, dir bool) fs.FileMode {
	p := m.Perm()&^0o022 | 0o444
	if dir || p&0o111 != 0 {
		p |= 0o111
	}
	if dir {
		p |= 0o200
	}
	return p
}

// setOwner makes path root's when we are root (never following a link).
func setOwner(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	return os.Lchown(path, 0, 0)
}

// copyLink copies a symbolic link as a link. A link that names a place in
// the source by its absolute path is made relative, so it names the same
// place in the copy; any other link is copied as it is, never followed.
func (c *copier) copyLink(path, to, rel string) error {
	target, err := os.Readlink(path)
	if err != nil {
		return err
	}
	if filepath.IsAbs(target) {
		for _, old := range c.olds {
			if within(target, old) {
				in, _ := filepath.Rel(old, target)
				if r, err := filepath.Rel(filepath.Dir(rel), in); err == nil {
					target = r
				}
				break
			}
		}
	}
	if err := os.Symlink(target, to); err != nil {
		return err
	}
	return setOwner(to)
}

// copyFile copies a regular file with its modification time (compiled
// caches of the standard library are valid only for their source's
// mtime), writes the copy's prefix for the source's in text files, and
// makes the run paths of shared objects relative ($ORIGIN).
func (c *copier) copyFile(path, to, rel string, fi fs.FileInfo) error {
	in, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	var head [8]byte
	n, _ := io.ReadFull(in, head[:])
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return err
	}
	isELF := n >= 4 && string(head[:4]) == "\x7fELF"
	isArchive := n >= 8 && string(head[:8]) == "!<arch>\n"
	if !isELF && !isArchive && fi.Size() <= maxText {
		data, err := io.ReadAll(in)
		if err != nil {
			return err
		}
		if changed, ok := c.replacePrefix(data); ok {
			data = changed
			if strings.HasSuffix(rel, ".py") {
				c.rewritten = append(c.rewritten, rel)
			}
		}
		if _, err := out.Write(data); err != nil {
			return err
		}
	} else if _, err := io.Copy(out, in); err != nil {
		return err
	}
	if isELF {
		if err := c.fixRunpath(out, rel); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
	}
	if os.Geteuid() == 0 {
		if err := out.Chown(0, 0); err != nil {
			return err
		}
	}
	if err := out.Chmod(public(fi.Mode(), false)); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(to, time.Time{}, fi.ModTime())
}

// replacePrefix writes c.final for each of c.olds in a text file (no NUL
// byte): sysconfig's data, python3-config, the Makefile and pkg-config
// files extensions are built with, scripts' #! lines. A prefix counts only
// as a whole path (3.12.1 is not the start of 3.12.10).
func (c *copier) replacePrefix(data []byte) ([]byte, bool) {
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, false
	}
	changed := false
	for _, old := range c.olds {
		if !bytes.Contains(data, []byte(old)) {
			continue
		}
		var b bytes.Buffer
		rest := data
		for {
			i := bytes.Index(rest, []byte(old))
			if i < 0 {
				b.Write(rest)
				break
			}
			end := i + len(old)
			b.Write(rest[:i])
			if end == len(rest) || !pathByte(rest[end]) {
				b.WriteString(c.final)
				changed = true
			} else {
				b.WriteString(old)
			}
			rest = rest[end:]
		}
		data = b.Bytes()
	}
	return data, changed
}

// pathByte is a byte that would continue a path's last name.
func pathByte(b byte) bool {
	return b == '.' || b == '-' || b == '_' || b == '+' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
}

// fixRunpath rewrites, in place, the entries of a shared object's
// DT_RUNPATH and DT_RPATH that name the source tree into $ORIGIN-relative
// ones: pyenv builds libpython, the interpreter and every extension
// module with RUNPATH=<prefix>/lib, so the copy would load the source's
// libpython (root can read /root; an app user cannot, and the copy would
// not run for them at all). The new string is never longer than the old,
// so it fits where the old one was, NUL-padded; a string whose tail is
// shared with another name of the string table is refused.
func (c *copier) fixRunpath(f *os.File, rel string) error {
	ef, err := elf.NewFile(f)
	if err != nil {
		return nil // not an object the loader reads either
	}
	dynstr := ef.Section(".dynstr")
	done := map[uint64]bool{}
	for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
		offs, err := ef.DynValue(tag)
		if err != nil {
			return err
		}
		for _, off := range offs {
			if done[off] {
				continue
			}
			done[off] = true
			if dynstr == nil || dynstr.Type == elf.SHT_NOBITS {
				return fmt.Errorf("%v without a .dynstr section", tag)
			}
			old, err := cString(dynstr, off)
			if err != nil {
				return fmt.Errorf("%v: %w", tag, err)
			}
			repl := c.runpath(old, rel)
			if repl == old {
				continue
			}
			if len(repl) > len(old) {
				return fmt.Errorf("%v %q: the relative %q does not fit in its place", tag, old, repl)
			}
			if shared := sharedTail(ef, old); shared != "" {
				return fmt.Errorf("%v %q shares its tail with %q in the string table: cannot rewrite it in place", tag, old, shared)
			}
			buf := make([]byte, len(old))
			copy(buf, repl)
			if _, err := f.WriteAt(buf, int64(dynstr.Offset+off)); err != nil {
				return err
			}
		}
	}
	return nil
}

// runpath is rp with each entry inside the source tree made relative to
// the directory of the object at rel.
func (c *copier) runpath(rp, rel string) string {
	entries := strings.Split(rp, ":")
	for i, e := range entries {
		for _, old := range c.olds {
			if !within(e, old) || !filepath.IsAbs(e) {
				continue
			}
			in, _ := filepath.Rel(old, filepath.Clean(e))
			r, err := filepath.Rel(filepath.Dir(rel), in)
			if err != nil {
				break
			}
			if r == "." {
				entries[i] = "$ORIGIN"
			} else {
				entries[i] = "$ORIGIN/" + r
			}
			break
		}
	}
	return strings.Join(entries, ":")
}

// cString reads the NUL-terminated string at off in a string table.
func cString(s *elf.Section, off uint64) (string, error) {
	if off >= s.Size {
		return "", errors.New("offset out of the string table")
	}
	buf := make([]byte, min(s.Size-off, 1<<16))
	if _, err := s.ReadAt(buf, int64(off)); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	i := bytes.IndexByte(buf, 0)
	if i < 0 {
		return "", errors.New("unterminated string")
	}
	return string(buf[:i]), nil
}

// sharedTail returns a name the object uses that old ends with: a linker
// may have pointed that name into old's tail, which rewriting old would
// change. (Conservative: an equal tail may also be a separate string.)
func sharedTail(ef *elf.File, old string) string {
	var names []string
	libs, _ := ef.ImportedLibraries()
	names = append(names, libs...)
	soname, _ := ef.DynString(elf.DT_SONAME)
	names = append(names, soname...)
	syms, _ := ef.DynamicSymbols()
	for _, s := range syms {
		names = append(names, s.Name)
	}
	vers, _ := ef.DynamicVersions()
	for _, v := range vers {
		names = append(names, v.Name)
		names = append(names, v.Deps...)
	}
	needs, _ := ef.DynamicVersionNeeds()
	for _, n := range needs {
		names = append(names, n.Name)
		for _, d := range n.Needs {
			names = append(names, d.Dep)
		}
	}
	for _, n := range names {
		if n != "" && n != old && strings.HasSuffix(old, n) {
			return n
		}
	}
	return ""
}

// recompile refreshes the compiled caches of the .py files replacePrefix
// changed (_sysconfigdata_*.py, mostly): with a stale cache every process
// would recompile them, and app users cannot write the cache.
func (c *copier) recompile(ctx context.Context) error {
	byLevel := map[string][]string{}
	for _, rel := range c.rewritten {
		dir, name := filepath.Split(filepath.Join(c.dst, rel))
		stem := strings.TrimSuffix(name, ".py")
		caches, _ := filepath.Glob(filepath.Join(dir, "__pycache__", globEscape(stem)+".*.pyc"))
		for _, pyc := range caches {
			level := ""
			switch {
			case strings.HasSuffix(pyc, ".opt-1.pyc"):
				level = "-O"
			case strings.HasSuffix(pyc, ".opt-2.pyc"):
				level = "-OO"
			}
			byLevel[level] = append(byLevel[level], filepath.Join(dir, name))
			if err := os.Remove(pyc); err != nil {
				return err
			}
		}
	}
	levels := make([]string, 0, len(byLevel))
	for l := range byLevel {
		levels = append(levels, l)
	}
	sort.Strings(levels)
	python := filepath.Join(c.dst, "bin", "python3")
	for _, level := range levels {
		args := []string{"-I"}
		if level != "" {
			args = append(args, level)
		}
		args = append(append(args, "-m", "compileall", "-q"), byLevel[level]...)
		cmd := exec.CommandContext(ctx, python, args...)
		cmd.Env = cleanEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("compileall %s: %v: %s", strings.Join(byLevel[level], " "), err, lastLine(string(out)))
		}
	}
	// The new caches are root's and readable by all, like the rest.
	for _, rel := range c.rewritten {
		dir, name := filepath.Split(filepath.Join(c.dst, rel))
		caches, _ := filepath.Glob(filepath.Join(dir, "__pycache__", globEscape(strings.TrimSuffix(name, ".py"))+".*.pyc"))
		for _, pyc := range caches {
			if err := setOwner(pyc); err != nil {
				return err
			}
			if err := os.Chmod(pyc, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}
