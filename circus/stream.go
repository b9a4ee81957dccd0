package circus

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
)

// streamModule is the Python module holding LineFileStream, the stream
// class the watchers write their logs with: circus's FileStream breaks a
// line that arrives in several reads into several lines.
//
//go:embed stream/conductor_circus.py
var streamModule []byte

// StreamClass is the stdout_stream.class of every watcher.
const StreamClass = "conductor_circus.LineFileStream"

// InstallStream writes the stream module into the site-packages of the
// circus virtualenv whose bin directory is bin, where circusd imports it
// when it loads a watcher that names it; a circusd that was started before
// the file existed finds it too. It is rewritten only when it differs, by
// rename, so hosts starting side by side never see half a file.
func InstallStream(bin string) error {
	path, err := streamPath(bin)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, streamModule) {
		return nil
	}
	tmp, err := os.CreateTemp(dir, ".conductor_circus-*.py")
	if err != nil {
		return fmt.Errorf("circus: install stream module: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(streamModule); err != nil {
		tmp.Close()
		return fmt.Errorf("circus: install stream module: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("circus: install stream module: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("circus: install stream module: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("circus: install stream module: %w", err)
	}
	return nil
}

func streamPath(bin string) (string, error) {
	dirs, _ := filepath.Glob(filepath.Join(bin, "..", "lib", "python3*", "site-packages"))
	if len(dirs) != 1 {
		return "", fmt.Errorf("circus: want one python3*/site-packages in the virtualenv of %s, found %d", bin, len(dirs))
	}
	return filepath.Join(dirs[0], "conductor_circus.py"), nil
}
