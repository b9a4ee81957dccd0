package builder

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestTokenWriter: output reaches the log line by line, indented, however
// the writes split it; each token line goes to onToken with its state,
// after everything before it was logged, and is not logged; the writer
// onToken returns takes the lines after it.
func TestTokenWriter(t *testing.T) {
	const token = "conductor-runner-abc"
	in := "Copying 'a.css'\r\n12 static files copied.\n\n" + token + " plan none\nOperations to perform:\n" +
		token + " done\nno newline"
	for _, size := range []int{1, 3, 7, len(in)} {
		var log, held bytes.Buffer
		var states, atToken []string
		w := &tokenWriter{next: &indentWriter{w: &log}, token: []byte(token), onToken: func(s string) io.Writer {
			states = append(states, s)
			atToken = append(atToken, log.String())
			if s == "plan none" {
				return &held
			}
			return nil
		}}
		for i := 0; i < len(in); i += size {
			_, _ = w.Write([]byte(in[i:min(i+size, len(in))]))
		}
		w.Flush()
		if strings.Join(states, ",") != "plan none,done" {
			t.Errorf("write size %d: onToken got %q, want plan none then done", size, states)
		}
		wantLog := "       Copying 'a.css'\n       12 static files copied.\n"
		if len(atToken) == 0 || atToken[0] != wantLog {
			t.Errorf("write size %d: logged at the first token %q, want %q", size, atToken, wantLog)
		}
		if log.String() != wantLog {
			t.Errorf("write size %d: logged %q, want %q", size, log.String(), wantLog)
		}
		if want := "       Operations to perform:\n       no newline\n"; held.String() != want {
			t.Errorf("write size %d: held %q, want %q", size, held.String(), want)
		}
	}
}

// TestTokenLine: the token, a space and a state is a token line; the
// token alone, inside another line or glued to a word is not.
func TestTokenLine(t *testing.T) {
	w := &tokenWriter{token: []byte("tok")}
	for line, want := range map[string]struct {
		state string
		ok    bool
	}{
		"tok plan none\n": {"plan none", true},
		"tok done\r\n":    {"done", true},
		"tok\n":           {"", false},
		"token\n":         {"", false},
		"a tok done\n":    {"", false},
		"tok\tdone\n":     {"", false},
	} {
		state, ok := w.tokenLine([]byte(line))
		if state != want.state || ok != want.ok {
			t.Errorf("tokenLine(%q) = %q, %v; want %q, %v", line, state, ok, want.state, want.ok)
		}
	}
}

// TestRunnerTokens: the plan decides whether the output is held (nothing
// to apply); "done" without a plan line counts as pending; a state seen
// twice changes nothing.
func TestRunnerTokens(t *testing.T) {
	if !overlapFits {
		t.Fatal("the deploy pipeline no longer runs collectstatic, release, start and check in a row: nothing overlaps")
	}
	newRunner := func() *manageRunner {
		return &manageRunner{planned: make(chan struct{}), ready: make(chan struct{})}
	}
	r := newRunner()
	if w := r.onToken("plan none"); w != &r.held || r.pending || !r.holding {
		t.Errorf("plan none: writer %v, pending %v, holding %v; want held output", w, r.pending, r.holding)
	}
	if w := r.onToken("done"); w != nil || r.pending {
		t.Errorf("done after plan none: writer %v, pending %v", w, r.pending)
	}
	<-r.planned
	<-r.ready

	r = newRunner()
	if w := r.onToken("plan pending"); w != nil || !r.pending || r.holding {
		t.Errorf("plan pending: writer %v, pending %v, holding %v; want the log, pending", w, r.pending, r.holding)
	}
	r = newRunner()
	r.onToken("done")
	<-r.planned
	if !r.pending || r.holding {
		t.Errorf("done without a plan: pending %v, holding %v; want pending", r.pending, r.holding)
	}
	r.onToken("done")
	r.onToken("plan none")
	if !r.pending || r.holding {
		t.Errorf("a late plan none changed a pending runner")
	}

	// A staged collectstatic says whether its output differed (staged.go).
	for state, changed := range map[string]bool{"static same": false, "static changed": true} {
		r = newRunner()
		r.onToken("plan none")
		if w := r.onToken(state); w != nil || r.staticChanged != changed {
			t.Errorf("%s: writer %v, staticChanged %v; want %v", state, w, r.staticChanged, changed)
		}
		r.onToken("done")
		<-r.ready
	}
	r = &manageRunner{planned: make(chan struct{}), ready: make(chan struct{}), unstaged: make(chan struct{})}
	if w := r.onToken("static unstaged"); w != nil {
		t.Errorf("static unstaged: writer %v", w)
	}
	<-r.unstaged
	r.onToken("static unstaged") // once only
}

// TestAdjacent: one interpreter only when nothing but post_compile runs
// between collectstatic and the release phase, in that order.
func TestAdjacent(t *testing.T) {
	steps := func(names ...string) []step {
		var out []step
		for _, n := range names {
			out = append(out, step{name: n})
		}
		return out
	}
	for _, tc := range []struct {
		steps []string
		want  bool
	}{
		{[]string{"settings", "collectstatic", "post_compile", "release", "start"}, true},
		{[]string{"collectstatic", "release"}, true},
		{[]string{"collectstatic", "post_compile", "start", "release"}, false},
		{[]string{"release", "collectstatic"}, false},
		{[]string{"collectstatic", "start"}, false},
		{[]string{"release"}, false},
	} {
		if got := adjacent(steps(tc.steps...), "collectstatic", "release", "post_compile"); got != tc.want {
			t.Errorf("adjacent(%v) = %v, want %v", tc.steps, got, tc.want)
		}
	}
	if !adjacent(pipeline, "collectstatic", "release", "post_compile") {
		t.Error("the deploy pipeline no longer has collectstatic and release next to each other: one interpreter is never used")
	}
}
