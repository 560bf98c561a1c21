package policy

import (
	"encoding/json"
	"testing"
)

func TestDigestCanonical(t *testing.T) {
	_, a, ok1 := digestOf(json.RawMessage(`{"name":"t","description":"d","inputSchema":{"type":"object","properties":{"a":{},"b":{}}},"title":"ignored"}`))
	_, b, ok2 := digestOf(json.RawMessage(`{ "inputSchema" : {"properties":{"b":{},"a":{}},"type":"object"}, "description":"d","name":"t"}`))
	_, c, ok3 := digestOf(json.RawMessage(`{"name":"t","description":"d2","inputSchema":{"type":"object","properties":{"a":{},"b":{}}}}`))
	_, d, ok4 := digestOf(json.RawMessage(`{"name":"t","description":"d","inputSchema":{"type":"object","properties":{"a":{},"b":{}}},"annotations":{"readOnlyHint":true}}`))
	if !ok1 || !ok2 || !ok3 || !ok4 {
		t.Fatal("a digest failed")
	}
	if a != b {
		t.Errorf("key order or spacing changed the digest")
	}
	if a == c || a == d {
		t.Errorf("a changed description or annotations kept the digest")
	}
}

func TestPinEnforceInMemory(t *testing.T) {
	g, err := New(Config{Server: "s", PinTools: PinEnforce}, nil)
	if err != nil || g == nil {
		t.Fatal(err)
	}
	list := func(desc string) []string {
		return listed(t, g, Who{}, `{"tools":[{"name":"a","description":"`+desc+`"},{"name":"b"}]}`)
	}
	call := func(name string) bool {
		req := request("tools/call", map[string]any{"name": name})
		fwd, _ := g.Request(Who{}, req)
		return fwd == req
	}
	if call("a") {
		t.Errorf("a tool never listed was callable under enforce")
	}
	if got := list("one"); len(got) != 2 {
		t.Fatalf("first sight lists %v, want a and b", got)
	}
	if !call("a") {
		t.Errorf("a pinned tool was refused")
	}
	if got := list("two"); len(got) != 1 || got[0] != "b" {
		t.Errorf("after a's change the list is %v, want [b]", got)
	}
	if call("a") {
		t.Errorf("a changed tool was callable under enforce")
	}
	if got := list("one"); len(got) != 2 || !call("a") {
		t.Errorf("a tool back at its approved definition is not served: %v", got)
	}
}
