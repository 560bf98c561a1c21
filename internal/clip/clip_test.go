package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		n    int
		want string
	}{
		{"short", "abc", 5, "abc"},
		{"exact", "abcde", 5, "abcde"},
		{"ascii", "abcdef", 3, "abc…"},
		{"before a two-byte character", "abé", 3, "ab…"},
		{"after a two-byte character", "aébc", 3, "aé…"},
		{"inside a four-byte character", "a😀b", 3, "a…"},
		{"zero", "abc", 0, "…"},
		{"negative", "abc", -1, "…"},
		{"very negative", "abc", -40, "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := String(tc.in, tc.n); got != tc.want {
				t.Errorf("String(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
			if got := Bytes([]byte(tc.in), tc.n); got != tc.want {
				t.Errorf("Bytes(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func FuzzString(f *testing.F) {
	f.Add("héllo wörld 😀", 4)
	f.Fuzz(func(t *testing.T, s string, n int) {
		n %= 64
		got := String(s, n)
		if len(s) <= n {
			if got != s {
				t.Fatalf("String(%q, %d) = %q, want it unchanged", s, n, got)
			}
			return
		}
		cut := strings.TrimSuffix(got, "…")
		if !strings.HasPrefix(s, cut) || len(cut) > max(n, 0) {
			t.Fatalf("String(%q, %d) = %q: not a prefix within the bound", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("String(%q, %d) = %q: cut a character", s, n, got)
		}
		if b := Bytes([]byte(s), n); b != got {
			t.Fatalf("Bytes = %q, String = %q", b, got)
		}
	})
}
