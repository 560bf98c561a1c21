// Package jsonscan slices JSON text that encoding/json has already
// validated, without decoding it: where a value starts and ends, so that
// the hot paths (the JSON-RPC envelope, a modern request's members) can
// pass values through as raw bytes. Every function assumes valid JSON: on
// anything else the indices it returns are meaningless but stay within
// the input.
package jsonscan

// SkipSpace returns the index of the first non-whitespace byte of data at
// or after i (len(data) if none).
func SkipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// StringEnd returns the index just past the string literal starting at
// data[i] (a quote), and whether the literal has no escapes and no
// non-ASCII bytes (its contents then equal its decoded value).
func StringEnd(data []byte, i int) (end int, plain bool) {
	plain = true
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return j + 1, plain
		case c == '\\':
			plain = false
			j++ // skip the escaped character; \uXXXX's digits need no care
		case c >= 0x80:
			plain = false
		}
	}
	return len(data), false
}

// ValueEnd returns the index just past the JSON value starting at data[i].
func ValueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		end, _ := StringEnd(data, i)
		return end
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i, _ = StringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}
