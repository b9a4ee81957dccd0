package e2e

import (
	"os"

	gossh "golang.org/x/crypto/ssh"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadInput replays hostile and mistaken input over SSH: each is refused
// with a clear message and changes nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	in := StartInstance(t)
	work := in.WorkTree("hello")

	t.Run("unknown key", func(t *testing.T) {
		stranger := in.NewKey("stranger")
		r := in.SSH(stranger, "apps")
		if r.Code == 0 || !strings.Contains(r.Stderr, "Permission denied") {
			t.Errorf("unknown key was let in: %s", r)
		}
		r = in.Git(stranger, work, "push", in.RepoURL("stranger-app"), "main")
		if r.Code == 0 {
			t.Errorf("unknown key pushed: %s", r)
		}
	})

	for _, tc := range []struct{ path, want string }{
		{"../x", "invalid app name"},
		{"a;b", "invalid app name"},
		{"Hello", "invalid app name"},
		{strings.Repeat("a", 300), "invalid app name"},
		{"root", "reserved"},
		{"/../../etc/passwd", "invalid app name"},
		{"a/../../b", "invalid app name"},
		{"stranger-app.git.git", "invalid app name"},
	} {
		t.Run("push to "+tc.path[:min(len(tc.path), 20)], func(t *testing.T) {
			r := in.Git(in.AdminKey, work, "push", "ssh://git@"+in.SSHAddr+"/"+tc.path, "main")
			if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("push to %q: want failure mentioning %q, got %s", tc.path, tc.want, r)
			}
		})
	}
	// A raw git command with a path outside the repos dir.
	for _, remote := range []string{
		"git-upload-pack '../../../etc'",
		"git-receive-pack '/tmp/x.git'",
		"git-upload-pack",
		"git-upload-pack 'a' 'b'",
	} {
		r := in.SSH(in.AdminKey, remote)
		if r.Code == 0 || !strings.Contains(r.Stderr, "error:") {
			t.Errorf("%s: want a refusal, got %s", remote, r)
		}
	}

	// None of that created an app, a repository or a unix user.
	r := in.SSH(in.AdminKey, "apps --json")
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "[]" {
		t.Errorf("apps after bad pushes: %s", r)
	}
	if entries, _ := os.ReadDir(filepath.Join(in.Data, "repos")); len(entries) != 0 {
		t.Errorf("repos dir has %d entries after bad pushes", len(entries))
	}

	// Commands refuse bad arguments with a clear error and a non-zero exit.
	for _, tc := range []struct{ cmd, want string }{
		{"apps:create ../x", "invalid app name"},
		{"apps:create 'a;b'", "invalid app name"},
		{"apps:create bad --db oracle", "unknown database"},
		{"config:set nosuch A=1", "not found"},
		{"logs nosuch", "not found"},
		{"nosuchcommand", "unknown command"},
		{"apps --nosuchflag", "unknown flag"},
		{"config:set", "usage"},
		{"'unbalanced", "cannot parse"},
	} {
		r := in.SSH(in.AdminKey, tc.cmd)
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("%s: want failure mentioning %q, got %s", tc.cmd, tc.want, r)
		}
	}

	// Bad config keys on a real app change nothing.
	if r := in.SSH(in.AdminKey, "apps:create cfgapp"); r.Code != 0 {
		t.Fatalf("apps:create: %s", r)
	}
	for _, kv := range []string{"'1A=x'", "'A-B=x'", "'A B=x'", "NOEQUALS", "'=x'"} {
		r := in.SSH(in.AdminKey, "config:set cfgapp "+kv)
		if r.Code == 0 {
			t.Errorf("config:set %s succeeded: %s", kv, r)
		}
	}
	if r := in.SSH(in.AdminKey, "config cfgapp --json"); strings.TrimSpace(r.Stdout) != "{}" {
		t.Errorf("config after bad sets = %s", r)
	}

	// No shell, no port forwarding, checked with a raw SSH client. A pty is
	// granted (only `run` uses it), but a shell on it still runs nothing.
	client := in.dialSSH(in.AdminKey)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 24, 80, gossh.TerminalModes{}); err != nil {
		t.Errorf("pty request: %v", err)
	}
	var out strings.Builder
	sess.Stdout, sess.Stderr = &out, &out
	sess.Stdin = strings.NewReader("echo pwned-$((6*7))\n")
	if err := sess.Shell(); err == nil {
		_ = sess.Wait()
	}
	if strings.Contains(out.String(), "pwned-42") {
		t.Errorf("a shell ran input: %q", out.String())
	}
	if conn, err := client.Dial("tcp", in.HTTPAddr); err == nil {
		conn.Close()
		t.Errorf("local port forwarding to %s was allowed", in.HTTPAddr)
	}
	if l, err := client.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
		t.Errorf("remote port forwarding was allowed")
	}
}
