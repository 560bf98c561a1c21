package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// VS Code reads .vscode/mcp.json as "JSON with comments": // and /* */
// comments and trailing commas are allowed, and people copy such files
// into the other tools' places too. stripJSONC turns that into JSON with
// the same byte offsets, so that a JSON syntax error still names the right
// line.

// stripJSONC returns data with comments, trailing commas and a leading
// byte order mark replaced by spaces (newlines are kept). It does not
// check that the rest is JSON; an unterminated block comment is an error.
// Strings are copied as they are, "//" inside them included.
func stripJSONC(data []byte) ([]byte, error) {
	out := bytes.Clone(data)
	blank := func(from, to int) {
		for i := from; i < to; i++ {
			if out[i] != '\n' && out[i] != '\r' {
				out[i] = ' '
			}
		}
	}
	i := 0
	if bytes.HasPrefix(out, []byte("\xef\xbb\xbf")) {
		blank(0, 3)
		i = 3
	}
	comma := -1 // offset of a comma that only blanks have followed so far
	for i < len(out) {
		switch c := out[i]; {
		case c == '"':
			j := i + 1
			for j < len(out) && out[j] != '"' {
				if out[j] == '\\' {
					j++
				}
				j++
			}
			i = j + 1 // past the closing quote, or the end
			comma = -1
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			j := i
			for j < len(out) && out[j] != '\n' {
				j++
			}
			blank(i, j)
			i = j
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			end := bytes.Index(out[i+2:], []byte("*/"))
			if end < 0 {
				return nil, fmt.Errorf("line %d: a /* comment is not closed", lineAt(data, i))
			}
			blank(i, i+2+end+2)
			i += 2 + end + 2
		case c == ',':
			if comma >= 0 {
				comma = -1 // ",,": left for the JSON decoder to report
			} else {
				comma = i
			}
			i++
		case c == '}' || c == ']':
			if comma >= 0 {
				out[comma] = ' '
			}
			comma = -1
			i++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		default:
			comma = -1
			i++
		}
	}
	return out, nil
}

// lineAt returns the 1-based line of byte offset off in data.
func lineAt(data []byte, off int) int {
	off = min(max(off, 0), len(data))
	return bytes.Count(data[:off], []byte("\n")) + 1
}

// jsonError words a JSON decoding error of data with its line.
func jsonError(data []byte, err error) error {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("line %d: invalid JSON: %v", lineAt(data, int(se.Offset)), se)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := te.Field
		if field == "" {
			field = "the document"
		}
		return fmt.Errorf("line %d: %s must be %s, not %s", lineAt(data, int(te.Offset)), field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errors.New("invalid JSON: the file ends too early (a missing } or ]?)")
	}
	return fmt.Errorf("invalid JSON: %w", err)
}

func jsonKind(k string) string {
	switch k {
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	}
	return k
}

// member is one "key": value of a JSON object, in file order.
type member struct {
	key   string
	value json.RawMessage
	line  int // of the key
	off   int // of the value's first byte in the document
}

// objectMembers returns the members of the JSON object raw in file order;
// base is raw's offset in the whole document, for line numbers. A key that
// appears twice is reported in dup (JSON decoders keep the last one,
// which is what the tools that wrote the file do too).
func objectMembers(doc []byte, raw json.RawMessage, base int) (members []member, dup []string, err error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, jsonError(doc, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, fmt.Errorf("line %d: must be an object ({…}), not %s", lineAt(doc, base), describeToken(tok))
	}
	index := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, jsonError(doc, err)
		}
		key, _ := tok.(string)
		keyEnd := base + int(dec.InputOffset())
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, jsonError(doc, err)
		}
		// A raw value is its exact bytes, ending where the decoder is.
		m := member{key: key, value: v, line: lineAt(doc, keyEnd-1), off: base + int(dec.InputOffset()) - len(v)}
		if i, ok := index[key]; ok {
			dup = append(dup, key)
			members[i] = m
			continue
		}
		index[key] = len(members)
		members = append(members, m)
	}
	return members, dup, nil
}

func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "an array"
		}
		return string(t)
	case string:
		return "a string"
	case nil:
		return "null"
	case bool:
		return "true or false"
	}
	return "a number"
}
