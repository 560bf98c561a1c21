package modern

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/mcpgw/mcpgw/internal/jsonscan"
)

var (
	errNotObject = errors.New("not a JSON object")
	errDuplicate = errors.New("duplicate member")
)

// member is one name/value pair of a JSON object; value holds the member's
// bytes exactly as they appeared in the input.
type member struct {
	key   string
	value json.RawMessage
}

// object is a JSON object's members in input order.
type object []member

// parseObject splits raw into its members. It fails if raw is not exactly
// one JSON object (whitespace around it allowed) or names a member twice.
//
// It validates raw with jsonscan.Valid (encoding/json's verdict) and then
// slices the members out with a scanner that may rely on that validity (no
// token allocations: this runs on every modern request);
// parseObjectDecoder is the reference it is tested against.
func parseObject(raw []byte) (object, error) {
	if !jsonscan.Valid(raw) {
		return parseObjectDecoder(raw) // for encoding/json's own error
	}
	return parseValidObject(raw)
}

// parseValidObject is parseObject for raw already validated, such as a
// member value of an object parseObject returned: a value of valid JSON
// is valid JSON.
func parseValidObject(raw []byte) (object, error) {
	i := jsonscan.SkipSpace(raw, 0)
	if i == len(raw) {
		return parseObjectDecoder(raw) // not a value at all: encoding/json's error
	}
	if raw[i] != '{' {
		return nil, errNotObject
	}
	i = jsonscan.SkipSpace(raw, i+1)
	if raw[i] == '}' {
		return nil, nil
	}
	o := make(object, 0, 8) // one allocation for the usual few members
	for {
		end, _ := jsonscan.StringEnd(raw, i)
		key, err := decodeKey(raw[i:end])
		if err != nil {
			return nil, err
		}
		i = jsonscan.SkipSpace(raw, end)
		i = jsonscan.SkipSpace(raw, i+1) // the colon
		vend := jsonscan.ValueEnd(raw, i)
		if o.index(key) >= 0 {
			return nil, fmt.Errorf("%w %q", errDuplicate, key)
		}
		o = append(o, member{key, json.RawMessage(raw[i:vend])})
		i = jsonscan.SkipSpace(raw, vend)
		if raw[i] == '}' {
			return o, nil
		}
		i = jsonscan.SkipSpace(raw, i+1) // the comma
	}
}

// decodeKey decodes a member name; only one with escapes or non-ASCII
// bytes (invalid UTF-8 becomes U+FFFD) needs encoding/json.
func decodeKey(q []byte) (string, error) {
	plain := true
	for _, c := range q {
		if c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(q[1 : len(q)-1]), nil
	}
	var s string
	err := json.Unmarshal(q, &s)
	return s, err
}

// parseObjectDecoder is parseObject with encoding/json's tokenizer.
func parseObjectDecoder(raw []byte) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errNotObject
	}
	var o object
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errNotObject // unreachable: the decoder only returns strings as keys
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if o.index(key) >= 0 {
			return nil, fmt.Errorf("%w %q", errDuplicate, key)
		}
		o = append(o, member{key, v})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return o, nil
}

// index returns the position of the member named key (exact match), or -1.
func (o object) index(key string) int {
	for i, m := range o {
		if m.key == key {
			return i
		}
	}
	return -1
}

// get returns the value of the member named key, or nil.
func (o object) get(key string) json.RawMessage {
	if i := o.index(key); i >= 0 {
		return o[i].value
	}
	return nil
}

// set replaces the value of the member named key, or appends the member.
func (o object) set(key string, v json.RawMessage) object {
	if i := o.index(key); i >= 0 {
		o[i].value = v
		return o
	}
	return append(o, member{key, v})
}

// encode writes the object back. Values are copied byte-for-byte; keys are
// re-encoded from their decoded form, which is the same string.
func (o object) encode() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(jsonString(m.key))
		b.WriteByte(':')
		b.Write(m.value)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// jsonString encodes s as a JSON string without HTML escaping.
func jsonString(s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		out := make([]byte, 0, len(s)+2)
		return append(append(append(out, '"'), s...), '"')
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// mustMarshal encodes values this package builds itself.
func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// kind returns the first byte of a JSON value: '{', '[', '"', 't', 'f', 'n'
// or the start of a number; 0 for an empty value.
func kind(v json.RawMessage) byte {
	v = bytes.TrimLeft(v, " \t\r\n")
	if len(v) == 0 {
		return 0
	}
	return v[0]
}
