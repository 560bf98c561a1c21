package jsonscan

// maxDepth is encoding/json's nesting limit: a value nested deeper is
// invalid there, so it is here.
const maxDepth = 10000

// Valid reports whether data is one valid JSON value, optionally surrounded
// by whitespace: exactly what encoding/json's Valid reports (RFC 8259;
// bytes of a string are not checked for UTF-8, as encoding/json does not;
// nesting deeper than encoding/json's 10000 levels is invalid), without its
// per-byte state machine. It is the validation the slicing functions of
// this package assume, on the hot paths; FuzzValid holds it to
// encoding/json.
func Valid(data []byte) bool {
	i := SkipSpace(data, 0)
	end, ok := validValue(data, i, 0)
	return ok && SkipSpace(data, end) == len(data)
}

// validValue checks the value at data[i], at nesting depth depth, and
// returns the index just past it.
func validValue(data []byte, i, depth int) (int, bool) {
	if i >= len(data) {
		return i, false
	}
	switch c := data[i]; {
	case c == '"':
		return validString(data, i)
	case c == '{':
		return validObject(data, i, depth+1)
	case c == '[':
		return validArray(data, i, depth+1)
	case c == 't':
		return validLiteral(data, i, "true")
	case c == 'f':
		return validLiteral(data, i, "false")
	case c == 'n':
		return validLiteral(data, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		return validNumber(data, i)
	}
	return i, false
}

func validLiteral(data []byte, i int, lit string) (int, bool) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// validString checks the string literal at data[i] (a quote): no control
// characters, only the escapes JSON defines.
func validString(data []byte, i int) (int, bool) {
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return j + 1, true
		case c < 0x20:
			return j, false
		case c == '\\':
			j++
			if j >= len(data) {
				return j, false
			}
			switch data[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(data)-j < 5 {
					return j, false
				}
				for _, h := range data[j+1 : j+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return j, false
					}
				}
				j += 4
			default:
				return j, false
			}
		}
	}
	return len(data), false
}

func digits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

// validNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func validNumber(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return i, false
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		i = digits(data, i+1)
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		j := digits(data, i+1)
		if j == i+1 {
			return j, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(data, i)
		if j == i {
			return j, false
		}
		i = j
	}
	return i, true
}

func validObject(data []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return i, false
		}
		var ok bool
		if i, ok = validString(data, i); !ok {
			return i, false
		}
		i = SkipSpace(data, i)
		if i >= len(data) || data[i] != ':' {
			return i, false
		}
		if i, ok = validValue(data, SkipSpace(data, i+1), depth); !ok {
			return i, false
		}
		i = SkipSpace(data, i)
		switch {
		case i >= len(data):
			return i, false
		case data[i] == '}':
			return i + 1, true
		case data[i] != ',':
			return i, false
		}
		i = SkipSpace(data, i+1)
	}
}

func validArray(data []byte, i, depth int) (int, bool) {
	if depth > maxDepth {
		return i, false
	}
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = validValue(data, i, depth); !ok {
			return i, false
		}
		i = SkipSpace(data, i)
		switch {
		case i >= len(data):
			return i, false
		case data[i] == ']':
			return i + 1, true
		case data[i] != ',':
			return i, false
		}
		i = SkipSpace(data, i+1)
	}
}
