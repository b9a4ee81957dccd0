// Package termtext makes untrusted text safe to print on a terminal.
//
// App output and config values come from an app's developers (or its
// code), and an admin reads them in a terminal: an escape sequence in
// them could retitle the window, rewrite what the screen shows, or, on
// some terminals, answer back into the admin's shell. Sanitize removes
// every such sequence and every control character but newline and tab.
package termtext

import (
	"strings"
	"unicode/utf8"
)

const esc = 0x1b

// Sanitize returns s without terminal escape sequences (CSI, OSC, DCS and
// the other ECMA-48 string sequences, and two-byte escapes), C0 control
// characters other than \n and \t, DEL, and C1 control characters, both as
// UTF-8 (U+0080–U+009F) and as stray bytes 0x80–0x9F, which a terminal in
// an 8-bit mode reads as CSI and the like. Other invalid UTF-8 is kept. A
// sequence cut off by the end of s is removed up to the end.
func Sanitize(s string) string {
	if isPlain(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f):
			b.WriteByte(c)
			i++
		case c == esc:
			i = skipEscape(s, i+1)
		case c < 0x20 || c == 0x7f:
			i++ // other C0 controls and DEL
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && size == 1 && c >= 0x80 && c <= 0x9f:
				// a stray C1 byte
			case r >= 0x80 && r <= 0x9f:
				// C1 as UTF-8
			default:
				b.WriteString(s[i : i+size])
			}
			i += size
		}
	}
	return b.String()
}

// isPlain tells whether s is printable ASCII, newlines and tabs only: most
// lines are, and they are returned as they are.
func isPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\n' && c != '\t') || c >= 0x7f {
			return false
		}
	}
	return true
}

// skipEscape returns the index just past the escape sequence whose ESC is
// at i-1.
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[': // CSI: parameters and intermediates, then a final byte
		for i++; i < len(s); i++ {
			c := s[i]
			if c >= 0x40 && c <= 0x7e {
				return i + 1
			}
			if c < 0x20 || c > 0x7e {
				return i // not part of a CSI: what came before is dropped, the rest read on
			}
		}
		return i
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC: a string up to BEL or ST
		for i++; i < len(s); i++ {
			switch {
			case s[i] == 0x07: // BEL ends an OSC (xterm)
				return i + 1
			case s[i] == esc && i+1 < len(s) && s[i+1] == '\\': // ST
				return i + 2
			case s[i] == 0xc2 && i+1 < len(s) && s[i+1] == 0x9c: // ST as UTF-8 C1
				return i + 2
			}
		}
		return i
	default: // ESC, intermediates (0x20–0x2F), then a final byte (0x30–0x7E)
		for ; i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f; i++ {
		}
		if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
			return i + 1
		}
		return i
	}
}
