package modern

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

// jsonEqual compares two JSON texts semantically.
func jsonEqual(t *testing.T, got, want json.RawMessage) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	if d := cmp.Diff(w, g); d != "" {
		t.Errorf("JSON mismatch (-want +got):\n%s\ngot: %s", d, got)
	}
}

func TestStripMeta(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{
			name: "keeps progressToken, vendor keys and arguments byte-for-byte",
			in: `{"name":"get_weather","arguments":{"location": "Seattle, WA", "n": 1.50},` +
				`"_meta":{"progressToken": "tok-1","io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
				`"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},` +
				`"io.modelcontextprotocol/clientCapabilities":{},"com.example/trace":{"a": [1, 2]},` +
				`"io.modelcontextprotocol/logLevel":"debug","traceparent":"00-ab-cd-01"}}`,
			want: `{"name":"get_weather","arguments":{"location": "Seattle, WA", "n": 1.50},` +
				`"_meta":{"progressToken":"tok-1","com.example/trace":{"a": [1, 2]},"traceparent":"00-ab-cd-01"}}`,
		},
		{
			name: "removes _meta when only protocol keys were in it",
			in: `{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
				`"io.modelcontextprotocol/clientCapabilities":{}},"uri":"file:///a"}`,
			want: `{"uri":"file:///a"}`,
		},
		{
			name: "removes every io.modelcontextprotocol/ key, including unknown ones",
			in:   `{"_meta":{"io.modelcontextprotocol/future":1,"io.modelcontextprotocol/subscriptionId":"s"}}`,
			want: `{}`,
		},
		{
			name: "other reserved-looking prefixes are kept",
			in:   `{"_meta":{"dev.mcp/x":1,"io.modelcontextprotocolx/y":2,"IO.modelcontextprotocol/z":3}}`,
			want: `{"_meta":{"dev.mcp/x":1,"io.modelcontextprotocolx/y":2,"IO.modelcontextprotocol/z":3}}`,
		},
		{
			name: "escaped key names are matched after decoding",
			in:   `{"_meta":{"io.modelcontextprotocol\/protocolVersion":"2026-07-28","a<b":1}}`,
			want: `{"_meta":{"a<b":1}}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := StripMeta(json.RawMessage(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestMetaStripMeta: the StripMeta of a validated request reuses what
// Validate parsed and gives StripMeta's answer, also a second time; for
// other params it is StripMeta.
func TestMetaStripMeta(t *testing.T) {
	h := http.Header{"Mcp-Protocol-Version": {Version}, "Mcp-Method": {"tools/list"}}
	for _, params := range []string{
		`{` + okMeta + `}`,
		`{"cursor":"c",` + okMeta + `}`,
		`{"_meta":{"progressToken":1,"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}},"x":[1]}`,
	} {
		msg := &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage(`1`), Method: "tools/list", Params: json.RawMessage(params)}
		m, p := Validate(h, msg, []string{Version}, []string{Version})
		if p != nil {
			t.Fatalf("Validate(%s): %+v", params, p)
		}
		want, err := StripMeta(msg.Params)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if got, err := m.StripMeta(msg.Params); err != nil || string(got) != string(want) {
				t.Errorf("Meta.StripMeta(%s) = %s, %v; want %s", params, got, err, want)
			}
		}
		other := json.RawMessage(`{"a":1,"_meta":{"io.modelcontextprotocol/x":1,"k":2}}`)
		if got, err := m.StripMeta(other); err != nil || string(got) != `{"a":1,"_meta":{"k":2}}` {
			t.Errorf("Meta.StripMeta of other params = %s, %v", got, err)
		}
	}
}

func TestStripMetaUnchanged(t *testing.T) {
	if got, err := StripMeta(nil); got != nil || err != nil {
		t.Errorf("StripMeta(nil) = %s, %v", got, err)
	}
	for _, in := range []string{
		`{"name":"x", "arguments": {}}`,
		`{"_meta": {"progressToken": 3}, "x": 1}`,
	} {
		raw := json.RawMessage(in)
		got, err := StripMeta(raw)
		if err != nil {
			t.Fatal(err)
		}
		if &got[0] != &raw[0] || len(got) != len(raw) {
			t.Errorf("StripMeta(%s) = %s, want the same slice", in, got)
		}
	}
}

