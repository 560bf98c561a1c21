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
