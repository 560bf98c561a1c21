package modern

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mcpgw/mcpgw/internal/problem"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/jsonscan"
)

// Request header names (streamable-http.mdx, "Request Metadata"). They are
// matched case-insensitively.
const (
	hdrProtocolVersion = "MCP-Protocol-Version"
	hdrMethod          = "Mcp-Method"
	hdrName            = "Mcp-Name"
)

// Meta is the per-request protocol metadata of a modern request
// (basic/index.mdx, "Per-request protocol fields").
type Meta struct {
	ProtocolVersion    string
	ClientInfo         json.RawMessage // may be nil
	ClientCapabilities json.RawMessage // JSON object, required
	LogLevel           string          // may be ""

	// What Validate parsed, for StripMeta: the request's params, as
	// parsed, and its _meta.
	params    json.RawMessage
	paramsObj object
	metaObj   object
}

// A validation failure is a *problem.Error of kind problem.BadRequest
// (the front door answers 400). Its Code is CodeHeaderMismatch,
// CodeUnsupportedVersion or jsonrpc.CodeInvalidParams
// (jsonrpc.CodeInvalidRequest only if Validate is called with something
// other than a request, a caller bug); its Message is specific, for the
// client and for the operator's log: it names the header or _meta field and
// the values involved, each quoted with Go escapes (no raw control
// characters) and cut to about 100 bytes; its Data is, for
// CodeUnsupportedVersion, map[string]any{"supported": []string,
// "requested": string}, else nil.

// logLevels are the values of LoggingLevel (RFC 5424 severities).
var logLevels = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

// nameSources maps the methods that require Mcp-Name to the params member
// the header mirrors (streamable-http.mdx, "Standard Request Headers").
var nameSources = map[string]string{
	"tools/call":     "name",
	"prompts/get":    "name",
	"resources/read": "uri",
}

