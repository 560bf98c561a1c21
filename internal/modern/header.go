package modern

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// The markers of the Base64 sentinel form (streamable-http.mdx, "Value
// Encoding"). They are case-sensitive.
const (
	sentinelPrefix = "=?base64?"
	sentinelSuffix = "?="
)

// errBadEncoding wraps every DecodeHeaderValue failure.
var errBadEncoding = errors.New("invalid Base64 sentinel header value")

// DecodeHeaderValue decodes a header value that may use the spec's Base64
// sentinel form "=?base64?{std base64 of UTF-8}?=" (markers case-sensitive;
// exactly that prefix and suffix). Plain values are returned as-is.
//
// The payload must be padded standard base64 (RFC 4648 section 4, as in
// the spec's examples) in canonical form: a payload without its padding, in
// the URL-safe alphabet, with embedded whitespace or line breaks, or with
// non-zero trailing bits is rejected, so each decoded value has exactly one
// encoding. The decoded
// bytes must be valid UTF-8. A value that starts with the prefix and ends
// with the suffix but is too short to hold both (such as "=?base64?=") is
// an error. An empty payload decodes to "".
func DecodeHeaderValue(v string) (string, error) {
	if !matchesSentinel(v) {
		return v, nil
	}
	if len(v) < len(sentinelPrefix)+len(sentinelSuffix) {
		return "", fmt.Errorf("%w: markers overlap", errBadEncoding)
	}
	payload := v[len(sentinelPrefix) : len(v)-len(sentinelSuffix)]
	// encoding/base64 skips CR and LF even in strict mode.
	if strings.ContainsAny(payload, "\r\n") {
		return "", fmt.Errorf("%w: line break in payload", errBadEncoding)
	}
	b, err := base64.StdEncoding.Strict().DecodeString(payload)
	if err != nil {
		return "", fmt.Errorf("%w: %w", errBadEncoding, err)
	}
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: payload is not UTF-8", errBadEncoding)
	}
	return string(b), nil
}

// EncodeHeaderValue is the inverse of DecodeHeaderValue (for tests and
// clients): the value as-is if it consists of header-safe ASCII (visible
// characters, space and tab) without leading or trailing whitespace and
// does not itself match the sentinel pattern; otherwise the sentinel form
// of its bytes. A value that is not valid UTF-8 is encoded too, but
// DecodeHeaderValue rejects the result.
func EncodeHeaderValue(v string) string {
	if headerSafe(v) && !matchesSentinel(v) && strings.Trim(v, " \t") == v {
		return v
	}
	return sentinelPrefix + base64.StdEncoding.EncodeToString([]byte(v)) + sentinelSuffix
}

// matchesSentinel reports whether v starts with the prefix and ends with
// the suffix, the pattern clients must never send as a plain value.
func matchesSentinel(v string) bool {
	return strings.HasPrefix(v, sentinelPrefix) && strings.HasSuffix(v, sentinelSuffix)
}

// headerSafe reports whether every byte of v is allowed in a header value
// by the spec (RFC 9110 field values restricted to ASCII): visible ASCII
// 0x21-0x7E, space and horizontal tab.
func headerSafe(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 || c > 0x7e) && c != '\t' {
			return false
		}
	}
	return true
}
