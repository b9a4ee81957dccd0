package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
)

// extractTarGz unpacks a `git archive --format=tar.gz` stream into dir.
// os.Root confines every path and symlink to dir: an entry that escapes it
// fails the deploy instead of writing outside.
func extractTarGz(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	defer gz.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		name := path.Clean(h.Name)
		if name == "." || name == "pax_global_header" {
			continue
		}
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("archive entry %q escapes the release dir", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
				return err
			}
			if err := root.Symlink(h.Linkname, name); err != nil {
				return err
			}
		case tar.TypeXGlobalHeader:
		default:
			return fmt.Errorf("archive entry %q has unsupported type %c", h.Name, h.Typeflag)
		}
	}
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

// tail returns the last n lines of a file ("" if it cannot be read).
func tail(file string, n int) string {
	data, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	return "       " + strings.ReplaceAll(s, "\n", "\n       ")
}
