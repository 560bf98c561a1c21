package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

func TestGlobs(t *testing.T) {
	tests := []struct {
		name        string
		allow, deny []string
		exposed     []string
		hidden      []string
	}{
		{"nothing configured", nil, nil, []string{"a", ""}, nil},
		{"allow", []string{"get_*", "list_?"}, nil, []string{"get_", "get_x", "list_a"}, []string{"list_ab", "xget_a", "delete"}},
		{"deny wins", []string{"*"}, []string{"delete_*"}, []string{"get"}, []string{"delete_", "delete_all"}},
		{"star crosses slashes", []string{"file:///srv/*"}, nil, []string{"file:///srv/a/b/c"}, []string{"file:///etc/passwd"}},
		{"metacharacters are literal", []string{"a.b", "(x)+", `[a]\`}, nil, []string{"a.b", "(x)+", `[a]\`}, []string{"axb", "xx", "a"}},
		{"newlines", []string{"a*"}, nil, []string{"a\nb"}, []string{"\na"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGlobs(tc.allow, tc.deny)
			for _, n := range tc.exposed {
				if !g.Exposes(n) {
					t.Errorf("%q hidden, want exposed", n)
				}
			}
			for _, n := range tc.hidden {
				if g.Exposes(n) {
					t.Errorf("%q exposed, want hidden", n)
				}
			}
		})
	}
}

func testGuard(t testing.TB) *Guard {
	t.Helper()
	g, err := New(Config{
		Server:    "s",
		Tools:     NewGlobs([]string{"get_*"}, []string{"get_secret"}),
		Prompts:   NewGlobs(nil, []string{"admin"}),
		Resources: NewGlobs([]string{"file:///docs/*"}, nil),
	}, nil)
	if err != nil || g == nil {
		t.Fatal("New returned nil for a restricting config")
	}
	return g
}

func request(method string, params any) *jsonrpc.Message {
	p, _ := json.Marshal(params)
	return &jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage("1"), Method: method, Params: p}
}

func TestNewRestrictsNothing(t *testing.T) {
	if g, err := New(Config{Server: "s"}, nil); g != nil || err != nil {
		t.Errorf("New of an empty config = %v, want nil", g)
	}
}

func TestFilterLists(t *testing.T) {
	g := testGuard(t)
	tests := []struct {
		method, result, want string
	}{
		{"tools/list", `{"tools":[{"name":"get_a"},{"name":"get_secret"},{"name":"delete"}],"nextCursor":"c"}`,
			`{"nextCursor":"c","tools":[{"name":"get_a"}]}`},
		{"tools/list", `{"tools":[{"name":"get_a"}]}`, `{"tools":[{"name":"get_a"}]}`},
		// A duplicate key means the last one, for the decision and for
		// every client.
		{"tools/list", `{"tools":[{"name":"get_secret","name":"get_a"},{"name":"get_a","name":"get_secret"}]}`, `{"tools":[{"name":"get_a"}]}`},
		{"tools/list", `{"tools":[{"name":"delete"}]}`, `{"tools":[]}`},
		{"prompts/list", `{"prompts":[{"name":"admin"},{"name":"x"}]}`, `{"prompts":[{"name":"x"}]}`},
		{"resources/list", `{"resources":[{"uri":"file:///docs/a","name":"a"},{"uri":"file:///etc/x"}]}`,
			`{"resources":[{"name":"a","uri":"file:///docs/a"}]}`},
		{"resources/templates/list", `{"resourceTemplates":[{"uriTemplate":"file:///docs/{p}"},{"uriTemplate":"file:///{p}"}]}`,
			`{"resourceTemplates":[{"uriTemplate":"file:///docs/{p}"}]}`},
		// What the guard cannot read passes as the server sent it.
		{"tools/list", `{"tools":"nope"}`, `{"tools":"nope"}`},
		{"tools/list", `[1]`, `[1]`},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.result, func(t *testing.T) {
			req := request(tc.method, map[string]any{})
			fwd, adapt := g.Request(Who{}, req)
			if fwd != req {
				t.Errorf("a list request was changed")
			}
			m := &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: req.ID, Result: json.RawMessage(tc.result)}
			adapt(m)
			if diff := cmp.Diff(tc.want, string(m.Result)); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHiddenUse(t *testing.T) {
	g := testGuard(t)
	tests := []struct {
		name    string
		method  string
		params  map[string]any
		hidden  bool
		field   func(map[string]any) string
		prefix  string // of the placeholder
		visible string
	}{
		{"exposed tool", "tools/call", map[string]any{"name": "get_a", "arguments": map[string]any{}}, false, nil, "", ""},
		{"denied tool", "tools/call", map[string]any{"name": "get_secret"}, true, func(p map[string]any) string { return p["name"].(string) }, "mcpgw-hidden-", "get_secret"},
		{"tool outside allow", "tools/call", map[string]any{"name": `we"ird`}, true, func(p map[string]any) string { return p["name"].(string) }, "mcpgw-hidden-", `we\"ird`},
		{"prompt", "prompts/get", map[string]any{"name": "admin"}, true, func(p map[string]any) string { return p["name"].(string) }, "mcpgw-hidden-", "admin"},
		{"resource keeps its scheme", "resources/read", map[string]any{"uri": "file:///etc/passwd"}, true, func(p map[string]any) string { return p["uri"].(string) }, "file://mcpgw-hidden-", "file:///etc/passwd"},
		{"subscribe", "resources/subscribe", map[string]any{"uri": "urn:x"}, true, func(p map[string]any) string { return p["uri"].(string) }, "urn:mcpgw-hidden-", "urn:x"},
		{"completion of a prompt", "completion/complete", map[string]any{"ref": map[string]any{"type": "ref/prompt", "name": "admin"}},
			true, func(p map[string]any) string { return p["ref"].(map[string]any)["name"].(string) }, "mcpgw-hidden-", "admin"},
		{"completion of a template", "completion/complete", map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": "file:///{x}"}},
			true, func(p map[string]any) string { return p["ref"].(map[string]any)["uri"].(string) }, "file://mcpgw-hidden-", "file:///{x}"},
		{"completion of an exposed template", "completion/complete", map[string]any{"ref": map[string]any{"type": "ref/resource", "uri": "file:///docs/{x}"}}, false, nil, "", ""},
		{"other method", "ping", map[string]any{"name": "get_secret"}, false, nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := request(tc.method, tc.params)
			fwd, adapt := g.Request(Who{}, req)
			if !tc.hidden {
				if fwd != req || adapt != nil {
					t.Fatalf("an allowed request was changed")
				}
				return
			}
			var sent map[string]any
			if err := json.Unmarshal(fwd.Params, &sent); err != nil {
				t.Fatal(err)
			}
			ph := tc.field(sent)
			if !strings.HasPrefix(ph, tc.prefix) || len(ph) < len(tc.prefix)+16 {
				t.Errorf("forwarded params %s: want the name replaced by a placeholder starting %q", fwd.Params, tc.prefix)
			}
			// The server's answer names the placeholder; the client's names
			// what it sent.
			msg, _ := json.Marshal("Unknown: " + ph)
			m := &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: req.ID, Error: json.RawMessage(`{"code":-32602,"message":` + string(msg) + `}`)}
			adapt(m)
			if want := `{"code":-32602,"message":"Unknown: ` + tc.visible + `"}`; string(m.Error) != want {
				t.Errorf("error = %s, want %s", m.Error, want)
			}
		})
	}
}

