package process

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Without cgroups, a stopped app process's session is killed: the child it
// backgrounded (reparented away, as when circus stops its parent) goes, and
// a process of another user in no matter which session stays.
func TestKillSessions(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	// As circus starts a process: a session of its own, as the app user.
	leader := exec.Command("/bin/sh", "-c", "sleep 600 & echo $!; exec sleep 601")
	leader.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	out, err := leader.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = leader.Process.Kill(); _ = leader.Wait() }()
	buf := make([]byte, 32)
	n, _ := out.Read(buf)
	child, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatalf("child pid %q", buf[:n])
	}
	// Another user's process in the same session is not the app's.
	other := exec.Command("sleep", "600")
	other.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()

	if n := KillSessions([]int{other.Process.Pid}, nobody); n != 0 {
		t.Errorf("killed %d processes of another user's session", n)
	}
	if n := KillSessions([]int{leader.Process.Pid}, 0); n != 0 {
		t.Errorf("killed %d processes of the app's session as root's", n)
	}
	// circus stops the leader; its child lives on until the session goes.
	_ = leader.Process.Kill()
	_ = leader.Wait()
	if err := syscall.Kill(child, 0); err != nil {
		t.Fatalf("the backgrounded child is already gone: %v", err)
	}
	if n := KillSessions([]int{leader.Process.Pid}, nobody); n != 1 {
		t.Errorf("KillSessions killed %d, want the one child", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, ok := procSession(child); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the child survived")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the other user's process was killed: %v", err)
	}
}
