package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gliderlabs/ssh"
)

// recorder keeps each Write it gets, from either of a session's streams,
// in the order they came.
type recorder struct {
	mu     sync.Mutex
	writes []string // "out:..." or "err:..."
	fail   error
}

func (r *recorder) write(stream string, p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return 0, r.fail
	}
	r.writes = append(r.writes, stream+":"+string(p))
	return len(p), nil
}

func (r *recorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

type recorderStream struct {
	r      *recorder
	stream string
}

func (s recorderStream) Read([]byte) (int, error)    { return 0, io.EOF }
func (s recorderStream) Write(p []byte) (int, error) { return s.r.write(s.stream, p) }

// recordedSession is a session whose two streams go to one recorder.
type recordedSession struct{ recorderStream }

func (s recordedSession) Read(p []byte) (int, error)  { return s.recorderStream.Read(p) }
func (s recordedSession) Write(p []byte) (int, error) { return s.recorderStream.Write(p) }
func (s recordedSession) Stderr() io.ReadWriter       { return recorderStream{s.r, "err"} }
func (s recordedSession) Pty() (ssh.Pty, <-chan ssh.Window, bool) {
	return ssh.Pty{}, nil, false
}

func newRecordedSession() (*recorder, recordedSession) {
	r := &recorder{}
	return r, recordedSession{recorderStream: recorderStream{r, "out"}}
}

func TestCoalescerGathersLines(t *testing.T) {
	r, sess := newRecordedSession()
	cs := coalesce(sess)
	var want strings.Builder
	for i := range 100 {
		line := fmt.Sprintf("app-%d http://app-%d.example.org/\n", i, i)
		want.WriteString(line)
		if n, err := io.WriteString(cs, line); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if err := cs.out.Flush(); err != nil {
		t.Fatal(err)
	}
	got := r.got()
	if len(got) != 1 || got[0] != "out:"+want.String() {
		t.Fatalf("100 lines went out as %d writes, want 1 holding them in order: %q", len(got), got)
	}
	if err := cs.out.Flush(); err != nil || len(r.got()) != 1 {
		t.Fatalf("a second Flush with nothing held wrote again (%v)", err)
	}
}

// TestCoalescerStreams is `logs -f`: a line written and then nothing more
// must go out without waiting for the command to end.
func TestCoalescerStreams(t *testing.T) {
	r, sess := newRecordedSession()
	cs := coalesce(sess)
	io.WriteString(cs, "web.1 | GET / 200\n")
	deadline := time.Now().Add(10 * time.Second)
	for len(r.got()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a held line never went out without a Flush")
		}
		time.Sleep(time.Millisecond)
	}
	if got := r.got(); len(got) != 1 || got[0] != "out:web.1 | GET / 200\n" {
		t.Fatalf("writes = %q", got)
	}
	// And again after the first went out: the timer is re-armed.
	io.WriteString(cs, "web.1 | GET /about 200\n")
	for len(r.got()) == 1 {
		if time.Now().After(deadline) {
			t.Fatal("the second held line never went out")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCoalescerLargeWrites(t *testing.T) {
	r, sess := newRecordedSession()
	cs := coalesce(sess)
	big := bytes.Repeat([]byte("x"), coalesceSize+1)
	io.WriteString(cs, "head\n")
	cs.Write(big)
	io.WriteString(cs, "tail\n")
	cs.out.Flush()
	got := r.got()
	want := []string{"out:head\n", "out:" + string(big), "out:tail\n"}
	if len(got) != len(want) {
		t.Fatalf("got %d writes, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("write %d: %d bytes starting %.10q, want %d bytes starting %.10q", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}

	// Writes that fill the buffer past its size go out as the buffer fills.
	r2, sess2 := newRecordedSession()
	cs2 := coalesce(sess2)
	chunk := bytes.Repeat([]byte("y"), coalesceSize/4+1)
	for range 4 {
		cs2.Write(chunk)
	}
	if got := r2.got(); len(got) != 1 || len(got[0]) != len("out:")+3*len(chunk) {
		t.Fatalf("after 4 writes of a quarter buffer and a byte, %d writes went out, want 1 of 3 chunks", len(got))
	}
}

// TestCoalescerStderrAfterOutput: an error printed after some output
// reaches the client after it.
func TestCoalescerStderrAfterOutput(t *testing.T) {
	r, sess := newRecordedSession()
	cs := coalesce(sess)
	io.WriteString(cs, "line 1\n")
	io.WriteString(cs, "line 2\n")
	io.WriteString(cs.Stderr(), "error: no such app\n")
	got := r.got()
	want := []string{"out:line 1\nline 2\n", "err:error: no such app\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("writes = %q, want %q", got, want)
	}
}

func TestCoalescerKeepsWriteError(t *testing.T) {
	r, sess := newRecordedSession()
	cs := coalesce(sess)
	gone := errors.New("channel closed")
	r.fail = gone
	io.WriteString(cs, "lost\n")
	if err := cs.out.Flush(); !errors.Is(err, gone) {
		t.Fatalf("Flush = %v, want %v", err, gone)
	}
	if _, err := io.WriteString(cs, "more\n"); !errors.Is(err, gone) {
		t.Fatalf("Write after a failed flush = %v, want %v", err, gone)
	}
}

// TestRunCommandCoalesces: a command's lines reach the session as one
// write, and all of it before runCommand returns (and the exit status is
// sent).
func TestRunCommandCoalesces(t *testing.T) {
	ts := newTestServer(t, filepath.Join(t.TempDir(), "c.db"))
	names := []string{"alpha", "beta", "gamma"}
	for _, name := range names {
		if code, _, errOut := ts.run(ts.admin, "apps:create "+name, ""); code != 0 {
			t.Fatalf("apps:create %s: %s", name, errOut)
		}
	}
	r, sess := newRecordedSession()
	ctx := WithFingerprint(WithUser(context.Background(), ts.admin), testFP('a'))
	if code := ts.runCommand(ctx, sess, []string{"apps"}); code != 0 {
		t.Fatalf("apps exited %d: %q", code, r.got())
	}
	got := r.got()
	if len(got) != 1 {
		t.Fatalf("apps listing 3 apps made %d writes, want 1: %q", len(got), got)
	}
	for _, name := range names {
		if !strings.Contains(got[0], name) {
			t.Errorf("output %q lacks %s", got[0], name)
		}
	}
}
