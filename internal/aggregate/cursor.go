package aggregate

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
)

// The gateway answers a merged list a page at a time with a cursor of its
// own: the members' lists are read to their ends (following their own
// cursors) and merged, and the client's cursor is an offset into that
// merged list plus a digest of it, so that a cursor of a list that has
// changed since is refused rather than silently skipping or repeating
// items (MCP spec, server/utilities/pagination: an invalid cursor is
// -32602).

// cursorPrefix marks the gateway's cursors and their version.
const cursorPrefix = "mcpgw1."

// maxCursor bounds a cursor a client sends back.
const maxCursor = 128

// ErrCursor is an invalid or stale cursor.
var ErrCursor = errors.New("invalid cursor")

// Digest identifies a merged list by its exposed names, in order.
func Digest(exposed []string) uint64 {
	h := sha256.New()
	for _, e := range exposed {
		h.Write([]byte(e))
		h.Write([]byte{0})
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}

// EncodeCursor is the cursor of the page that starts at offset of the
// list whose Digest is digest.
func EncodeCursor(offset int, digest uint64) string {
	raw := strconv.Itoa(offset) + "." + strconv.FormatUint(digest, 36)
	return cursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor returns the offset and digest of a cursor EncodeCursor
// made, or ErrCursor.
func DecodeCursor(s string) (offset int, digest uint64, err error) {
	if len(s) > maxCursor || !strings.HasPrefix(s, cursorPrefix) {
		return 0, 0, ErrCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(s[len(cursorPrefix):])
	if err != nil {
		return 0, 0, ErrCursor
	}
	o, d, ok := strings.Cut(string(raw), ".")
	if !ok {
		return 0, 0, ErrCursor
	}
	offset, err = strconv.Atoi(o)
	if err != nil || offset < 0 || strconv.Itoa(offset) != o {
		return 0, 0, ErrCursor
	}
	digest, err = strconv.ParseUint(d, 36, 64)
	if err != nil || strconv.FormatUint(digest, 36) != d {
		return 0, 0, ErrCursor
	}
	return offset, digest, nil
}

// Page returns the bounds [from, to) of the page a cursor asks for in a
// list of n items whose digest is digest, and the cursor of the next page
// ("" on the last). An empty cursor is the first page.
func Page(cursor string, n int, digest uint64, size int) (from, to int, next string, err error) {
	if cursor != "" {
		off, d, err := DecodeCursor(cursor)
		if err != nil {
			return 0, 0, "", err
		}
		if d != digest || off > n || off == 0 {
			return 0, 0, "", ErrCursor
		}
		from = off
	}
	to = min(from+size, n)
	if to < n {
		next = EncodeCursor(to, digest)
	}
	return from, to, next, nil
}
