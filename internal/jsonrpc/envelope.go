package jsonrpc

import (
	"bytes"
	"strings"

	"github.com/mcpgw/mcpgw/internal/jsonscan"
)

// parseEnvelope is Parse's fast path: it reads the members of the top-level
// object without reflection, copying the message once and slicing the raw
// values out of the copy. It accepts only the plain form every MCP
// implementation writes: exact lower-case member names without escapes,
// each at most once, and a "jsonrpc" and "method" that are plain strings.
// Anything else (including invalid JSON) reports ok false, and Parse decodes
// with encoding/json as before, so the results and errors for unusual input
// do not change. On success the wire fields equal what json.Unmarshal would
// have set.
func parseEnvelope(data []byte) (w wire, ok bool) {
	if !jsonscan.Valid(data) { // encoding/json's verdict, faster
		return wire{}, false
	}
	data = bytes.Clone(data) // the values alias this copy, not the caller's buffer
	i := jsonscan.SkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return wire{}, false
	}
	i = jsonscan.SkipSpace(data, i+1)
	var seen [6]bool
	for i < len(data) && data[i] != '}' {
		// data is valid JSON, so this is a member: "key" : value [,]
		keyEnd, plain := jsonscan.StringEnd(data, i)
		if !plain {
			return wire{}, false
		}
		key := data[i+1 : keyEnd-1]
		i = jsonscan.SkipSpace(data, keyEnd)
		i = jsonscan.SkipSpace(data, i+1) // the colon
		valStart := i
		i = jsonscan.ValueEnd(data, i)
		val := data[valStart:i:i] // cap == len: an append by a caller copies
		slot := memberSlot(key)
		switch {
		case slot < 0:
			if foldsToMember(key) {
				return wire{}, false // encoding/json matches names case-insensitively
			}
		case seen[slot]:
			return wire{}, false // duplicates: encoding/json keeps the last one
		default:
			seen[slot] = true
			if !setMember(&w, slot, val) {
				return wire{}, false
			}
		}
		i = jsonscan.SkipSpace(data, i)
		if i < len(data) && data[i] == ',' {
			i = jsonscan.SkipSpace(data, i+1)
		}
	}
	return w, true
}

var memberNames = [6]string{"jsonrpc", "id", "method", "params", "result", "error"}

func memberSlot(key []byte) int {
	for i, n := range memberNames {
		if string(key) == n {
			return i
		}
	}
	return -1
}

func foldsToMember(key []byte) bool {
	for _, n := range memberNames {
		if len(key) == len(n) && strings.EqualFold(string(key), n) {
			return true
		}
	}
	// Non-ASCII names can fold to ASCII ones (U+017F, U+212A).
	for _, c := range key {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// setMember stores one member's raw value as encoding/json would, or
// reports false for a form the fast path leaves to encoding/json.
func setMember(w *wire, slot int, val []byte) bool {
	switch slot {
	case 0, 2: // jsonrpc, method: plain strings only
		if val[0] != '"' {
			return false
		}
		s, plain := plainString(val)
		if !plain {
			return false
		}
		if slot == 0 {
			w.JSONRPC = s
		} else {
			w.Method = &s
		}
	case 1:
		w.ID = val
	case 3:
		w.Params = val
	case 4:
		w.Result = val
	case 5:
		w.Error = val
	}
	return true
}

// plainString returns the contents of a JSON string literal without
// escapes, control characters or non-ASCII bytes (which encoding/json
// would transform), and whether it is one.
func plainString(lit []byte) (string, bool) {
	body := lit[1 : len(lit)-1]
	for _, c := range body {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			return "", false
		}
	}
	return string(body), true
}
