package procnet

import (
	"net"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1686 1 00000000b127c7fa 100 0 0 10 0
   1: 0100007F:4E20 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 16503 1 000000003fbd4d08 100 0 0 10 0
   2: 0100007F:4E20 0100007F:9C40 01 00000000:00000000 00:00000000 00000000   101        0 16600 1 000000003fbd4d08 100 0 0 10 0
   3: 0100007F:9C40 0100007F:4E20 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0000000000000000
`

const tcp6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:4E21 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0
`

func TestParseListening(t *testing.T) {
	got, err := ParseListening(strings.NewReader(tcp))
	if err != nil {
		t.Fatal(err)
	}
	// Established (01) and TIME_WAIT (06) rows are no listeners.
	want := []Socket{{Port: 2024, Inode: 1686}, {Port: 20000, Inode: 16503}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tcp: got %v, want %v", got, want)
	}
	got, err = ParseListening(strings.NewReader(tcp6))
	if err != nil || !reflect.DeepEqual(got, []Socket{{Port: 20001, Inode: 777}}) {
		t.Errorf("tcp6: got %v, %v", got, err)
	}
	for _, bad := range []string{
		"header\n   0: 0100007F 00000000:0000 0A 0 0 0 0 0 1686 1\n",
		"header\n   0: 0100007F:ZZZZ 00000000:0000 0A 0 0 0 0 0 1686 1\n",
		"header\n   0: 0100007F:4E20 00000000:0000 0A 0 0 0 0 0 inode 1\n",
	} {
		if _, err := ParseListening(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseListening(%q) accepted it", bad)
		}
	}
}

func TestParsePPID(t *testing.T) {
	for stat, want := range map[string]int{
		"9851 (cat) R 9846 9846 9228 0 -1":            9846,
		"12 (gunicorn: (master) x) S 1 12 12 0 -1 42": 1,
	} {
		if got, err := ParsePPID([]byte(stat)); err != nil || got != want {
			t.Errorf("ParsePPID(%q) = %d, %v; want %d", stat, got, err, want)
		}
	}
	if _, err := ParsePPID([]byte("garbage")); err == nil {
		t.Error("ParsePPID accepted garbage")
	}
}

func TestParseStat(t *testing.T) {
	// A real line: gunicorn's master, asleep, 1234+56 ticks of CPU.
	line := "4242 (gunicorn: (master) x) S 1 4242 4242 0 -1 4194560 5000 0 3 0 1234 56 0 0 20 0 1 0 7100 30000000 5000 18446744073709551615"
	st, err := ParseStat([]byte(line))
	if err != nil || st != (Stat{State: 'S', PPID: 1, Ticks: 1290}) {
		t.Errorf("ParseStat = %+v, %v", st, err)
	}
	for _, bad := range []string{"garbage", "1 (x) S 1 2 3", "1 (x) S x 1 1 0 -1 0 0 0 0 0 1 1", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 a 1"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) accepted it", bad)
		}
	}
}

func TestActivity(t *testing.T) {
	// A sleeping child uses no CPU between two looks; this test's own
	// process is running while it reads.
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var ticks uint64
	asleep := false
	// Until the child has exec'd sleep and blocked: on a busy machine that
	// can take a while, hence a deadline rather than a number of looks.
	for deadline := time.Now().Add(10 * time.Second); !asleep && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		var err error
		if ticks, asleep, err = Activity([]int{cmd.Process.Pid}); err != nil {
			t.Fatal(err)
		}
	}
	if !asleep {
		t.Fatal("sleep never shown asleep")
	}
	if again, asleep2, err := Activity([]int{cmd.Process.Pid}); err != nil || !asleep2 || again != ticks {
		t.Errorf("Activity again = %d, %v, %v; want %d, asleep", again, asleep2, err, ticks)
	}
	if _, _, err := Activity([]int{cmd.Process.Pid, 1 << 30}); err == nil {
		t.Error("Activity of a pid that does not exist: no error")
	}
}

// TestActivityThreads: a process whose main thread waits while another
// thread runs is not asleep (its own state, the main thread's, is S).
func TestActivityThreads(t *testing.T) {
	cmd := exec.Command("python3", "-c", `import threading
def spin():
    while True:
        pass
th = threading.Thread(target=spin, daemon=True)
th.start()
print("started", flush=True)
th.join()`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if _, err := out.Read(make([]byte, 8)); err != nil { // "started": the thread runs
		t.Fatal(err)
	}
	mainAsleep := false
	for deadline := time.Now().Add(10 * time.Second); !mainAsleep && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		st, err := ParseStat(b)
		if err != nil {
			t.Fatal(err)
		}
		mainAsleep = st.State == 'S'
	}
	if !mainAsleep {
		t.Fatal("the main thread was never shown waiting (in join)")
	}
	for i := 0; i < 20; i++ {
		if _, asleep, err := Activity([]int{cmd.Process.Pid}); err != nil {
			t.Fatal(err)
		} else if asleep {
			t.Fatal("Activity says asleep while a thread spins")
		}
	}
}

