package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/hasadna/conductor/pythons"
)

// runCommand runs one of conductor's commands in process.
func runCommand(cmd *cobra.Command, args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err = cmd.Execute()
	return out.String(), errOut.String(), err
}

// TestPythonCommands: python:list (text and JSON), python:remove, and
// python:add's report of what it refused. (pythons.TestAdd registers a
// real interpreter.)
func TestPythonCommands(t *testing.T) {
	dir := t.TempDir()
	out, _, err := runCommand(pythonListCommand(), "--pythons", dir)
	if err != nil || !strings.Contains(out, "No Python is registered in "+dir) || !strings.Contains(out, "conductor python:add") {
		t.Errorf("python:list of none: %q, %v", out, err)
	}
	out, _, err = runCommand(pythonListCommand(), "--pythons", dir, "--json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("python:list --json of none: %q, %v", out, err)
	}

	for _, v := range []string{"3.12.1", "3.9.18"} {
		if err := os.MkdirAll(filepath.Join(dir, v, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, v, "bin", "python3"), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err = runCommand(pythonListCommand(), "--pythons", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "3.9.18 ") || !strings.HasSuffix(lines[1], filepath.Join(dir, "3.12.1", "bin", "python3")) {
		t.Errorf("python:list: %q, %v", out, err)
	}
	out, _, err = runCommand(pythonListCommand(), "--pythons", dir, "--json")
	var list []pythons.Interpreter
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 || list[1].Version != "3.12.1" {
		t.Errorf("python:list --json: %q, %v", out, err)
	}

	out, _, err = runCommand(pythonRemoveCommand(), "--pythons", dir, "3.9.18")
	if err != nil || !strings.Contains(out, "Removed Python 3.9.18") {
		t.Errorf("python:remove: %q, %v", out, err)
	}
	if _, _, err = runCommand(pythonRemoveCommand(), "--pythons", dir, "3.9.18"); err == nil || !strings.Contains(err.Error(), "3.12.1 are") {
		t.Errorf("python:remove of a removed one: %v", err)
	}
	if _, _, err = runCommand(pythonRemoveCommand(), "--pythons", dir, "../x"); err == nil {
		t.Error("python:remove ../x: no error")
	}

	_, errOut, err := runCommand(pythonAddCommand(), "--pythons", dir, "/usr/bin/python3", "/nonexistent")
	if err == nil || err.Error() != "2 of 2 not registered" ||
		!strings.Contains(errOut, "/usr/bin/python3: not registered: ") || !strings.Contains(errOut, "/nonexistent: not registered: ") {
		t.Errorf("python:add of what cannot be: %v\n%s", err, errOut)
	}
}

// serve and worker take --pythons, as the config file's key.
func TestPythonsFlag(t *testing.T) {
	for _, cmd := range []*cobra.Command{serveCommand(), workerCommand(), doctorCommand()} {
		f := cmd.Flags().Lookup("pythons")
		if f == nil || f.DefValue != pythons.DefaultDir {
			t.Errorf("%s --pythons: %+v", cmd.Name(), f)
		}
	}
}
