package modern

import (
	"errors"
	"testing"
)

// The encoding examples table of streamable-http.mdx, "Value Encoding".
var specEncodingExamples = []struct {
	original, encoded string
}{
	{"us-west1", "us-west1"},
	{"Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="},
	{" padded ", "=?base64?IHBhZGRlZCA=?="},
	{"line1\nline2", "=?base64?bGluZTEKbGluZTI=?="},
	{"=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="},
}

func TestEncodeHeaderValueSpecExamples(t *testing.T) {
	for _, ex := range specEncodingExamples {
		if got := EncodeHeaderValue(ex.original); got != ex.encoded {
			t.Errorf("EncodeHeaderValue(%q) = %q, want %q", ex.original, got, ex.encoded)
		}
	}
}

func TestDecodeHeaderValueSpecExamples(t *testing.T) {
	for _, ex := range specEncodingExamples {
		got, err := DecodeHeaderValue(ex.encoded)
		if err != nil || got != ex.original {
			t.Errorf("DecodeHeaderValue(%q) = %q, %v; want %q", ex.encoded, got, err, ex.original)
		}
	}
}

func TestEncodeHeaderValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"get_weather", "get_weather"},
		{"file:///projects/myapp/config.json", "file:///projects/myapp/config.json"},
		{"a b\tc", "a b\tc"},                          // inner space and tab are header-safe
		{"\tx", "=?base64?CXg=?="},                    // leading tab
		{"x ", "=?base64?eCA=?="},                     // trailing space
		{"del\x7f", "=?base64?ZGVsfw==?="},            // DEL is not visible ASCII
		{"=?base64?=", "=?base64?PT9iYXNlNjQ/PQ==?="}, // overlapping markers still match the pattern
		{"=?BASE64?x?=", "=?BASE64?x?="},              // markers are case-sensitive
		{"=?base64?x", "=?base64?x"},                  // prefix without suffix
	} {
		if got := EncodeHeaderValue(tc.in); got != tc.want {
			t.Errorf("EncodeHeaderValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDecodeHeaderValue(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"plain", "plain", true},
		{"", "", true},
		{"=?base64??=", "", true},
		{"=?BASE64?eA==?=", "=?BASE64?eA==?=", true}, // not the sentinel: plain
		{"=?base64?eA==", "=?base64?eA==", true},     // no suffix: plain
		{"=?base64?eA==?=", "x", true},
		{"=?base64?eA?=", "", false},     // unpadded
		{"=?base64?eA=?=", "", false},    // bad padding
		{"=?base64?eB==?=", "", false},   // non-zero trailing bits (non-canonical)
		{"=?base64?e\nA==?=", "", false}, // line break
		{"=?base64?e A==?=", "", false},  // space
		{"=?base64?-_8=?=", "", false},   // URL-safe alphabet
		{"=?base64?gA==?=", "", false},   // 0x80 is not UTF-8
		{"=?base64?=", "", false},        // markers overlap
		{"=?base64?not base64!?=", "", false},
	} {
		got, err := DecodeHeaderValue(tc.in)
		if tc.ok {
			if err != nil || got != tc.want {
				t.Errorf("DecodeHeaderValue(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil || !errors.Is(err, errBadEncoding) {
			t.Errorf("DecodeHeaderValue(%q) = %q, %v; want errBadEncoding", tc.in, got, err)
		}
	}
}

func TestIsModern(t *testing.T) {
	for v, want := range map[string]bool{
		"2026-07-28":  true,
		"2027-01-01":  true,
		"2025-11-25":  false,
		"2024-11-05":  false,
		"":            false,
		"9":           false,
		"DRAFT-2026":  false,
		"2026-07-28x": false,
		"2026/07/28":  false,
	} {
		if got := IsModern(v); got != want {
			t.Errorf("IsModern(%q) = %v, want %v", v, got, want)
		}
	}
}