func TestExe(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if got := Exe(os.Getpid()); got != self {
		t.Errorf("Exe(self) = %q, want %q", got, self)
	}
	if got := Exe(1 << 30); got != "" {
		t.Errorf("Exe of no process = %q", got)
	}
}

func TestTree(t *testing.T) {
	// 10 -> 11 -> 12 (a gunicorn master's worker), 20 unrelated, 1 init.
	parent := map[int]int{10: 1, 11: 10, 12: 11, 13: 10, 20: 1}
	got := Tree(parent, []int{10})
	slices.Sort(got)
	if !reflect.DeepEqual(got, []int{10, 11, 12, 13}) {
		t.Errorf("Tree = %v", got)
	}
}

func TestSocketInode(t *testing.T) {
	if n, ok := SocketInode("socket:[16503]"); !ok || n != 16503 {
		t.Errorf("socket link: %d %v", n, ok)
	}
	for _, l := range []string{"pipe:[1]", "/dev/null", "socket:[x]", "socket:[1"} {
		if _, ok := SocketInode(l); ok {
			t.Errorf("SocketInode(%q) took it", l)
		}
	}
}

// TestForeign: a listener of this process is ours when this process is a
// root, foreign otherwise; a port nobody listens on is not listening.
func TestForeign(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	foreign, listening, err := Foreign(port, []int{os.Getpid()})
	if err != nil || !listening || len(foreign) != 0 {
		t.Errorf("own listener: foreign %v, listening %v, %v", foreign, listening, err)
	}
	// Our parent's tree includes us.
	foreign, _, _ = Foreign(port, []int{os.Getppid()})
	if len(foreign) != 0 {
		t.Errorf("listener of a descendant counted as foreign: %v", foreign)
	}
	foreign, listening, err = Foreign(port, []int{1 << 22})
	if err != nil || !listening || len(foreign) != 1 {
		t.Errorf("another process's listener: foreign %v, listening %v, %v", foreign, listening, err)
	}
	l.Close()
	if _, listening, _ := Foreign(port, nil); listening {
		t.Errorf("closed listener still listening")
	}
}

// TestEstablished: a connection to a listener counts from the moment it
// is in the accept queue, before the server accepts it, until it closes.
func TestEstablished(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	count := func() int {
		t.Helper()
		s, err := Established(port)
		if err != nil {
			t.Fatal(err)
		}
		return len(s)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d connections before any", n)
	}
	c, err := net.Dial("tcp", l.Addr().String()) // queued: never accepted yet
	if err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Errorf("%d connections with one in the accept queue, want 1", n)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Errorf("%d connections with one accepted, want 1", n)
	}
	c.Close()
	s.Close()
	if n := count(); n != 0 {
		t.Errorf("%d connections after both ends closed, want 0", n)
	}
	// The parsed table: row 2 is the one established on port 20000.
	got, err := parseSockets(strings.NewReader(tcp), stateEstablished)
	if err != nil || !reflect.DeepEqual(got, []Socket{{Port: 20000, Inode: 16600}}) {
		t.Errorf("established rows: %v, %v", got, err)
	}
}

// TestDescendants: the tree of a live process, read from the children
// files, is the one every process's parent gives: a shell, its two
// background jobs and a job's own child; another process is not in it.
func TestDescendants(t *testing.T) {
	cmd := exec.Command("bash", "-c", "sleep 60 & bash -c 'sleep 60 & wait' & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // killed as a group
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	roots := []int{cmd.Process.Pid}
	var got []int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = Descendants(roots); len(got) == 4 {
			break
		}
	}
	want := Tree(Parents(), roots)
	slices.Sort(got)
	slices.Sort(want)
	if len(got) != 4 || !slices.Equal(got, want) {
		t.Fatalf("Descendants = %v, Tree(Parents()) = %v, want the shell and 3 more", got, want)
	}
	if slices.Contains(got, os.Getpid()) {
		t.Errorf("the test's own process is in %v", got)
	}
	if pp, ok := Parent(got[len(got)-1]); !ok || !slices.Contains(got, pp) {
		t.Errorf("Parent(%d) = %d, %v", got[len(got)-1], pp, ok)
	}
	if kids := Descendants([]int{1 << 30}); !slices.Equal(kids, []int{1 << 30}) {
		t.Errorf("Descendants of no process = %v", kids)
	}
}

// BenchmarkTreeOfSelf and BenchmarkDescendantsOfSelf: one look at a
// process's tree the two ways (the builder looks every 20 ms while a
// worker boots); the first reads every process on the host.
func BenchmarkTreeOfSelf(b *testing.B) {
	for b.Loop() {
		Tree(Parents(), []int{os.Getpid()})
	}
}

func BenchmarkDescendantsOfSelf(b *testing.B) {
	for b.Loop() {
		Descendants([]int{os.Getpid()})
	}
}
