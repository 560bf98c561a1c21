package policy

import (
	"encoding/json"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mcpgw/mcpgw/internal/pins"
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

// TestPinsChangedOnApproval runs the real pin database: a changed tool
// held under enforce, then approved by another user of the database (as
// `mcpgw tools approve` does), is reported once each time, so that the
// gateway can tell its clients that their tool lists changed.
func TestPinsChangedOnApproval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st, err := pins.Open(t.Context(), t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		g, err := New(Config{Server: "s", PinTools: PinEnforce}, nil)
		if err != nil {
			t.Fatal(err)
		}
		g.UsePins(st)
		if !g.EnforcesPins() {
			t.Fatal("EnforcesPins is false under pin_tools: enforce")
		}
		// written reports whether the database shows a's definition d.
		written := func(d string) bool {
			_, digest, _ := digestOf(json.RawMessage(`{"name":"a","description":"` + d + `"}`))
			m, err := st.Load(t.Context(), "s")
			return err == nil && m["a"] != nil && m["a"].Seen == digest
		}
		wait := func(d string) {
			t.Helper()
			for i := 0; !written(d); i++ {
				if i == 100 {
					t.Fatalf("definition %q never reached the database", d)
				}
				time.Sleep(PinRefresh / 10)
			}
		}
		list := func(desc string) []string {
			return listed(t, g, Who{}, `{"tools":[{"name":"a","description":"`+desc+`"},{"name":"b"}]}`)
		}
		if got := list("one"); len(got) != 2 {
			t.Fatalf("first sight lists %v", got)
		}
		wait("one")
		if g.PinsChanged() {
			t.Error("the first call reported a change")
		}
		time.Sleep(PinRefresh)
		if g.PinsChanged() {
			t.Error("a change was reported with nothing held")
		}
		if got := list("two"); len(got) != 1 {
			t.Fatalf("a changed tool is listed under enforce: %v", got)
		}
		wait("two")
		if !g.PinsChanged() {
			t.Error("a newly held tool was not reported")
		}
		time.Sleep(PinRefresh)
		if g.PinsChanged() {
			t.Error("the same held tool was reported twice")
		}
		if was, err := st.Approve(t.Context(), "s", "a"); err != nil || !was {
			t.Fatalf("Approve = %v, %v", was, err)
		}
		if g.PinsChanged() {
			t.Error("an approval was seen before the refresh interval passed")
		}
		time.Sleep(PinRefresh)
		if !g.PinsChanged() {
			t.Error("the approval was not reported")
		}
		if got := list("two"); len(got) != 2 {
			t.Errorf("after the approval the list is %v, want a and b", got)
		}
		time.Sleep(PinRefresh)
		if g.PinsChanged() {
			t.Error("a change was reported after the approval was seen")
		}
	})
}

func TestPinsChangedOff(t *testing.T) {
	g, err := New(Config{Server: "s", PinTools: PinWarn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.EnforcesPins() {
		t.Error("EnforcesPins under warn")
	}
	var none *Guard
	if none.EnforcesPins() || none.PinsChanged() {
		t.Error("a nil Guard enforces or reports pins")
	}
}
