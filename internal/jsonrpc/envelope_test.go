package jsonrpc

import (
	"encoding/json"
	"fmt"
	"testing"
)

// parseSlow is Parse without the fast path: what encoding/json makes of data.
func parseSlow(data []byte) (*Message, error) {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return fromWire(&w)
}

// checkSameAsSlow fails unless Parse and encoding/json agree on data.
func checkSameAsSlow(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := Parse(data)
	want, wantErr := parseSlow(data)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("Parse(%q): error %v, encoding/json says %v", data, gotErr, wantErr)
	}
	if gotErr != nil {
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("Parse(%q): error %q, encoding/json says %q", data, gotErr, wantErr)
		}
		return
	}
	g := fmt.Sprintf("%v|%q|%q|%q|%q|%q", got.Kind, got.ID, got.Method, got.Params, got.Result, got.Error)
	w := fmt.Sprintf("%v|%q|%q|%q|%q|%q", want.Kind, want.ID, want.Method, want.Params, want.Result, want.Error)
	if g != w {
		t.Fatalf("Parse(%q)\n got %s\nwant %s", data, g, w)
	}
}

var envelopeSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
	`{"jsonrpc":"2.0","id":"a","method":"x","params":{}}`,
	` { "jsonrpc" : "2.0" , "id" : 7 , "method" : "tools/call" , "params" : { "name" : "echo" , "arguments" : { "text" : "a\"b}" } } } `,
	"{\n\t\"jsonrpc\": \"2.0\",\r\n\"id\": -1.5e3,\n\"method\": \"x\"\n}\n",
	`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	`{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"[{]}\\\""}]}}`,
	`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"x"}}`,
	`{"jsonrpc":"2.0","id":1,"result":null}`,
	`{"jsonrpc":"2.0","id":1,"result":[]}`,
	`{"jsonrpc":"2.0","id":1,"result":"s","extra":{"a":[1,{"b":null}]},"more":true}`,
	`{"ID":1,"jsonrpc":"2.0","method":"x"}`,
	`{"jsonrpc":"2.0","Method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}`,
	`{"jsonrpc":"2.0","\u0069d":1,"method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"method":"a\u002fb"}`,
	`{"jsonrpc":"2.0","id":1,"method":"é"}`,
	`{"jſonrpc":"2.0","id":1,"method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"method":null}`,
	`{"jsonrpc":null,"id":1,"method":"x"}`,
	`{"jsonrpc":2,"id":1,"method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"method":3}`,
	`{"jsonrpc":"2.0","id":{},"method":"x"}`,
	`{"jsonrpc":"2.0","id":true,"method":"x"}`,
	`{"jsonrpc":"2.0","id":1,"method":""}`,
	`{"jsonrpc":"2.0","id":1,"method":"x","params":3}`,
	`{"jsonrpc":"2.0","id":1,"method":"x","params":null}`,
	`{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":""}}`,
	`{"jsonrpc":"2.0"}`,
	`{}`,
	`[1,2]`,
	`"x"`,
	`null`,
	`this is not json`,
	`{"jsonrpc":"2.0","id":1,"method":"x"`,
	`{"jsonrpc":"2.0","id":1,"method":"x"} {}`,
	``,
	`{"jsonrpc":"2.0","id":"\ud800","method":"x"}`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"x\",\"params\":{\"s\":\"\xff\"}}",
}

func TestParseAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range envelopeSeeds {
		checkSameAsSlow(t, []byte(s))
	}
}

// The values must not alias the caller's buffer: the backend reuses its
// line buffer for the next message.
func TestParseCopies(t *testing.T) {
	data := []byte(`{"jsonrpc":"2.0","id":1,"result":{"a":1}}`)
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := range data {
		data[i] = 'x'
	}
	if string(m.ID) != "1" || string(m.Result) != `{"a":1}` {
		t.Fatalf("the message changed with the caller's buffer: id %s result %s", m.ID, m.Result)
	}
	// Appending to one value must not overwrite the next.
	m2, _ := Parse([]byte(`{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":1}}`))
	_ = append(m2.ID, "999999"...)
	if string(m2.Params) != `{"a":1}` {
		t.Fatalf("append to ID changed Params: %s", m2.Params)
	}
}

func FuzzParseAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range envelopeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSameAsSlow(t, data)
	})
}
