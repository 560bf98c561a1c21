package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseExposure(t *testing.T) {
	c := mustParse(t, `servers:
  gh:
    command: [x]
    tools: {allow: ["get_*", list_*], deny: ["get_secret"]}
    prompts: {deny: ["admin_*"]}
    resources: {allow: ["file:///srv/docs/*"]}
`, nil)
	s := c.Servers["gh"]
	want := []Exposure{
		{Allow: []string{"get_*", "list_*"}, Deny: []string{"get_secret"}},
		{Deny: []string{"admin_*"}},
		{Allow: []string{"file:///srv/docs/*"}},
	}
	if diff := cmp.Diff(want, []Exposure{s.Tools, s.Prompts, s.Resources}); diff != "" {
		t.Errorf("exposure (-want +got):\n%s", diff)
	}
}

func TestParseExposureProblems(t *testing.T) {
	long := strings.Repeat("a", maxGlobLength+1)
	many := strings.Repeat(`"a", `, maxGlobs) + `"a"`
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"not a mapping", "    tools: [get_*]\n",
			[]string{"servers.s.tools: must be a mapping (key: value), not a list (line 4)"}},
		{"not a list", "    tools: {allow: get_*}\n",
			[]string{`servers.s.tools.allow: must be a list, not a single value; write globs as a list, e.g. ["get_*", "list_*"] (line 4)`}},
		{"unknown key", "    prompts: {allowed: [x]}\n",
			[]string{"servers.s.prompts.allowed: unknown key; did you mean allow? (line 4)"}},
		{"empty glob", "    resources: {deny: [\"\"]}\n",
			[]string{`servers.s.resources.deny[0]: must not be empty; "*" matches every name (line 4)`}},
		{"long glob", "    tools: {deny: [" + long + "]}\n",
			[]string{"servers.s.tools.deny[0]: is longer than 1024 bytes (line 4)"}},
		{"too many globs", "    tools: {allow: [" + many + "]}\n",
			[]string{"servers.s.tools.allow: has 257 globs; at most 256 are allowed: use * to cover more names with one (line 4)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("servers:\n  s:\n    command: [x]\n"+tc.yaml), envOf(nil))
			if diff := cmp.Diff(tc.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRules(t *testing.T) {
	c := mustParse(t, `servers:
  gh:
    command: [x]
    policy:
      - {allow: 'identity.name == "ci" && tool.annotations.readOnlyHint'}
      - deny: tool.name.startsWith("create_") && !identity.email.endsWith("@example.com")
`, nil)
	want := []Rule{
		{Allow: true, Expr: `identity.name == "ci" && tool.annotations.readOnlyHint`},
		{Expr: `tool.name.startsWith("create_") && !identity.email.endsWith("@example.com")`},
	}
	if diff := cmp.Diff(want, c.Servers["gh"].Policy); diff != "" {
		t.Errorf("policy (-want +got):\n%s", diff)
	}
}

func TestParseRuleProblems(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"type error", "    policy:\n      - {allow: 'identity.name == 1'}\n",
			[]string{"servers.s.policy[0].allow: is not a valid rule: at column 15: found no matching overload for '_==_' applied to '(string, int)' (line 5)"}},
		{"not bool", "    policy:\n      - {deny: 'tool.name'}\n",
			[]string{"servers.s.policy[0].deny: is not a valid rule: the rule is of type string; it must be true or false (bool) (line 5)"}},
		{"second rule", "    policy:\n      - {deny: 'true'}\n      - {allow: 'tool.nosuch'}\n",
			[]string{"servers.s.policy[1].allow: is not a valid rule: at column 5: undefined field 'nosuch' (line 6)"}},
		{"both", "    policy:\n      - {allow: 'true', deny: 'false'}\n",
			[]string{"servers.s.policy[0]: has both allow and deny; write one rule per decision (line 5)"}},
		{"neither", "    policy:\n      - {permit: 'true'}\n",
			[]string{
				"servers.s.policy[0].permit: unknown key (line 5)",
				`servers.s.policy[0]: must be {allow: EXPR} or {deny: EXPR}, e.g. {deny: 'tool.name.startsWith("delete_")'} (line 5)`,
			}},
		{"not a list", "    policy: {allow: 'true'}\n",
			[]string{`servers.s.policy: must be a list of rules, not a mapping; e.g. [{allow: 'identity.name == "ci"'}, {deny: 'tool.name.startsWith("delete_")'}] (line 4)`}},
		{"empty", "    policy:\n      - {deny: ''}\n",
			[]string{`servers.s.policy[0].deny: is not a valid rule: the rule is empty; write a CEL expression such as identity.name == "ci" (line 5)`}},
		{"not a string", "    policy:\n      - {deny: [x]}\n",
			[]string{"servers.s.policy[0].deny: must be a CEL expression (a string), not a list (line 5)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte("servers:\n  s:\n    command: [x]\n"+tc.yaml), envOf(nil))
			if diff := cmp.Diff(tc.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParsePinTools(t *testing.T) {
	c := mustParse(t, "state_dir: /var/lib/mcpgw\nservers:\n  a: {command: [x], pin_tools: enforce}\n  b: {command: [x]}\n", nil)
	if got := c.Servers["a"].PinTools + " " + c.Servers["b"].PinTools; got != "enforce off" {
		t.Errorf("pin_tools = %q, want enforce off", got)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"state_dir: /s\nservers:\n  a: {command: [x], pin_tools: on}\n", `servers.a.pin_tools: must be one of off, warn, enforce (got "on") (line 3)`},
		{"state_dir: rel\nservers:\n  a: {command: [x], pin_tools: warn}\n", `servers.a.pin_tools: needs an absolute state_dir, where tool pins persist (got "rel") (line 3)`},
	} {
		_, err := Parse([]byte(tc.yaml), envOf(nil))
		if diff := cmp.Diff([]string{tc.want}, problemsOf(t, err)); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	}
	// Without HOME or XDG_STATE_HOME there is no default state_dir.
	_, err := Parse([]byte("servers:\n  a: {command: [x], pin_tools: warn}\n"), envOf(nil))
	want := "servers.a.pin_tools: needs state_dir (there is no HOME or XDG_STATE_HOME to derive a default from): the directory where tool pins persist (line 2)"
	if diff := cmp.Diff([]string{want}, problemsOf(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
