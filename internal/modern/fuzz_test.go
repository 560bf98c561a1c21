package modern

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mcpgw/mcpgw/internal/problem"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

func FuzzDecodeHeaderValue(f *testing.F) {
	for _, ex := range specEncodingExamples {
		f.Add(ex.original)
		f.Add(ex.encoded)
	}
	for _, s := range []string{"", "=?base64?", "?=", "=?base64?=", "=?base64??=", "=?base64?eB==?=", " \t", "\x00", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if dec, err := DecodeHeaderValue(s); err == nil && dec != s && !utf8.ValidString(dec) {
			t.Errorf("DecodeHeaderValue(%q) = %q: decoded to invalid UTF-8", s, dec)
		}
		enc := EncodeHeaderValue(s)
		if !headerSafe(enc) {
			t.Errorf("EncodeHeaderValue(%q) = %q is not header-safe", s, enc)
		}
		if strings.Trim(enc, " \t") != enc {
			t.Errorf("EncodeHeaderValue(%q) = %q has surrounding whitespace", s, enc)
		}
		if !utf8.ValidString(s) {
			return
		}
		got, err := DecodeHeaderValue(enc)
		if err != nil || got != s {
			t.Errorf("DecodeHeaderValue(EncodeHeaderValue(%q) = %q) = %q, %v", s, enc, got, err)
		}
	})
}

var problemCodes = []int{CodeHeaderMismatch, CodeUnsupportedVersion, jsonrpc.CodeInvalidParams}

func FuzzValidate(f *testing.F) {
	f.Add(Version, "tools/call", "get_weather", "tools/call", `{"name":"get_weather",`+okMeta+`}`, "")
	f.Add(Version, "resources/read", "file:///a", "resources/read", `{"uri":"file:///a",`+okMeta+`}`, "x")
	f.Add(Version, "prompts/get", EncodeHeaderValue("wörld"), "prompts/get", `{"name":"wörld",`+okMeta+`}`, "")
	f.Add(Version, "tools/list", "", "tools/list", `{`+okMeta+`}`, "extra")
	f.Add("2025-11-25", "tools/list", "", "tools/list", `{}`, "")
	f.Add(Version, "tools/call", "=?base64?!?=", "tools/call", `{"name":1,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":[]}}`, "")
	f.Add(Version, "x", "y", "x", `[`, "")
	f.Fuzz(func(t *testing.T, version, hMethod, hName, method, params, second string) {
		h := http.Header{}
		h.Set("MCP-Protocol-Version", version)
		h.Set("Mcp-Method", hMethod)
		if hName != "" {
			h.Set("Mcp-Name", hName)
		}
		if second != "" { // a second value for one of the headers, by name
			h.Add([]string{"Mcp-Name", "mcp-method", "Mcp-Param-X", "MCP-PROTOCOL-VERSION"}[len(second)%4], second)
		}
		msg := &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage(`1`), Method: method}
		if params != "" {
			msg.Params = json.RawMessage(params)
		}
		m, p := Validate(h, msg, supported, allVersions)
		if p == nil {
			if m == nil {
				t.Fatal("neither Meta nor Problem")
			}
			if m.ProtocolVersion != version || !slices.Contains(supported, version) {
				t.Errorf("accepted version %q with header %q", m.ProtocolVersion, version)
			}
			if kind(m.ClientCapabilities) != '{' {
				t.Errorf("accepted clientCapabilities %s", m.ClientCapabilities)
			}
			if hMethod != method {
				t.Errorf("accepted Mcp-Method %q for method %q", hMethod, method)
			}
			if source, ok := nameSources[method]; ok {
				var pm map[string]any
				dec, err := DecodeHeaderValue(hName)
				if err != nil || json.Unmarshal([]byte(params), &pm) != nil || pm[source] != dec {
					t.Errorf("accepted Mcp-Name %q for %s params %s", hName, method, params)
				}
			}
			// What Validate parsed gives StripMeta's answer.
			want, werr := StripMeta(msg.Params)
			got, gerr := m.StripMeta(msg.Params)
			if !bytes.Equal(got, want) || (gerr == nil) != (werr == nil) {
				t.Errorf("Meta.StripMeta(%s) = %s, %v; StripMeta says %s, %v", params, got, gerr, want, werr)
			}
			return
		}
		if m != nil {
			t.Errorf("Meta %+v with Problem %+v", m, p)
		}
		if p.Kind != problem.BadRequest || !slices.Contains(problemCodes, p.Code) {
			t.Errorf("Problem %+v", p)
		}
		if (p.Code == CodeUnsupportedVersion) != (p.Data != nil) {
			t.Errorf("code %d with data %#v", p.Code, p.Data)
		}
		checkMessage(t, p.Message)
		if len(p.Message) > 600 {
			t.Errorf("message of %d bytes", len(p.Message))
		}
	})
}

