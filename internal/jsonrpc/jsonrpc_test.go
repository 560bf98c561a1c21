package jsonrpc

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		kind    Kind
		id      string
		method  string
		wantErr bool
	}{
		{"request", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, KindRequest, "1", "tools/list", false},
		{"string id", `{"jsonrpc":"2.0","id":"a","method":"x","params":{}}`, KindRequest, `"a"`, "x", false},
		{"notification", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, KindNotification, "", "notifications/initialized", false},
		{"result", `{"jsonrpc":"2.0","id":2,"result":{}}`, KindResponse, "2", "", false},
		{"error", `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"x"}}`, KindResponse, "null", "", false},
		{"wrong version", `{"jsonrpc":"1.0","id":1,"method":"x"}`, 0, "", "", true},
		{"no version", `{"id":1,"method":"x"}`, 0, "", "", true},
		{"null request id", `{"jsonrpc":"2.0","id":null,"method":"x"}`, 0, "", "", true},
		{"object id", `{"jsonrpc":"2.0","id":{},"method":"x"}`, 0, "", "", true},
		{"bool id", `{"jsonrpc":"2.0","id":true,"method":"x"}`, 0, "", "", true},
		{"empty method", `{"jsonrpc":"2.0","id":1,"method":""}`, 0, "", "", true},
		{"scalar params", `{"jsonrpc":"2.0","id":1,"method":"x","params":3}`, 0, "", "", true},
		{"result and error", `{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":""}}`, 0, "", "", true},
		{"neither", `{"jsonrpc":"2.0"}`, 0, "", "", true},
		{"method with result", `{"jsonrpc":"2.0","id":1,"method":"x","result":{}}`, 0, "", "", true},
		{"string error", `{"jsonrpc":"2.0","id":1,"error":"bad"}`, 0, "", "", true},
		{"null result id", `{"jsonrpc":"2.0","id":null,"result":{}}`, 0, "", "", true},
		{"not an object", `[1,2]`, 0, "", "", true},
		{"garbage", `this is not json`, 0, "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Parse([]byte(c.in))
			if c.wantErr {
				if err == nil {
					t.Fatalf("Parse(%s) succeeded, want error", c.in)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := struct {
				Kind   Kind
				ID     string
				Method string
			}{m.Kind, string(m.ID), m.Method}
			want := struct {
				Kind   Kind
				ID     string
				Method string
			}{c.kind, c.id, c.method}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestEncodeCompactsNewlines(t *testing.T) {
	m, err := Parse([]byte("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\n  \"a\": \"line\\nbreak\"\n}}"))
	if err != nil {
		t.Fatal(err)
	}
	out := Encode(m)
	if bytes.ContainsAny(out, "\r\n") {
		t.Fatalf("encoded message has a raw newline: %s", out)
	}
	want := `{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":"line\nbreak"}}`
	if string(out) != want {
		t.Errorf("Encode = %s, want %s", out, want)
	}
}

func TestParseBatch(t *testing.T) {
	msgs, batch, err := ParseBatch([]byte(` [{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"b"}] `))
	if err != nil || !batch || len(msgs) != 2 {
		t.Fatalf("ParseBatch: %v %v %d", err, batch, len(msgs))
	}
	if _, _, err := ParseBatch([]byte(`[{"jsonrpc":"2.0","id":1,"method":"a"},{"bad":1}]`)); err == nil {
		t.Error("batch with an invalid element accepted")
	}
	if _, _, err := ParseBatch([]byte(`{"jsonrpc":`)); err == nil || !IsSyntaxError(err) {
		t.Errorf("truncated JSON: %v, want a syntax error", err)
	}
	if _, _, err := ParseBatch([]byte(`{"jsonrpc":"2.0"}`)); err == nil || IsSyntaxError(err) {
		t.Errorf("valid JSON, invalid message: %v, want a non-syntax error", err)
	}
}

func TestParamsFields(t *testing.T) {
	f := ParamsFields(json.RawMessage(`{"_meta":{"progressToken":"tok"},"requestId":7,"progressToken":3,"level":"info","uri":"file:///x"}`))
	want := Fields{MetaProgressToken: json.RawMessage(`"tok"`), ProgressToken: json.RawMessage(`3`), RequestID: json.RawMessage(`7`), Level: "info", URI: "file:///x"}
	if d := cmp.Diff(want, f); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if f := ParamsFields(json.RawMessage(`[1]`)); f.RequestID != nil {
		t.Error("array params yielded fields")
	}
}

// FuzzParse: untrusted bytes never panic, and every accepted message
// re-encodes to a single line that parses to the same envelope.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","method":"n","params":{"a":[1,2,{"b":null}]}}`,
		`{"jsonrpc":"2.0","id":"x","result":{"content":[]}}`,
		`{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"a"}]`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\n}}",
		`{"jsonrpc":"2.0","ID":1,"id":2,"method":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, _, err := ParseBatch(data)
		if err != nil {
			return
		}
		for _, m := range msgs {
			out := Encode(m)
			if bytes.ContainsAny(out, "\r\n") {
				t.Fatalf("Encode produced a newline: %q", out)
			}
			m2, err := Parse(out)
			if err != nil {
				t.Fatalf("re-parse of %q: %v", out, err)
			}
			if m2.Kind != m.Kind || m2.Method != m.Method || IDKey(m2.ID) != IDKey(m.ID) {
				t.Fatalf("round trip changed the envelope: %+v vs %+v", m, m2)
			}
		}
	})
}

func TestMetaProgressToken(t *testing.T) {
	cases := []struct{ params, want string }{
		{`{"name":"echo"}`, ""},
		{`{"_meta":{"progressToken":"t1"},"name":"x"}`, `"t1"`},
		{`{"_meta":{"progressToken":7}}`, `7`},
		{`{"arguments":{"text":"progressToken"}}`, ""}, // the word, not the member
	}
	for _, c := range cases {
		if got := string(MetaProgressToken(json.RawMessage(c.params))); got != c.want {
			t.Errorf("MetaProgressToken(%s) = %q, want %q", c.params, got, c.want)
		}
	}
	out, err := SetMetaProgressToken(json.RawMessage(`{"_meta":{"progressToken":1,"other":true},"name":"x"}`), "mcpgw-1")
	if err != nil {
		t.Fatal(err)
	}
	f := ParamsFields(out)
	if string(f.MetaProgressToken) != `"mcpgw-1"` || !bytes.Contains(out, []byte(`"other":true`)) || !bytes.Contains(out, []byte(`"name":"x"`)) {
		t.Errorf("SetMetaProgressToken lost or kept the wrong members: %s", out)
	}
}

// appendString must write a string exactly as json.Marshal does, for every
// byte it passes through unescaped and every one it hands on.
func TestAppendStringAsMarshal(t *testing.T) {
	cases := []string{"", "tools/call", "notifications/initialized", "a b", `a"b`, `a\b`, "a<b>&c", "é", "\x7f", "\xff", "line\nbreak", "\u2028"}
	for c := range 256 {
		cases = append(cases, "x"+string(rune(c))+"y", "x"+string([]byte{byte(c)})+"y")
	}
	for _, s := range cases {
		want, _ := json.Marshal(s)
		if got := appendString([]byte("prefix"), s); string(got) != "prefix"+string(want) {
			t.Errorf("appendString(%q) = %s, want prefix%s", s, got, want)
		}
	}
}

func FuzzAppendStringAsMarshal(f *testing.F) {
	f.Add("tools/call")
	f.Add("a<\"\\\x00\xff")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
