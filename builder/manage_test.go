package builder

import (
	"bytes"
	"strings"
	"testing"
)

// TestTokenWriter: output reaches the log line by line, indented, however
// the writes split it; the token line is not logged and signals once,
// after everything before it was logged; a second token line is output.
func TestTokenWriter(t *testing.T) {
	const token = "conductor-collectstatic-done-abc"
	in := "Copying 'a.css'\r\n12 static files copied.\n\n" + token + "\nOperations to perform:\n" + token + "\nno newline"
	for _, size := range []int{1, 3, 7, len(in)} {
		var log bytes.Buffer
		var atToken string
		calls := 0
		w := &tokenWriter{next: &indentWriter{w: &log}, token: []byte(token), onToken: func() {
			calls++
			atToken = log.String()
		}}
		for i := 0; i < len(in); i += size {
			_, _ = w.Write([]byte(in[i:min(i+size, len(in))]))
		}
		w.Flush()
		if calls != 1 {
			t.Errorf("write size %d: onToken called %d times, want 1", size, calls)
		}
		wantBefore := "       Copying 'a.css'\n       12 static files copied.\n"
		if atToken != wantBefore {
			t.Errorf("write size %d: logged at the token %q, want %q", size, atToken, wantBefore)
		}
		want := wantBefore + "       Operations to perform:\n       " + token + "\n       no newline\n"
		if log.String() != want {
			t.Errorf("write size %d: logged %q, want %q", size, log.String(), want)
		}
		if strings.Count(log.String(), token) != 1 {
			t.Errorf("write size %d: the first token line was logged", size)
		}
	}
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
