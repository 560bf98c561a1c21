// Package jsonrpc reads and writes the JSON-RPC 2.0 envelope of MCP
// messages without decoding their params or results.
//
// The gateway only needs a message's kind, id and method to route it; params,
// results and errors pass through as raw bytes (docs/design.md, "Architecture").
// Every encoded message is a single line: raw parts that contain JSON
// whitespace newlines are compacted, because stdio framing is one message per
// line (MCP spec, basic/transports, "stdio").
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Kind says what a message is.
type Kind int

// Message kinds.
const (
	KindRequest      Kind = iota + 1 // method and id
	KindNotification                 // method, no id
	KindResponse                     // id and exactly one of result/error
)

func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	}
	return "invalid"
}

// Message is one JSON-RPC 2.0 message with its variable parts kept raw.
// ID is nil when absent; it holds the literal "null" for a null id.
type Message struct {
	Kind   Kind
	ID     json.RawMessage
	Method string
	Params json.RawMessage
	Result json.RawMessage
	Error  json.RawMessage
}

type wire struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  *string         `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// Standard and gateway error codes (docs/design.md, "Errors").
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603

	CodeTimeout         = -32001 // request timed out at the gateway
	CodeBackendStopped  = -32002 // backend exited, crashed or was recycled before answering
	CodeBackendInvalid  = -32003 // backend sent an invalid or oversized message
	CodeUnavailable     = -32004 // server cannot start, back-off, draining
	CodeTooManyRequests = -32029 // concurrency or rate limit
)

// ErrInvalid wraps every validation failure of Parse.
var ErrInvalid = errors.New("invalid JSON-RPC message")

// Parse decodes one message. It rejects anything that is not a well-formed
// JSON-RPC 2.0 request, notification or response.
func Parse(data []byte) (*Message, error) {
	if w, ok := parseEnvelope(data); ok {
		return fromWire(&w)
	}
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return fromWire(&w)
}

func fromWire(w *wire) (*Message, error) {
	if w.JSONRPC != "2.0" {
		return nil, fmt.Errorf("%w: jsonrpc must be \"2.0\"", ErrInvalid)
	}
	m := &Message{ID: w.ID, Params: w.Params, Result: w.Result, Error: w.Error}
	if w.ID != nil && !validID(w.ID) {
		return nil, fmt.Errorf("%w: id must be a string, a number or null", ErrInvalid)
	}
	if w.Params != nil {
		if c := firstByte(w.Params); c != '{' && c != '[' {
			return nil, fmt.Errorf("%w: params must be an object or an array", ErrInvalid)
		}
	}
	switch {
	case w.Method != nil:
		if *w.Method == "" {
			return nil, fmt.Errorf("%w: method is empty", ErrInvalid)
		}
		if w.Result != nil || w.Error != nil {
			return nil, fmt.Errorf("%w: a request cannot carry result or error", ErrInvalid)
		}
		m.Method = *w.Method
		m.Kind = KindNotification
		if w.ID != nil {
			if isNull(w.ID) {
				return nil, fmt.Errorf("%w: request id must not be null", ErrInvalid)
			}
			m.Kind = KindRequest
		}
	case w.ID != nil:
		if (w.Result == nil) == (w.Error == nil) {
			return nil, fmt.Errorf("%w: a response needs exactly one of result and error", ErrInvalid)
		}
		if w.Error != nil && firstByte(w.Error) != '{' {
			return nil, fmt.Errorf("%w: error must be an object", ErrInvalid)
		}
		if isNull(w.ID) && w.Result != nil {
			return nil, fmt.Errorf("%w: a result needs a non-null id", ErrInvalid)
		}
		m.Kind = KindResponse
	default:
		return nil, fmt.Errorf("%w: neither method nor id", ErrInvalid)
	}
	return m, nil
}

// ParseBatch decodes an HTTP body: one message or, when batch is true, a
// non-empty array of messages. A single message is returned as a batch of
// one with isBatch false.
func ParseBatch(data []byte) (msgs []*Message, isBatch bool, err error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, false, fmt.Errorf("%w: empty body", ErrInvalid)
	}
	if data[0] != '[' {
		m, err := Parse(data)
		if err != nil {
			return nil, false, err
		}
		return []*Message{m}, false, nil
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, true, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(raws) == 0 {
		return nil, true, fmt.Errorf("%w: empty batch", ErrInvalid)
	}
	msgs = make([]*Message, 0, len(raws))
	for i, r := range raws {
		m, err := Parse(r)
		if err != nil {
			return nil, true, fmt.Errorf("batch element %d: %w", i, err)
		}
		msgs = append(msgs, m)
	}
	return msgs, true, nil
}

// IsSyntaxError reports whether err came from malformed JSON rather than a
// well-formed value that is not a JSON-RPC message (-32700 vs -32600).
func IsSyntaxError(err error) bool {
	var se *json.SyntaxError
	return errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF)
}

func validID(id json.RawMessage) bool {
	switch c := firstByte(id); {
	case c == '"':
		return true
	case c == '-' || (c >= '0' && c <= '9'):
		return true
	case isNull(id):
		return true
	}
	return false
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// IDKey returns a canonical map key for an id, so that 1, 1.0 and "1" stay
// distinct but whitespace differences do not matter.
func IDKey(id json.RawMessage) string { return string(bytes.TrimSpace(id)) }

// IntID encodes a gateway-allocated id.
func IntID(n int64) json.RawMessage { return strconv.AppendInt(nil, n, 10) }

// Encode writes m as one line without a trailing newline. Raw parts are
// compacted when they contain newlines so the result is always one line.
func Encode(m *Message) []byte {
	b := make([]byte, 0, 64+len(m.Params)+len(m.Result)+len(m.Error))
	b = append(b, `{"jsonrpc":"2.0"`...)
	if m.ID != nil {
		b = append(b, `,"id":`...)
		b = appendRaw(b, m.ID)
	}
	if m.Method != "" {
		b = append(b, `,"method":`...)
		b = appendString(b, m.Method)
	}
	if m.Params != nil {
		b = append(b, `,"params":`...)
		b = appendRaw(b, m.Params)
	}
	if m.Result != nil {
		b = append(b, `,"result":`...)
		b = appendRaw(b, m.Result)
	}
	if m.Error != nil {
		b = append(b, `,"error":`...)
		b = appendRaw(b, m.Error)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string, as json.Marshal writes it. A
// method name is plain ASCII that needs no escape; only other strings go
// through encoding/json (hot path: every request forwarded).
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendRaw(b []byte, raw json.RawMessage) []byte {
	if bytes.ContainsAny(raw, "\r\n") {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err == nil {
			return append(b, buf.Bytes()...)
		}
	}
	return append(b, bytes.TrimSpace(raw)...)
}

// ErrorObject is the error member of a JSON-RPC response.
type ErrorObject struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

// NewError builds an error response for id (nil id encodes as null).
func NewError(id json.RawMessage, code int, message string, data any) *Message {
	if id == nil {
		id = json.RawMessage("null")
	}
	e, err := json.Marshal(ErrorObject{Code: code, Message: message, Data: data})
	if err != nil {
		e, _ = json.Marshal(ErrorObject{Code: code, Message: message})
	}
	return &Message{Kind: KindResponse, ID: id, Error: e}
}

// Envelope fields found inside params that the gateway routes on.
type paramsMeta struct {
	Meta *struct {
		ProgressToken json.RawMessage `json:"progressToken"`
	} `json:"_meta"`
	ProgressToken json.RawMessage `json:"progressToken"`
	RequestID     json.RawMessage `json:"requestId"`
	Level         string          `json:"level"`
	URI           string          `json:"uri"`
}

// Fields holds the few params members the gateway routes on.
type Fields struct {
	// MetaProgressToken is params._meta.progressToken of a request.
	MetaProgressToken json.RawMessage
	// ProgressToken is params.progressToken of notifications/progress.
	ProgressToken json.RawMessage
	// RequestID is params.requestId of notifications/cancelled.
	RequestID json.RawMessage
	// Level is params.level of logging notifications.
	Level string
	// URI is params.uri of resources/subscribe and resources/updated.
	URI string
}

// MetaProgressToken returns params._meta.progressToken, or nil. Most
// requests carry none, and a byte search decides that without decoding the
// params (the hot path reads only the envelope).
func MetaProgressToken(params json.RawMessage) json.RawMessage {
	if !bytes.Contains(params, []byte(`"progressToken"`)) {
		return nil
	}
	return ParamsFields(params).MetaProgressToken
}

// ParamsFields decodes the routing fields of params; missing ones stay zero.
func ParamsFields(params json.RawMessage) Fields {
	var p paramsMeta
	if len(params) == 0 || firstByte(params) != '{' {
		return Fields{}
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return Fields{}
	}
	f := Fields{ProgressToken: p.ProgressToken, RequestID: p.RequestID, Level: p.Level, URI: p.URI}
	if p.Meta != nil {
		f.MetaProgressToken = p.Meta.ProgressToken
	}
	return f
}

// ReplaceParamsField returns params with the top-level member key set to
// value (raw JSON). params must be an object.
func ReplaceParamsField(params json.RawMessage, key string, value json.RawMessage) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(params, &obj); err != nil {
		return nil, err
	}
	obj[key] = value
	return json.Marshal(obj)
}

// SetMetaProgressToken returns params with _meta.progressToken set to the
// string token, keeping every other member (MCP spec, utilities/progress).
func SetMetaProgressToken(params json.RawMessage, token string) (json.RawMessage, error) {
	tok, _ := json.Marshal(token)
	return SetMeta(params, "progressToken", tok)
}

// SetMeta returns params with _meta[key] set to value (raw JSON), keeping
// every other member. params must be an object, or empty (it becomes one).
func SetMeta(params json.RawMessage, key string, value json.RawMessage) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(params)) > 0 {
		if err := json.Unmarshal(params, &obj); err != nil {
			return nil, err
		}
	}
	meta := map[string]json.RawMessage{}
	if raw, ok := obj["_meta"]; ok {
		if err := json.Unmarshal(raw, &meta); err != nil {
			return nil, err
		}
	}
	meta[key] = value
	m, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	obj["_meta"] = m
	return json.Marshal(obj)
}
