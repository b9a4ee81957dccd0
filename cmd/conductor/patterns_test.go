package main

import (
	"testing"

	"github.com/hasadna/conductor/internal/lazyre"
)

// TestPatternsCompile: the packages compile their regular expressions on
// first use (lazyre), not at start; every one linked into the binary must
// compile.
func TestPatternsCompile(t *testing.T) {
	n, err := lazyre.CompileAll()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d patterns", n)
	if n < 40 { // 42 when this was written
		t.Errorf("only %d patterns are linked into the binary", n)
	}
}
