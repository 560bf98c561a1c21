// Package clip shortens text for logs and error messages without cutting
// a UTF-8 character in half.
package clip

import "unicode/utf8"

// String returns s if it has at most n bytes, else its longest prefix of
// at most n bytes that ends on a character boundary, followed by "…".
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 0 {
		n = 0
	}
	i := n
	// Step back over continuation bytes so that the cut ends a character.
	for i > 0 && i < len(s) && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// Bytes is String for a byte slice.
func Bytes(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	// Convert only what String can keep, plus a character to look at.
	return String(string(b[:min(len(b), max(n, 0)+utf8.UTFMax)]), n)
}