// Validate checks one modern request (a JSON-RPC request) against its HTTP
// headers, as streamable-http.mdx ("Server Validation") and basic/index.mdx
// ("Per-request protocol fields") require of servers that process the body.
// supported lists the modern versions the caller serves (e.g.
// []string{Version}); allVersions is the full list to advertise in -32022
// data.supported (modern and session-era, newest first).
//
// h is the request's header fields (an http.Header, whose type is
// map[string][]string: the package needs no HTTP). Header names are
// matched case-insensitively, also when the keys are not canonical. Each header Validate reads must have exactly one
// value (a comma in a value is part of the value, not a list separator)
// consisting of visible ASCII 0x21-0x7E, space and tab; otherwise the
// request fails with -32020 before the header's value is used.
//
// Checks, in order, all answered with HTTP 400:
//  1. MCP-Protocol-Version missing or empty → -32020; not in supported →
//     -32022 with data {supported: allVersions, requested: header}.
//  2. params not an object, or params or params._meta naming a member twice,
//     or _meta missing or not an object → -32602. _meta[MetaProtocolVersion]
//     missing or not a string → -32602; != the header → -32020.
//  3. _meta[MetaClientCapabilities] missing or not an object → -32602;
//     MetaClientInfo present but not an object (null included) → -32602;
//     MetaLogLevel present but not one of the eight LoggingLevel strings →
//     -32602.
//  4. Mcp-Method missing → -32020; != msg.Method (case-sensitive) → -32020.
//  5. For tools/call and prompts/get, Mcp-Name mirrors params.name; for
//     resources/read, params.uri. Mcp-Name missing → -32020; not decodable
//     by DecodeHeaderValue → -32020; the params member missing or not a
//     string → -32602; decoded header != the member → -32020. For other
//     methods Mcp-Name is not required and, if present, ignored entirely
//     (neither decoded nor checked for characters): the spec only defines
//     it for these three methods and the gateway neither routes on it nor
//     forwards it.
//
// Mcp-Param-* headers are never inspected or rejected: the gateway forwards
// the body to stdio servers, where headers do not exist, and does not
// recognise them (intermediaries that do not recognise them ignore them).
//
// It returns the parsed Meta on success.
func Validate(h map[string][]string, msg *jsonrpc.Message, supported, allVersions []string) (*Meta, *problem.Error) {
	if msg == nil || msg.Kind != jsonrpc.KindRequest {
		return nil, &problem.Error{Kind: problem.BadRequest, Code: jsonrpc.CodeInvalidRequest,
			Message: "modern validation applies to requests only"}
	}

	// 1. Protocol version header.
	version, ok, p := header(h, hdrProtocolVersion)
	if p != nil {
		return nil, p
	}
	if !ok || version == "" {
		return nil, mismatch("missing required %s header", hdrProtocolVersion)
	}
	if !slices.Contains(supported, version) {
		all := slices.Clone(allVersions)
		if all == nil {
			all = []string{}
		}
		return nil, &problem.Error{
			Kind:    problem.BadRequest,
			Code:    CodeUnsupportedVersion,
			Message: fmt.Sprintf("Unsupported protocol version: %s header value %s; supported: %s", hdrProtocolVersion, quote(version), strings.Join(all, ", ")),
			Data:    map[string]any{"supported": all, "requested": version},
		}
	}

	// 2. params and _meta.
	params, p := paramsObject(msg.Params)
	if p != nil {
		return nil, p
	}
	metaRaw := params.get("_meta")
	if metaRaw == nil {
		return nil, invalid("missing required params._meta (with %s and %s)", MetaProtocolVersion, MetaClientCapabilities)
	}
	meta, err := parseValidObject(metaRaw) // a member of the validated params
	if err != nil {
		return nil, invalid("params._meta: %s", bare(err.Error()))
	}
	m := &Meta{params: msg.Params, paramsObj: params, metaObj: meta}
	pv := meta.get(MetaProtocolVersion)
	if pv == nil {
		return nil, invalid("missing required _meta field %s", MetaProtocolVersion)
	}
	if m.ProtocolVersion, ok = stringValue(pv); !ok {
		return nil, invalid("_meta field %s must be a string", MetaProtocolVersion)
	}
	if m.ProtocolVersion != version {
		return nil, mismatch("Header mismatch: %s header value %s does not match body value %s (_meta %s)",
			hdrProtocolVersion, quote(version), quote(m.ProtocolVersion), MetaProtocolVersion)
	}

	// 3. The other per-request fields.
	m.ClientCapabilities = meta.get(MetaClientCapabilities)
	if m.ClientCapabilities == nil {
		return nil, invalid("missing required _meta field %s", MetaClientCapabilities)
	}
	if kind(m.ClientCapabilities) != '{' {
		return nil, invalid("_meta field %s must be an object", MetaClientCapabilities)
	}
	if m.ClientInfo = meta.get(MetaClientInfo); m.ClientInfo != nil && kind(m.ClientInfo) != '{' {
		return nil, invalid("_meta field %s must be an object", MetaClientInfo)
	}
	if ll := meta.get(MetaLogLevel); ll != nil {
		if m.LogLevel, ok = stringValue(ll); !ok || !slices.Contains(logLevels, m.LogLevel) {
			return nil, invalid("_meta field %s must be one of %s, got %s",
				MetaLogLevel, strings.Join(logLevels, ", "), quote(string(ll)))
		}
	}

	// 4. Mcp-Method.
	method, ok, p := header(h, hdrMethod)
	if p != nil {
		return nil, p
	}
	if !ok {
		return nil, mismatch("missing required %s header (body method %s)", hdrMethod, quote(msg.Method))
	}
	if method != msg.Method {
		return nil, mismatch("Header mismatch: %s header value %s does not match body value %s",
			hdrMethod, quote(method), quote(msg.Method))
	}

	// 5. Mcp-Name.
	source, needed := nameSources[msg.Method]
	if !needed {
		return m, nil
	}
	raw, ok, p := header(h, hdrName)
	if p != nil {
		return nil, p
	}
	if !ok {
		return nil, mismatch("missing required %s header for %s", hdrName, msg.Method)
	}
	name, err := DecodeHeaderValue(raw)
	if err != nil {
		return nil, mismatch("%s header value %s: %s", hdrName, quote(raw), bare(err.Error()))
	}
	want, ok := stringValue(params.get(source))
	if !ok {
		return nil, invalid("params.%s of %s must be a string", source, msg.Method)
	}
	if name != want {
		decoded := ""
		if name != raw {
			decoded = " (decoded from " + quote(raw) + ")"
		}
		return nil, mismatch("Header mismatch: %s header value %s%s does not match body value %s (params.%s)",
			hdrName, quote(name), decoded, quote(want), source)
	}
	return m, nil
}

