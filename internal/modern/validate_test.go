package modern

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/internal/problem"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

var (
	supported   = []string{Version}
	allVersions = []string{Version, "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}
)

const okMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
	`"io.modelcontextprotocol/clientInfo":{"name":"ExampleClient","version":"1.0.0"},` +
	`"io.modelcontextprotocol/clientCapabilities":{}}`

// request parses a JSON-RPC request the way the gateway does.
func request(t testing.TB, method, params string) *jsonrpc.Message {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":` + string(jsonString(method))
	if params != "" {
		body += `,"params":` + params
	}
	msg, err := jsonrpc.Parse([]byte(body + "}"))
	if err != nil {
		t.Fatalf("parse %s: %v", body, err)
	}
	return msg
}

// headers builds an http.Header from name/value pairs without
// canonicalising the names, like a hand-built map would.
func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

func TestValidateOK(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      http.Header
		method string
		params string
		want   Meta
	}{
		{
			name:   "spec tools/call example",
			h:      headers("Mcp-Protocol-Version", Version, "Mcp-Method", "tools/call", "Mcp-Name", "get_weather"),
			method: "tools/call",
			params: `{"name":"get_weather","arguments":{"location":"Seattle, WA"},` + okMeta + `}`,
			want: Meta{ProtocolVersion: Version, ClientInfo: json.RawMessage(`{"name":"ExampleClient","version":"1.0.0"}`),
				ClientCapabilities: json.RawMessage(`{}`)},
		},
		{
			name:   "spec resources/read example, lower-case header names",
			h:      headers("mcp-protocol-version", Version, "mcp-method", "resources/read", "mcp-name", "file:///projects/myapp/config.json"),
			method: "resources/read",
			params: `{"uri":"file:///projects/myapp/config.json",` + okMeta + `}`,
			want: Meta{ProtocolVersion: Version, ClientInfo: json.RawMessage(`{"name":"ExampleClient","version":"1.0.0"}`),
				ClientCapabilities: json.RawMessage(`{}`)},
		},
		{
			name:   "prompts/get with a base64 name, log level, no client info",
			h:      headers("MCP-Protocol-Version", Version, "Mcp-Method", "prompts/get", "Mcp-Name", EncodeHeaderValue("héllo wörld")),
			method: "prompts/get",
			params: `{"name":"héllo wörld","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
				`"io.modelcontextprotocol/clientCapabilities":{"sampling":{}},"io.modelcontextprotocol/logLevel":"warning","progressToken":1}}`,
			want: Meta{ProtocolVersion: Version, ClientCapabilities: json.RawMessage(`{"sampling":{}}`), LogLevel: "warning"},
		},
		{
			name:   "tools/list ignores Mcp-Name and Mcp-Param-*",
			h:      headers("MCP-Protocol-Version", Version, "Mcp-Method", "tools/list", "Mcp-Name", "\x01junk", "Mcp-Name", "two", "Mcp-Param-Region", "\x01"),
			method: "tools/list",
			params: `{` + okMeta + `}`,
			want: Meta{ProtocolVersion: Version, ClientInfo: json.RawMessage(`{"name":"ExampleClient","version":"1.0.0"}`),
				ClientCapabilities: json.RawMessage(`{}`)},
		},
		{
			name:   "tools/call with a comma in the name is one value",
			h:      headers("MCP-Protocol-Version", Version, "Mcp-Method", "tools/call", "Mcp-Name", "a, b", "Mcp-Param-X", "y"),
			method: "tools/call",
			params: `{"name":"a, b",` + okMeta + `}`,
			want: Meta{ProtocolVersion: Version, ClientInfo: json.RawMessage(`{"name":"ExampleClient","version":"1.0.0"}`),
				ClientCapabilities: json.RawMessage(`{}`)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, p := Validate(tc.h, request(t, tc.method, tc.params), supported, allVersions)
			if p != nil {
				t.Fatalf("Problem %+v", p)
			}
			// The unexported fields are what Validate parsed, for StripMeta.
			if d := cmp.Diff(tc.want, *m, cmpopts.IgnoreUnexported(Meta{})); d != "" {
				t.Errorf("Meta (-want +got):\n%s", d)
			}
		})
	}
}

func TestValidateProblems(t *testing.T) {
	const (
		pv   = "MCP-Protocol-Version"
		call = "tools/call"
	)
	std := func(extra ...string) http.Header {
		return headers(append([]string{pv, Version, "Mcp-Method", call, "Mcp-Name", "get_weather"}, extra...)...)
	}
	callParams := `{"name":"get_weather",` + okMeta + `}`
	withMeta := func(meta string) string {
		return `{"name":"get_weather","_meta":{` + meta + `}}`
	}
	const pvOK = `"io.modelcontextprotocol/protocolVersion":"2026-07-28"`
	const capsOK = `"io.modelcontextprotocol/clientCapabilities":{}`

	for _, tc := range []struct {
		name    string
		h       http.Header
		method  string
		params  string
		code    int
		mention []string // substrings the message must contain
	}{
		// 1. MCP-Protocol-Version.
		{"version header missing", headers("Mcp-Method", call, "Mcp-Name", "get_weather"), call, callParams,
			CodeHeaderMismatch, []string{pv, "missing"}},
		{"version header empty", headers(pv, "", "Mcp-Method", call, "Mcp-Name", "get_weather"), call, callParams,
			CodeHeaderMismatch, []string{pv, "missing"}},
		{"version header unsupported", headers(pv, "2027-01-01", "Mcp-Method", call, "Mcp-Name", "get_weather"), call, callParams,
			CodeUnsupportedVersion, []string{pv, `"2027-01-01"`, Version}},
		{"version header legacy", headers(pv, "2025-11-25", "Mcp-Method", call, "Mcp-Name", "get_weather"), call, callParams,
			CodeUnsupportedVersion, []string{pv, `"2025-11-25"`}},
		{"version header twice", std(pv, Version), call, callParams, CodeHeaderMismatch, []string{pv, "2 times"}},
		{"version header twice, different case", std("mcp-protocol-version", Version), call, callParams, CodeHeaderMismatch, []string{pv, "2 times"}},
		{"version header control character", headers(pv, "2026-07-28\x1b[2J", "Mcp-Method", call, "Mcp-Name", "get_weather"), call, callParams,
			CodeHeaderMismatch, []string{pv, "invalid characters", `\x1b[2J`}},

		// 2. params and protocolVersion.
		{"no params", std(), call, "", jsonrpc.CodeInvalidParams, []string{"_meta", MetaProtocolVersion}},
		{"array params", std(), call, `[1]`, jsonrpc.CodeInvalidParams, []string{"params must be an object"}},
		{"no _meta", std(), call, `{"name":"get_weather"}`, jsonrpc.CodeInvalidParams, []string{"_meta", MetaProtocolVersion}},
		{"_meta not an object", std(), call, `{"name":"get_weather","_meta":[]}`, jsonrpc.CodeInvalidParams, []string{"_meta"}},
		{"duplicate params member", std(), call, `{"name":"get_weather","name":"rm_rf",` + okMeta + `}`, jsonrpc.CodeInvalidParams, []string{"duplicate", `"name"`}},
		{"duplicate _meta member", std(), call, withMeta(pvOK + "," + capsOK + "," + pvOK), jsonrpc.CodeInvalidParams, []string{"duplicate", MetaProtocolVersion}},
		{"protocolVersion missing", std(), call, withMeta(capsOK), jsonrpc.CodeInvalidParams, []string{"missing required _meta field", MetaProtocolVersion}},
		{"protocolVersion not a string", std(), call, withMeta(`"io.modelcontextprotocol/protocolVersion":20260728,` + capsOK),
			jsonrpc.CodeInvalidParams, []string{MetaProtocolVersion, "string"}},
		{"protocolVersion key differs in case", std(), call, withMeta(`"io.modelcontextprotocol/ProtocolVersion":"2026-07-28",` + capsOK),
			jsonrpc.CodeInvalidParams, []string{"missing required _meta field", MetaProtocolVersion}},
		{"protocolVersion mismatch", std(), call, withMeta(`"io.modelcontextprotocol/protocolVersion":"2025-11-25",` + capsOK),
			CodeHeaderMismatch, []string{pv, `"2026-07-28"`, `"2025-11-25"`}},

		// 3. Other per-request fields.
		{"clientCapabilities missing", std(), call, withMeta(pvOK), jsonrpc.CodeInvalidParams, []string{"missing required _meta field", MetaClientCapabilities}},
		{"clientCapabilities not an object", std(), call, withMeta(pvOK + `,"io.modelcontextprotocol/clientCapabilities":null`),
			jsonrpc.CodeInvalidParams, []string{MetaClientCapabilities, "object"}},
		{"clientInfo not an object", std(), call, withMeta(pvOK + "," + capsOK + `,"io.modelcontextprotocol/clientInfo":"ExampleClient"`),
			jsonrpc.CodeInvalidParams, []string{MetaClientInfo, "object"}},
		{"logLevel unknown", std(), call, withMeta(pvOK + "," + capsOK + `,"io.modelcontextprotocol/logLevel":"verbose"`),
			jsonrpc.CodeInvalidParams, []string{MetaLogLevel, `verbose`}},
		{"logLevel not a string", std(), call, withMeta(pvOK + "," + capsOK + `,"io.modelcontextprotocol/logLevel":3`),
			jsonrpc.CodeInvalidParams, []string{MetaLogLevel}},
		{"logLevel wrong case", std(), call, withMeta(pvOK + "," + capsOK + `,"io.modelcontextprotocol/logLevel":"DEBUG"`),
			jsonrpc.CodeInvalidParams, []string{MetaLogLevel, "DEBUG"}},

		// 4. Mcp-Method.
		{"method header missing", headers(pv, Version, "Mcp-Name", "get_weather"), call, callParams,
			CodeHeaderMismatch, []string{"Mcp-Method", "missing"}},
		{"method header differs", headers(pv, Version, "Mcp-Method", "tools/list", "Mcp-Name", "get_weather"), call, callParams,
			CodeHeaderMismatch, []string{"Mcp-Method", `"tools/list"`, `"tools/call"`}},
		{"method header differs in case", headers(pv, Version, "Mcp-Method", "Tools/Call", "Mcp-Name", "get_weather"), call, callParams,
			CodeHeaderMismatch, []string{"Mcp-Method", `"Tools/Call"`}},
		{"method header twice", std("mcp-method", call), call, callParams, CodeHeaderMismatch, []string{"Mcp-Method", "2 times"}},
		{"method header non-ASCII", headers(pv, Version, "Mcp-Method", "tools/cäll", "Mcp-Name", "get_weather"), call, callParams,
			CodeHeaderMismatch, []string{"Mcp-Method", "invalid characters"}},

		// 5. Mcp-Name.
		{"name header missing", headers(pv, Version, "Mcp-Method", call), call, callParams,
			CodeHeaderMismatch, []string{"Mcp-Name", "missing", call}},
		{"name header missing for resources/read", headers(pv, Version, "Mcp-Method", "resources/read"), "resources/read",
			`{"uri":"file:///a",` + okMeta + `}`, CodeHeaderMismatch, []string{"Mcp-Name", "missing"}},
		{"name header differs", headers(pv, Version, "Mcp-Method", call, "Mcp-Name", "foo"), call, `{"name":"bar",` + okMeta + `}`,
			CodeHeaderMismatch, []string{"Mcp-Name", `"foo"`, `"bar"`}},
		{"uri header differs", headers(pv, Version, "Mcp-Method", "resources/read", "Mcp-Name", "file:///a"), "resources/read",
			`{"uri":"file:///b",` + okMeta + `}`, CodeHeaderMismatch, []string{"Mcp-Name", `"file:///a"`, `"file:///b"`, "params.uri"}},
		{"prompts/get name differs", headers(pv, Version, "Mcp-Method", "prompts/get", "Mcp-Name", "a"), "prompts/get",
			`{"name":"b",` + okMeta + `}`, CodeHeaderMismatch, []string{"Mcp-Name", `"a"`, `"b"`}},
		{"decoded name differs", headers(pv, Version, "Mcp-Method", call, "Mcp-Name", EncodeHeaderValue("wörld")), call,
			`{"name":"world",` + okMeta + `}`, CodeHeaderMismatch, []string{"Mcp-Name", `"w\u00f6rld"`, "decoded from", `"world"`}},
		{"name header bad base64", headers(pv, Version, "Mcp-Method", call, "Mcp-Name", "=?base64?!!?="), call, callParams,
			CodeHeaderMismatch, []string{"Mcp-Name", "=?base64?!!?=", "Base64"}},
		{"name header sentinel text sent plain", headers(pv, Version, "Mcp-Method", call, "Mcp-Name", "=?base64?literal?="), call,
			`{"name":"=?base64?literal?=",` + okMeta + `}`, CodeHeaderMismatch, []string{"Mcp-Name", "Base64"}},
		{"name header twice", std("Mcp-Name", "get_weather"), call, callParams, CodeHeaderMismatch, []string{"Mcp-Name", "2 times"}},
		{"name header raw UTF-8", headers(pv, Version, "Mcp-Method", call, "Mcp-Name", "wörld"), call,
			`{"name":"wörld",` + okMeta + `}`, CodeHeaderMismatch, []string{"Mcp-Name", "invalid characters", `"w\u00f6rld"`}},
		{"name header DEL", headers(pv, Version, "Mcp-Method", call, "Mcp-Name", "get_weather\x7f"), call, callParams,
			CodeHeaderMismatch, []string{"Mcp-Name", "invalid characters", `\x7f`}},
		{"body name missing", std(), call, `{` + okMeta + `}`, jsonrpc.CodeInvalidParams, []string{"params.name", "string"}},
		{"body name not a string", std(), call, `{"name":7,` + okMeta + `}`, jsonrpc.CodeInvalidParams, []string{"params.name", "string"}},
		{"body uri not a string", headers(pv, Version, "Mcp-Method", "resources/read", "Mcp-Name", "x"), "resources/read",
			`{"uri":null,` + okMeta + `}`, jsonrpc.CodeInvalidParams, []string{"params.uri", "string"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, p := Validate(tc.h, request(t, tc.method, tc.params), supported, allVersions)
			if p == nil {
				t.Fatalf("no Problem; Meta %+v", m)
			}
			if m != nil {
				t.Errorf("Meta %+v returned with a Problem", m)
			}
			if p.Kind != problem.BadRequest || p.Code != tc.code {
				t.Errorf("kind %v code %d, want bad request %d (%s)", p.Kind, p.Code, tc.code, p.Message)
			}
			for _, s := range tc.mention {
				if !strings.Contains(p.Message, s) {
					t.Errorf("message %q does not mention %q", p.Message, s)
				}
			}
			if (p.Code == CodeUnsupportedVersion) != (p.Data != nil) {
				t.Errorf("code %d with data %#v", p.Code, p.Data)
			}
			checkMessage(t, p.Message)
		})
	}
}

// checkMessage asserts a Problem message is printable ASCII and not huge.
func checkMessage(t testing.TB, msg string) {
	t.Helper()
	if msg == "" {
		t.Error("empty message")
	}
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c > 0x7e {
			t.Errorf("message %q has byte %#x", msg, c)
			break
		}
	}
}

func TestValidateUnsupportedVersionData(t *testing.T) {
	h := headers("MCP-Protocol-Version", "2099-01-01", "Mcp-Method", "tools/list")
	_, p := Validate(h, request(t, "tools/list", `{`+okMeta+`}`), supported, allVersions)
	if p == nil || p.Code != CodeUnsupportedVersion {
		t.Fatalf("Problem %+v", p)
	}
	b, err := json.Marshal(p.Data)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"requested":"2099-01-01","supported":["2026-07-28","2025-11-25","2025-06-18","2025-03-26","2024-11-05"]}`
	if string(b) != want {
		t.Errorf("data %s, want %s", b, want)
	}
	// nil allVersions still advertises a list.
	_, p = Validate(h, request(t, "tools/list", `{`+okMeta+`}`), supported, nil)
	if b, _ := json.Marshal(p.Data); string(b) != `{"requested":"2099-01-01","supported":[]}` {
		t.Errorf("data %s", b)
	}
}

func TestValidateTruncatesLongValues(t *testing.T) {
	long := strings.Repeat("n", 5000)
	h := headers("MCP-Protocol-Version", Version, "Mcp-Method", "tools/call", "Mcp-Name", long)
	_, p := Validate(h, request(t, "tools/call", `{"name":"`+strings.Repeat("é", 3000)+`",`+okMeta+`}`), supported, allVersions)
	if p == nil || p.Code != CodeHeaderMismatch {
		t.Fatalf("Problem %+v", p)
	}
	if len(p.Message) > 500 || !strings.Contains(p.Message, "(5000 bytes)") || !strings.Contains(p.Message, "(6000 bytes)") {
		t.Errorf("message of %d bytes: %s", len(p.Message), p.Message)
	}
	checkMessage(t, p.Message)
}

func TestValidateNotARequest(t *testing.T) {
	msg, err := jsonrpc.Parse([]byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*jsonrpc.Message{nil, msg} {
		if _, p := Validate(headers("MCP-Protocol-Version", Version), m, supported, allVersions); p == nil ||
			p.Kind != problem.BadRequest || p.Code != jsonrpc.CodeInvalidRequest {
			t.Errorf("Validate(%+v) Problem %+v", m, p)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, s := range []string{
		"short", strings.Repeat("x", 101), strings.Repeat("é", 200), strings.Repeat("\x80", 300),
		strings.Repeat("a", 99) + "世界", "\x1b]0;pwned\x07", "\u202eevil",
	} {
		q := quote(s)
		checkMessage(t, q)
		if len(q) > maxQuoted+30 {
			t.Errorf("quote(%q) = %s: %d bytes", s, q, len(q))
		}
		if len(s) < 50 && len(q) > 2 && strings.Contains(q, "...") {
			t.Errorf("quote(%q) = %s: cut a short value", s, q)
		}
	}
}

func TestValidateSanitisesDecoderErrors(t *testing.T) {
	h := headers("MCP-Protocol-Version", Version, "Mcp-Method", "tools/call", "Mcp-Name", "x")
	for _, params := range []string{
		"{\xff", `{"é":1,"é":2,` + okMeta + `}`, `{"` + strings.Repeat("k", 1000) + `":1,"` + strings.Repeat("k", 1000) + `":1}`,
		`{"_meta":{"ö\u001b":1,"ö\u001b":2}}`,
	} {
		_, p := Validate(h, &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage(`1`), Method: "tools/call", Params: json.RawMessage(params)},
			supported, allVersions)
		if p == nil || p.Code != jsonrpc.CodeInvalidParams {
			t.Fatalf("params %q: Problem %+v", params, p)
		}
		checkMessage(t, p.Message)
		if len(p.Message) > 200 {
			t.Errorf("message of %d bytes: %s", len(p.Message), p.Message)
		}
	}
}
