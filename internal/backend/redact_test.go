package backend

import "testing"

func TestRedactLine(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		values     []string
		want       string
	}{
		{"a token", "auth with ghp_abcdef failed", []string{"ghp_abcdef"}, "auth with [redacted] failed"},
		{"every occurrence", "x=s3cret y=s3cret", []string{"s3cret"}, "x=[redacted] y=[redacted]"},
		{"longest first", "key=abcd1234", []string{"abcd", "abcd1234"}, "key=[redacted]"},
		{"short values are left", "level 1 of 2", []string{"1", "on", "abc"}, "level 1 of 2"},
		{"empty value", "nothing", []string{""}, "nothing"},
		{"nothing to redact", "plain line", nil, "plain line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := redactLine(tc.line, secretsOf(tc.values)); got != tc.want {
				t.Errorf("redactLine(%q) = %q, want %q", tc.line, got, tc.want)
			}
		})
	}
}
