package circus

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
)

// modules are the Python modules circusd imports from Conductor:
// conductor_circus (LineFileStream, the stream class the watchers write
// their logs with: circus's FileStream breaks a line that arrives in
// several reads into several lines) and conductor_hooks (signal_group, the
// watchers' before_signal hook).
//
//go:embed stream/*.py
var modules embed.FS

// StreamClass is the stdout_stream.class of every watcher.
const StreamClass = "conductor_circus.LineFileStream"

// InstallStream writes Conductor's modules into the site-packages of the
// circus virtualenv whose bin directory is bin, where circusd imports them
// when it loads a watcher that names them; a circusd that was started
// before a file existed finds it too. Each is rewritten only when it
// differs, by rename, so hosts starting side by side never see half a file.
func InstallStream(bin string) error {
	dir, err := sitePackages(bin)
	if err != nil {
		return err
	}
	names, err := fs.Glob(modules, "stream/*.py")
	if err != nil {
		return err
	}
	for _, name := range names {
		data, err := modules.ReadFile(name)
		if err != nil {
			return err
		}
		if err := installModule(filepath.Join(dir, path.Base(name)), data); err != nil {
			return fmt.Errorf("circus: install %s: %w", path.Base(name), err)
		}
	}
	return nil
}

// installModule writes data at dst unless it holds it already.
func installModule(dst string, data []byte) error {
	if old, err := os.ReadFile(dst); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".conductor-*.py")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// sitePackages is the site-packages directory of the circus virtualenv
// whose bin directory is bin.
func sitePackages(bin string) (string, error) {
	dirs, _ := filepath.Glob(filepath.Join(bin, "..", "lib", "python3*", "site-packages"))
	if len(dirs) != 1 {
		return "", fmt.Errorf("circus: want one python3*/site-packages in the virtualenv of %s, found %d", bin, len(dirs))
	}
	return dirs[0], nil
}
