package session

import (
	"encoding/json"
	"testing"
)

func TestNameSpan(t *testing.T) {
	for _, c := range []struct {
		name, params string
		want         string // the params with the name replaced by "X"; "" = not ok
	}{
		{"plain", `{"name":"a__echo","arguments":{"text":"hi"}}`, `{"name":"X","arguments":{"text":"hi"}}`},
		{"spaces", ` { "arguments" : {"name":"inner"} , "name" : "a__echo" } `, ` { "arguments" : {"name":"inner"} , "name" : "X" } `},
		{"escaped value", `{"name":"a__\u0065cho"}`, `{"name":"X"}`},
		{"escaped key", `{"na\u006de":"a__echo"}`, ""},
		{"escaped key besides", `{"name":"a__echo","na\u006de":"b__echo"}`, ""},
		{"duplicate", `{"name":"a__echo","name":"b__echo"}`, ""},
		{"missing", `{"arguments":{"name":"a__echo"}}`, ""},
		{"not a string", `{"name":7}`, ""},
		{"empty object", `{}`, ""},
		{"not an object", `["name"]`, ""},
		{"truncated", `{"name":`, ""},
		{"empty", ``, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			name, start, end, ok := nameSpan(json.RawMessage(c.params))
			if ok != (c.want != "") {
				t.Fatalf("nameSpan(%s) ok = %v", c.params, ok)
			}
			if !ok {
				return
			}
			var p struct{ Name string }
			_ = json.Unmarshal([]byte(c.params), &p)
			if name != p.Name {
				t.Errorf("name = %q, want %q", name, p.Name)
			}
			if got := string(withName(json.RawMessage(c.params), start, end, "X")); got != c.want {
				t.Errorf("withName = %s, want %s", got, c.want)
			}
		})
	}
}
