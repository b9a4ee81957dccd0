package pybuild

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hasadna/conductor"
)

// writeTree makes a directory holding files (slash-separated path →
// content; a content starting with "->" makes a symlink to the rest).
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else if strings.HasSuffix(name, "/") {
			err = os.MkdirAll(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkErr checks that err is an EINVALID error whose message holds all
// of want ("" wants no error).
func checkErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if len(want) == 0 || (len(want) == 1 && want[0] == "") {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want one with %q", want)
	}
	if code := conductor.ErrorCode(err); code != conductor.EINVALID {
		t.Errorf("error code %q, want %q (%v)", code, conductor.EINVALID, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

const managePy = `#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "%s")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
`

func manage(module string) string {
	return strings.Replace(managePy, "%s", module, 1)
}