func FuzzStripMeta(f *testing.F) {
	f.Add([]byte(`{"name":"x","arguments":{"a":1},"_meta":{"progressToken":"t",` +
		`"io.modelcontextprotocol/protocolVersion":"2026-07-28","com.example/k":[1]}}`))
	f.Add([]byte(`{"_meta":{"io.modelcontextprotocol/clientCapabilities":{}}}`))
	f.Add([]byte(`{"_meta":{"io.modelcontextprotocol\/x":1,"k\u0000":"\ud800"}}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"_meta":null}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := StripMeta(in)
		if len(in) == 0 || !json.Valid(in) || kind(in) != '{' {
			return
		}
		var orig map[string]any
		if err := json.Unmarshal(in, &orig); err != nil {
			t.Fatal(err)
		}
		if err != nil {
			// Only duplicate names and a _meta that is not an object are refused.
			meta, hasMeta := orig["_meta"]
			_, metaIsObject := meta.(map[string]any)
			if !strings.Contains(err.Error(), "duplicate") && (!hasMeta || metaIsObject) {
				t.Errorf("StripMeta(%s): %v", in, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("StripMeta(%s) = %s: invalid JSON", in, out)
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if meta, ok := orig["_meta"].(map[string]any); ok {
			removed := false
			for k := range meta {
				if strings.HasPrefix(k, metaPrefix) {
					delete(meta, k)
					removed = true
				}
			}
			if removed && len(meta) == 0 { // an already empty _meta is kept
				delete(orig, "_meta")
			}
		}
		if !reflect.DeepEqual(got, orig) {
			t.Errorf("StripMeta(%s) = %s", in, out)
		}
	})
}

// FuzzParseObject: the fast member scanner agrees with encoding/json's
// tokenizer on every input: same members, same values, same failure.
func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, ` {"a":1 , "b" : [1,{"c":"}"}] } `, `{"a\u0062":"x\"y"}`, `{"a":1,"a":2}`,
		`[1]`, `"s"`, `{"a":}`, `{"a":1}x`, `{"_meta":{"k":{"n":[true,false,null,-1.5e3]}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := parseObject(raw)
		want, werr := parseObjectDecoder(raw)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: scanner err %v, decoder err %v", raw, err, werr)
		}
		if err != nil {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d members, decoder %d", raw, len(got), len(want))
		}
		for i := range got {
			if got[i].key != want[i].key || string(got[i].value) != string(want[i].value) {
				t.Fatalf("%q: member %d = %q:%s, decoder %q:%s", raw, i, got[i].key, got[i].value, want[i].key, want[i].value)
			}
		}
	})
}

// FuzzJSONString: the plain-ASCII shortcut encodes as encoding/json does
// (without HTML escaping).
func FuzzJSONString(f *testing.F) {
	for _, s := range []string{"", "name", "io.modelcontextprotocol/protocolVersion", "a\"b", "<&>", "é", "\x7f", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		if got, want := string(jsonString(s)), strings.TrimSuffix(b.String(), "\n"); got != want {
			t.Fatalf("jsonString(%q) = %s, want %s", s, got, want)
		}
	})
}
