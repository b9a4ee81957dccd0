package termtext

import (
	"testing"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "GET / 200 in 3 ms", "GET / 200 in 3 ms"},
		{"newline and tab kept", "a\tb\nc", "a\tb\nc"},
		{"utf-8 kept", "שלום — café ✓", "שלום — café ✓"},
		{"empty", "", ""},
		{"color", "\x1b[31mred\x1b[0m", "red"},
		{"clear screen and home", "\x1b[2J\x1b[Hhi", "hi"},
		{"private mode", "\x1b[?1049hx", "x"},
		{"csi with intermediate", "\x1b[1 qx", "x"},
		{"osc title, BEL", "\x1b]0;pwned\x07after", "after"},
		{"osc title, ST", "\x1b]2;pwned\x1b\\after", "after"},
		{"osc 52 clipboard", "\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07ok", "ok"},
		{"osc 8 hyperlink", "\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\", "click"},
		{"osc ended by C1 ST", "\x1b]0;t\u009cafter", "after"},
		{"dcs", "\x1bP1$r0m\x1b\\x", "x"},
		{"apc", "\x1b_payload\x1b\\x", "x"},
		{"unterminated osc", "a\x1b]0;title never ends", "a"},
		{"unterminated csi", "a\x1b[31", "a"},
		{"lone esc", "a\x1b", "a"},
		{"two-byte escape (RIS)", "\x1bcx", "x"},
		{"charset escape", "\x1b(Bx", "x"},
		{"csi cut by a newline", "\x1b[31\nx", "\nx"},
		{"csi cut by another escape", "\x1b[31\x1b[0mx", "x"},
		{"carriage return", "real\rfake", "realfake"},
		{"backspace", "abc\b\b\bxyz", "abcxyz"},
		{"bell and nul", "a\x07b\x00c", "abc"},
		{"del", "a\x7fb", "ab"},
		{"C1 CSI as utf-8", "\u009b31mx", "31mx"},
		{"C1 OSC as utf-8", "a\u009db", "ab"},
		{"stray C1 byte", "a\x9b31mb", "a31mb"},
		{"other invalid utf-8 kept", "caf\xe9", "caf\xe9"},
		{"U+00A0 kept", "a\u00a0b", "a\u00a0b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sanitize(tt.in); got != tt.want {
				t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzSanitize: whatever goes in, nothing a terminal acts on comes out, and
// sanitizing again changes nothing.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"\x1b[31mred", "\x1b]0;t\x07", "a\rb", "\u009b1m", "\x9b", "\xc2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := Sanitize(in)
		for i := 0; i < len(out); {
			r, size := utf8.DecodeRuneInString(out[i:])
			if r == utf8.RuneError && size == 1 {
				if c := out[i]; c >= 0x80 && c <= 0x9f {
					t.Fatalf("Sanitize(%q) = %q: stray C1 byte %#x", in, out, c)
				}
			} else if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) {
				t.Fatalf("Sanitize(%q) = %q: control character %U", in, out, r)
			}
			i += size
		}
		if again := Sanitize(out); again != out {
			t.Fatalf("not idempotent: %q → %q → %q", in, out, again)
		}
		if len(out) > len(in) {
			t.Fatalf("Sanitize(%q) = %q: longer than its input", in, out)
		}
	})
}