// header returns the single value of the header name (matched
// case-insensitively over all keys of h), whether it is present, and a
// -32020 problem if it has several values or invalid characters.
func header(h map[string][]string, name string) (string, bool, *problem.Error) {
	// Counted, not collected: no allocation for the one value (hot path).
	var first string
	n := 0
	for k, v := range h {
		if len(v) > 0 && strings.EqualFold(k, name) {
			if n == 0 {
				first = v[0]
			}
			n += len(v)
		}
	}
	switch {
	case n == 0:
		return "", false, nil
	case n > 1:
		return "", false, mismatch("%s header given %d times, want exactly one value", name, n)
	case !headerSafe(first):
		return "", false, mismatch("%s header value %s contains invalid characters (allowed: visible ASCII, space, tab)", name, quote(first))
	}
	return first, true, nil
}

// paramsObject parses the request's params, which must be an object.
func paramsObject(raw json.RawMessage) (object, *problem.Error) {
	switch kind(raw) {
	case 0:
		return nil, invalid("missing required params._meta (with %s and %s)", MetaProtocolVersion, MetaClientCapabilities)
	case '{':
	default:
		return nil, invalid("params must be an object")
	}
	o, err := parseObject(raw)
	if err != nil {
		return nil, invalid("params: %s", bare(err.Error()))
	}
	return o, nil
}

func mismatch(format string, args ...any) *problem.Error {
	return &problem.Error{Kind: problem.BadRequest, Code: CodeHeaderMismatch, Message: fmt.Sprintf(format, args...)}
}

func invalid(format string, args ...any) *problem.Error {
	return &problem.Error{Kind: problem.BadRequest, Code: jsonrpc.CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}

// maxQuoted is roughly how many characters of a value a problem message
// shows.
const maxQuoted = 100

// quote renders a client-supplied value for a message: Go-quoted with
// everything outside printable ASCII escaped, so the message cannot carry
// control characters, escape sequences or misleading Unicode into a log,
// and cut (at a character boundary) so the quoted text stays within about
// maxQuoted characters, followed by the value's full length if cut.
func quote(s string) string {
	q, cut := escape(s)
	return `"` + q + `"` + cut
}

// bare renders text that may contain client-supplied bytes (such as an
// error from the JSON decoder) like quote, without the quotation marks.
func bare(s string) string {
	q, cut := escape(s)
	return strings.ReplaceAll(q, `\"`, `"`) + cut // still printable ASCII only
}

// escape returns s escaped as inside a Go string literal, cut to about
// maxQuoted characters, and the note to append if it was cut.
func escape(s string) (escaped, cut string) {
	inner := func(s string) string { q := strconv.QuoteToASCII(s); return q[1 : len(q)-1] }
	q := inner(s)
	if len(q) <= maxQuoted {
		return q, ""
	}
	n := min(len(s), maxQuoted)
	for i := 0; i < utf8.UTFMax && n > 0 && n < len(s) && !utf8.RuneStart(s[n]); i++ {
		n--
	}
	for q = inner(s[:n]); len(q) > maxQuoted; q = inner(s[:n]) {
		_, size := utf8.DecodeLastRuneInString(s[:n])
		n -= size
	}
	return q, fmt.Sprintf("...(%d bytes)", len(s))
}

// stringValue returns the string a JSON string value holds.
func stringValue(v json.RawMessage) (string, bool) {
	if kind(v) != '"' {
		return "", false
	}
	if v[0] == '"' {
		// Without escapes or non-ASCII bytes its contents are its value
		// (hot path); anything else, encoding/json decodes.
		if end, plain := jsonscan.StringEnd(v, 0); plain && end == len(v) && validPlain(v[1:end-1]) {
			return string(v[1 : end-1]), true
		}
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", false
	}
	return s, true
}

// validPlain reports whether the contents of a string literal without
// escapes or non-ASCII bytes hold no control character, which JSON forbids
// there: with one, the literal is not valid and stringValue leaves the
// verdict to encoding/json.
func validPlain(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return false
		}
	}
	return true
}
