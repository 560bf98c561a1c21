package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		expr    string
		wantErr string // "" = valid
	}{
		{`identity.name == "ci" && tool.annotations.readOnlyHint`, ""},
		{`tool.name.startsWith("create_") && !identity.email.endsWith("@example.com")`, ""},
		{`method == "tools/call" && has(args.path) && string(args.path).startsWith("/srv/")`, ""},
		{`"admins" in identity.claims && server == "github"`, ""},
		{`prompt.name == "x" || resource.uri.startsWith("file:///") || tool.description.contains("x")`, ""},
		{`identity.name.lowerAscii() == "ci"`, ""}, // ext.Strings
		{`identity.name == 1`, "found no matching overload for '_==_' applied to '(string, int)'"},
		{`tool.name`, "the rule is of type string; it must be true or false (bool)"},
		{`tool.nosuch == "x"`, "undefined field 'nosuch'"},
		{`idenity.name == "x"`, "undeclared reference to 'idenity'"},
		{`identity.name ==`, "Syntax error"},
		{``, "the rule is empty"},
		{strings.Repeat("(", 40) + "true" + strings.Repeat(")", 40), "recursion limit exceeded"},
		{strings.Repeat("true && ", 600) + "true", "longer than 4096 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.expr[:min(len(tc.expr), 60)], func(t *testing.T) {
			err := Check(tc.expr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Check = %v, want an error containing %q", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Errorf("error %q spans lines", err)
			}
		})
	}
}

func ruleGuard(t testing.TB, rules ...Rule) *Guard {
	t.Helper()
	for i := range rules {
		rules[i].Path = "servers.s.policy[" + string(rune('0'+i)) + "]"
	}
	g, err := New(Config{Server: "s", Rules: rules}, nil)
	if err != nil || g == nil {
		t.Fatalf("New: %v %v", g, err)
	}
	return g
}

// listed returns the names of the tools who sees in list.
func listed(t testing.TB, g *Guard, who Who, list string) []string {
	t.Helper()
	_, adapt := g.Request(who, request("tools/list", map[string]any{}))
	m := &jsonrpc.Message{Kind: jsonrpc.KindResponse, ID: json.RawMessage("1"), Result: json.RawMessage(list)}
	adapt(m)
	var res struct{ Tools []item }
	if err := json.Unmarshal(m.Result, &res); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// called reports whether who's call of tool with args is forwarded as is.
func called(g *Guard, who Who, tool string, args map[string]any) bool {
	req := request("tools/call", map[string]any{"name": tool, "arguments": args})
	fwd, _ := g.Request(who, req)
	return fwd == req
}

const ruleTools = `{"tools":[
	{"name":"get_issue","annotations":{"readOnlyHint":true,"destructiveHint":false}},
	{"name":"create_issue"},
	{"name":"delete_repo","annotations":{"destructiveHint":true}}]}`

func TestRules(t *testing.T) {
	g := ruleGuard(t,
		Rule{Allow: true, Expr: `identity.name == "ci" && tool.annotations.readOnlyHint`},
		Rule{Allow: false, Expr: `identity.name == "ci"`},
		Rule{Allow: false, Expr: `tool.name.startsWith("create_") && !identity.email.endsWith("@example.com")`},
		Rule{Allow: false, Expr: `tool.annotations.destructiveHint && !("admin" in identity.claims.groups)`},
		Rule{Allow: false, Expr: `method == "tools/call" && args.path.startsWith("/etc")`},
	)
	ci := Who{Name: "ci"}
	alice := Who{Name: "alice@example.com", Email: "alice@example.com", Claims: map[string]any{"groups": []any{"admin"}}}
	bob := Who{Name: "bob@other.org", Email: "bob@other.org", Claims: map[string]any{"groups": []any{"dev"}}}
	for _, tc := range []struct {
		who  Who
		want string
	}{
		{ci, "get_issue"},
		{alice, "get_issue create_issue delete_repo"},
		{bob, "get_issue"},
	} {
		if got := strings.Join(listed(t, g, tc.who, ruleTools), " "); got != tc.want {
			t.Errorf("%s sees %q, want %q", tc.who.Name, got, tc.want)
		}
	}
	if !called(g, ci, "get_issue", nil) || called(g, ci, "create_issue", nil) {
		t.Errorf("ci: the calls must follow its list")
	}
	if !called(g, alice, "delete_repo", map[string]any{"path": "/srv/x"}) {
		t.Errorf("alice may call delete_repo outside /etc")
	}
	if called(g, alice, "delete_repo", map[string]any{"path": "/etc/passwd"}) {
		t.Errorf("alice's call with an /etc path must be refused")
	}
	// args.path is missing: the rule fails, which refuses the call.
	if called(g, alice, "get_issue", map[string]any{}) {
		t.Errorf("a call whose rule fails must be refused")
	}
	// A tool never listed is decided with the spec's default
	// annotations (destructive): bob may not call it.
	if called(g, bob, "never_listed", map[string]any{"path": "/srv"}) {
		t.Errorf("bob called an unlisted tool with default (destructive) annotations")
	}
}

func TestRuleCostLimit(t *testing.T) {
	g := ruleGuard(t, Rule{Allow: false, Expr: `args.items.all(x, args.items.all(y, x != y || x == y)) && false`})
	small := make([]any, 10)
	for i := range small {
		small[i] = i
	}
	if !called(g, Who{}, "t", map[string]any{"items": small}) {
		t.Errorf("a cheap evaluation was refused")
	}
	big := make([]any, 1000) // a million comparisons: beyond CostLimit
	for i := range big {
		big[i] = i
	}
	if called(g, Who{}, "t", map[string]any{"items": big}) {
		t.Errorf("an evaluation beyond the cost limit was not refused")
	}
}

// FuzzCheck: any text given as a rule is accepted or refused with a
// one-line error, never a panic, within the parser's bounds.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`identity.name == "ci"`, `tool.annotations.readOnlyHint`, `args.a[0].b`, `[1,2].map(x, x*2)[0] == 2`, `"\u00ff" + 'x' == b"y"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		if err := Check(expr); err != nil && strings.Contains(err.Error(), "\n") {
			t.Fatalf("Check(%q) = %q spans lines", expr, err)
		}
	})
}
