package doctor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPythons(t *testing.T) {
	dir := t.TempDir()
	want(t, Pythons(dir), Warn, "no Python registered in "+dir, "conductor python:add")
	want(t, Pythons(filepath.Join(dir, "missing")), Warn, "no Python registered")
	for _, v := range []string{"3.13.0", "3.10.13"} {
		if err := os.MkdirAll(filepath.Join(dir, v, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, v, "bin", "python3"), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	want(t, Pythons(dir), OK, "Python 3.10.13, 3.13.0 in "+dir)
	if os.Geteuid() == 0 {
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		want(t, Pythons(dir), Fail, "writable by no one else")
	}
}
