package lazyre

import "testing"

func TestLazy(t *testing.T) {
	r := New(`^[a-z]{1,3}-([0-9]+)$`)
	if r.re != nil {
		t.Fatal("compiled before its first use")
	}
	if !r.MatchString("ab-12") || r.MatchString("abcd-1") {
		t.Error("MatchString")
	}
	if m := r.FindStringSubmatch("x-7"); len(m) != 2 || m[1] != "7" {
		t.Errorf("FindStringSubmatch = %q", m)
	}
	if r.String() != `^[a-z]{1,3}-([0-9]+)$` {
		t.Errorf("String = %q", r.String())
	}
	if n, err := CompileAll(); err != nil || n != 1 {
		t.Fatalf("CompileAll = %d, %v", n, err)
	}
	New(`([a-z]`) // never used: only CompileAll sees it is bad
	if _, err := CompileAll(); err == nil {
		t.Error("CompileAll passed a pattern that does not compile")
	}
}
