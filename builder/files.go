package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/hasadna/conductor/internal/safefs"
)

// extractTarGz unpacks a `git archive --format=tar.gz` stream into dir and
// gives every entry to uid:gid (safefs.Keep leaves them to the caller).
// os.Root confines every path to dir, and a symlink whose target leaves
// the release (absolute, or climbing above it) fails the deploy with its
// name: root never follows a repository's links, and the app's own
// processes see only links within their code. Files are 0640 or 0750 and
// directories 0750, so other apps' users cannot read the code; dir itself
// is the caller's (0711: nginx's workers pass through to staticfiles).
//
// Ownership is given as the last step, bottom up: until then every
// directory is root's, so the app user cannot swap an entry for a link
// under root's feet.
//
// It returns a digest of the archive's migration files: every entry with
// a "migrations" directory in its path, its name, type and contents, in
// the archive's order (git's, by path). Two releases with the same digest
// expect the same database schema (speculative.go).
func extractTarGz(r io.Reader, dir string, uid, gid int) (migrations string, err error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return "", err
	}
	defer gz.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", err
	}
	defer root.Close()
	var created []string // directories and links, in creation order
	links := map[string]bool{}
	mkdirs := func(name string) error {
		var p string
		for _, c := range strings.Split(name, "/") {
			p = path.Join(p, c)
			if links[p] {
				return fmt.Errorf("archive entry %q is inside the symlink %q", name, p)
			}
			if err := root.Mkdir(p, 0o750); err == nil {
				created = append(created, p)
			} else if !errors.Is(err, fs.ErrExist) {
				return err
			}
		}
		return nil
	}
	digest := sha256.New()
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", err
		}
		name := path.Clean(h.Name)
		if name == "." || name == "pax_global_header" {
			continue
		}
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return "", fmt.Errorf("archive entry %q escapes the release dir", h.Name)
		}
		var data io.Reader = tr
		if inMigrations(name) {
			fmt.Fprintf(digest, "%s\x00%c\x00%s\x00", name, h.Typeflag, h.Linkname)
			data = io.TeeReader(tr, digest)
		}
		if dirName := path.Dir(name); dirName != "." {
			if err := mkdirs(dirName); err != nil {
				return "", err
			}
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := mkdirs(name); err != nil {
				return "", err
			}
		case tar.TypeReg:
			mode := os.FileMode(0o640)
			if h.Mode&0o111 != 0 {
				mode = 0o750
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
			if err != nil {
				return "", err
			}
			_, err = io.Copy(f, data)
			if err == nil && uid != safefs.Keep && os.Geteuid() == 0 {
				err = f.Chown(uid, gid)
			}
			if err == nil {
				err = f.Chmod(mode) // chown clears the setgid bit; umask narrowed it
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return "", err
			}
		case tar.TypeSymlink:
			target := h.Linkname
			if path.IsAbs(target) {
				return "", fmt.Errorf("the repository's symlink %s points outside the release (%s): only relative links inside the repository are allowed", name, target)
			}
			if t := path.Join(path.Dir(name), target); t == ".." || strings.HasPrefix(t, "../") {
				return "", fmt.Errorf("the repository's symlink %s points outside the release (%s): only relative links inside the repository are allowed", name, target)
			}
			if err := root.Symlink(target, name); err != nil {
				return "", err
			}
			links[name] = true
			created = append(created, name)
		case tar.TypeXGlobalHeader:
		default:
			return "", fmt.Errorf("archive entry %q has unsupported type %c", h.Name, h.Typeflag)
		}
	}
	sum := hex.EncodeToString(digest.Sum(nil))
	if uid == safefs.Keep || os.Geteuid() != 0 {
		return sum, nil
	}
	for i := len(created) - 1; i >= 0; i-- {
		if err := root.Lchown(created[i], uid, gid); err != nil {
			return "", err
		}
	}
	return sum, nil
}

// inMigrations tells whether an archive path is in a migrations
// directory (Django's default MIGRATION_MODULES place).
func inMigrations(name string) bool {
	return slices.Contains(strings.Split(path.Dir(name), "/"), "migrations") ||
		path.Base(name) == "migrations"
}

// indentWriter indents command output under a step header, as Heroku does.
type indentWriter struct {
	w   io.Writer
	mu  sync.Mutex
	buf []byte
}

func (i *indentWriter) Write(p []byte) (int, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.buf = append(i.buf, p...)
	for {
		n := bytes.IndexAny(i.buf, "\n\r")
		if n < 0 {
			return len(p), nil
		}
		line := i.buf[:n]
		i.buf = i.buf[n+1:]
		if len(bytes.TrimSpace(line)) > 0 {
			fmt.Fprintf(i.w, "       %s\n", line)
		}
	}
}

// Flush writes a last line without a newline.
func (i *indentWriter) Flush() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if len(bytes.TrimSpace(i.buf)) > 0 {
		fmt.Fprintf(i.w, "       %s\n", i.buf)
	}
	i.buf = nil
}

func indent(s string) string {
	return "       " + strings.ReplaceAll(s, "\n", "\n       ")
}