func TestStripMetaErrors(t *testing.T) {
	for _, in := range []string{
		`[]`, `"x"`, `{`, `{"a":1}{}`, `{"a":1,"a":2}`,
		`{"_meta":[]}`, `{"_meta":{"k":1,"k":2}}`, `{"_meta":null}`,
	} {
		if got, err := StripMeta(json.RawMessage(in)); err == nil {
			t.Errorf("StripMeta(%s) = %s, want an error", in, got)
		}
	}
}

func TestCompleteResult(t *testing.T) {
	si := json.RawMessage(`{"name":"srv","version":"2.1.0"}`)
	for _, tc := range []struct {
		name, in  string
		si        json.RawMessage
		cacheable bool
		want      string
	}{
		{
			name: "adds resultType and serverInfo",
			in:   `{"content":[{"type":"text","text":"hi"}],"isError":false}`,
			si:   si,
			want: `{"content":[{"type":"text","text":"hi"}],"isError":false,"resultType":"complete",` +
				`"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"srv","version":"2.1.0"}}}`,
		},
		{
			name: "does not overwrite an existing resultType",
			in:   `{"resultType":"input_required","inputRequests":{}}`,
			want: `{"resultType":"input_required","inputRequests":{}}`,
		},
		{
			name: "keeps existing _meta members and an existing serverInfo",
			in:   `{"_meta":{"x":1,"io.modelcontextprotocol/serverInfo":{"name":"own"}},"tools":[]}`,
			si:   si,
			want: `{"_meta":{"x":1,"io.modelcontextprotocol/serverInfo":{"name":"own"}},"tools":[],"resultType":"complete"}`,
		},
		{
			name: "adds serverInfo to existing _meta",
			in:   `{"_meta":{"x": 1}}`,
			si:   si,
			want: `{"_meta":{"x":1,"io.modelcontextprotocol/serverInfo":{"name":"srv","version":"2.1.0"}},"resultType":"complete"}`,
		},
		{
			name: "null _meta becomes an object",
			in:   `{"_meta":null}`,
			si:   si,
			want: `{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"srv","version":"2.1.0"}},"resultType":"complete"}`,
		},
		{
			name: "empty result",
			in:   `{}`,
			want: `{"resultType":"complete"}`,
		},
		{
			name:      "cacheable: adds the cautious caching hints",
			in:        `{"tools":[]}`,
			cacheable: true,
			want:      `{"tools":[],"resultType":"complete","ttlMs":0,"cacheScope":"private"}`,
		},
		{
			name:      "cacheable: keeps the server's own hints",
			in:        `{"tools":[],"ttlMs":5000,"cacheScope":"public"}`,
			cacheable: true,
			want:      `{"tools":[],"ttlMs":5000,"cacheScope":"public","resultType":"complete"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CompleteResult(json.RawMessage(tc.in), tc.si, tc.cacheable)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	for _, in := range []string{`[]`, `null`, `"x"`, ``, `{"_meta":[]}`, `{"a":1,"a":1}`} {
		if got, err := CompleteResult(json.RawMessage(in), si, true); err == nil {
			t.Errorf("CompleteResult(%s) = %s, want an error", in, got)
		}
	}
}

// A 2025-11-25 initialize result as the everything server sends it.
const initializeResult = `{
  "protocolVersion": "2025-11-25",
  "capabilities": {
    "prompts": {"listChanged": true},
    "resources": {"subscribe": true, "listChanged": true},
    "tools": {"listChanged": true},
    "logging": {},
    "completions": {}
  },
  "serverInfo": {"name": "example-servers/everything", "title": "Everything", "version": "1.0.0"},
  "instructions": "Testing server for MCP features."
}`

func TestDiscoverFromInitialize(t *testing.T) {
	got, err := DiscoverFromInitialize(json.RawMessage(initializeResult), []string{Version, "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, json.RawMessage(`{
	  "resultType": "complete",
	  "supportedVersions": ["2026-07-28", "2025-11-25"],
	  "capabilities": {
	    "prompts": {"listChanged": true},
	    "resources": {"subscribe": true, "listChanged": true},
	    "tools": {"listChanged": true},
	    "logging": {},
	    "completions": {}
	  },
	  "instructions": "Testing server for MCP features.",
	  "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "example-servers/everything", "title": "Everything", "version": "1.0.0"}},
	  "ttlMs": 0,
	  "cacheScope": "private"
	}`))
	if ServerInfo(got) == nil || string(ServerInfo(got)) != string(ServerInfo(json.RawMessage(initializeResult))) {
		t.Errorf("ServerInfo of the discover result %s differs from the initialize result's", ServerInfo(got))
	}
}

func TestDiscoverFromInitializeMinimal(t *testing.T) {
	got, err := DiscoverFromInitialize(json.RawMessage(`{"protocolVersion":"2025-06-18","instructions":7}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, json.RawMessage(`{"resultType":"complete","supportedVersions":[],"capabilities":{},"ttlMs":0,"cacheScope":"private"}`))
	for _, in := range []string{`[]`, `null`, `{"capabilities":[]}`, `{"capabilities":"x"}`} {
		if got, err := DiscoverFromInitialize(json.RawMessage(in), []string{Version}); err == nil {
			t.Errorf("DiscoverFromInitialize(%s) = %s, want an error", in, got)
		}
	}
}

func TestServerInfo(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{initializeResult, `{"name": "example-servers/everything", "title": "Everything", "version": "1.0.0"}`},
		{`{"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"m"}}}`, `{"name":"m"}`},
		{`{"serverInfo":{"name":"top"},"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"m"}}}`, `{"name":"top"}`},
		{`{"serverInfo":null,"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"m"}}}`, `{"name":"m"}`},
		{`{"_meta":{"io.modelcontextprotocol/serverInfo":null}}`, ``},
		{`{"tools":[]}`, ``},
		{`{"_meta":5}`, ``},
		{`[]`, ``},
		{``, ``},
	} {
		got := ServerInfo(json.RawMessage(tc.in))
		if string(got) != tc.want || (tc.want == "" && got != nil) {
			t.Errorf("ServerInfo(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsModernError(t *testing.T) {
	for in, want := range map[string]bool{
		`{"code":-32020,"message":"Header mismatch"}`:                                      true,
		`{"code":-32021,"message":"m","data":{"requiredCapabilities":{"sampling":{}}}}`:    true,
		`{"code":-32022,"message":"Unsupported protocol version","data":{"supported":[]}}`: true,
		`{"message":"x", "code": -32022}`:                                                  true,
		`{"code":-32019,"message":"x"}`:                                                    false,
		`{"code":-32023,"message":"x"}`:                                                    false,
		`{"code":-32601,"message":"x"}`:                                                    false,
		`{"code":-32602,"message":"x"}`:                                                    false,
		`{"code":"-32020","message":"x"}`:                                                  false,
		`{"code":-32020.5,"message":"x"}`:                                                  false,
		`{"code":-3.2020e4,"message":"x"}`:                                                 false,
		`{"Code":-32020,"message":"x"}`:                                                    false,
		`{"message":"x"}`:                                                                  false,
		`[]`:                                                                               false,
		`null`:                                                                             false,
		``:                                                                                 false,
	} {
		if got := IsModernError(json.RawMessage(in)); got != want {
			t.Errorf("IsModernError(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestToLegacyCapabilities(t *testing.T) {
	caps := json.RawMessage(`{"roots":{},"sampling":{"tools":{}},"elicitation":{"form":{},"url":{}},` +
		`"experimental":{"x":{}},"extensions":{"io.modelcontextprotocol/ui":{"mimeTypes":["text/html;profile=mcp-app"]}}}`)
	got := ToLegacyCapabilities(caps)
	want := `{"roots":{},"sampling":{"tools":{}},"elicitation":{"form":{},"url":{}},"experimental":{"x":{}}}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	plain := json.RawMessage(`{"sampling": {}}`)
	if got := ToLegacyCapabilities(plain); !bytes.Equal(got, plain) {
		t.Errorf("ToLegacyCapabilities(%s) = %s", plain, got)
	}
	for _, in := range []string{``, `null`, `[]`, `{"a":1,"a":2}`} {
		if got := ToLegacyCapabilities(json.RawMessage(in)); string(got) != `{}` {
			t.Errorf("ToLegacyCapabilities(%q) = %s, want {}", in, got)
		}
	}
}
