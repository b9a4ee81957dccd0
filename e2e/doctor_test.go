package e2e

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// TestDoctor runs `conductor doctor` against a running instance: every
// check passes, its ports count as Conductor's own, circusd answers; then a
// missing nginx and a port held by someone else each give a FAIL line with
// the fix, and a non-zero exit.
func TestDoctor(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	args := []string{"doctor", "--data", in.Data, "--ssh-addr", in.SSHAddr, "--http-addr", in.HTTPAddr}

	r := runCmd(t, "", nil, nil, conductorBin, args...)
	if r.Code != 0 {
		t.Fatalf("doctor on a healthy instance: %s", r)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	for _, line := range lines {
		if !strings.HasPrefix(line, "ok ") {
			t.Errorf("not ok on a healthy instance: %q", line)
		}
	}
	for _, want := range []string{
		"nginx -t accepts " + in.Data + "/nginx/nginx.conf",
		"circusd (pid ", // answers on its socket
		in.SSHAddr + " is held by conductor (pid ",
		in.HTTPAddr + " is held by Conductor's nginx (pid ",
		"migrations applied",
		"its secrets are private",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.Stdout)
		}
	}

	// --json: the same checks, machine-readable.
	r = runCmd(t, "", nil, nil, conductorBin, append(args, "--json")...)
	var results []struct{ Check, Status, Detail, Fix string }
	if err := json.Unmarshal([]byte(r.Stdout), &results); err != nil || r.Code != 0 || len(results) != len(lines) {
		t.Fatalf("doctor --json: %v, %d results for %d lines: %s", err, len(results), len(lines), r)
	}

	// Problems: no nginx where it is said to be; the SSH port taken by
	// another program.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	r = runCmd(t, "", nil, nil, conductorBin, "doctor", "--data", in.Data, "--ssh-addr", held.Addr().String(),
		"--http-addr", in.HTTPAddr, "--nginx-bin", "/nonexistent/nginx")
	if r.Code == 0 {
		t.Fatalf("doctor passed with a missing nginx and a taken port: %s", r)
	}
	for _, want := range []string{
		"FAIL  nginx          stat /nonexistent/nginx: no such file or directory — fix: apt-get install nginx-light, or give its path with --nginx-bin",
		"FAIL  ssh port       " + held.Addr().String() + " is in use by e2e.test (pid ",
		"— fix: stop that program or give --ssh-addr another port",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, r.Stdout)
		}
	}
	if !strings.Contains(r.Stderr, "some checks failed") {
		t.Errorf("stderr: %q", r.Stderr)
	}
}