// FuzzFilterList: whatever a server answers to a list, the guard neither
// panics nor turns valid JSON into invalid JSON, and never lets a hidden
// name through.
func FuzzFilterList(f *testing.F) {
	f.Add("tools/list", `{"tools":[{"name":"get_a"},{"name":"get_secret"}]}`)
	f.Add("resources/list", `{"resources":[{"uri":"file:///docs/a"},{"uri":1}]}`)
	f.Add("prompts/list", `{"prompts":[{"name":"admin","name":"x"}]}`)
	f.Add("resources/templates/list", `{"resourceTemplates":null}`)
	g := testGuard(f)
	f.Fuzz(func(t *testing.T, method, result string) {
		if lists[method].field == "" {
			method = "tools/list"
		}
		_, adapt := g.Request(Who{}, request(method, map[string]any{}))
		m := &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: json.RawMessage("1"), Result: json.RawMessage(result)}
		adapt(m)
		if json.Valid([]byte(result)) && !json.Valid(m.Result) {
			t.Fatalf("valid %s became invalid %s", result, m.Result)
		}
		if string(m.Result) == result {
			return
		}
		var res map[string][]item
		if err := json.Unmarshal(m.Result, &res); err != nil {
			t.Fatalf("changed result %s does not decode: %v", m.Result, err)
		}
		l := lists[method]
		for _, it := range res[l.field] {
			if !g.allows(&facts{method: method, kind: l.kind, item: &it}) {
				t.Fatalf("hidden %q kept in %s", it.key(l.kind), m.Result)
			}
		}
	})
}
