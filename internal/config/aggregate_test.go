package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAggregate(t *testing.T) {
	c := mustParse(t, `servers:
  fs: {command: [x]}
  github: {command: [y], mode: daemon}
  all:
    aggregate: [github, fs]
    prefix: conflicts
    separator: "-"
    on_member_error: fail
    page_size: 7
    allow: []
  every:
    aggregate: "*"
`, nil)
	want := &Aggregate{Members: []string{"github", "fs"}, Prefix: PrefixConflicts, Separator: "-", OnMemberError: MemberErrorFail, PageSize: 7}
	if diff := cmp.Diff(want, c.Servers["all"].Aggregate); diff != "" {
		t.Errorf("all (-want +got):\n%s", diff)
	}
	want = &Aggregate{Members: []string{"fs", "github"}, All: true, Prefix: PrefixAlways, Separator: "__", OnMemberError: MemberErrorSkip, PageSize: 100}
	if diff := cmp.Diff(want, c.Servers["every"].Aggregate); diff != "" {
		t.Errorf("every (-want +got):\n%s", diff)
	}
	if c.Servers["fs"].IsAggregate() {
		t.Error("fs is not an aggregate")
	}
}

func TestParseAggregateProblems(t *testing.T) {
	const base = "servers:\n  fs: {command: [x]}\n  github: {command: [y]}\n  inner: {aggregate: [fs]}\n  all:\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown member", "    aggregate: [fs, githb]\n",
			[]string{`servers.all.aggregate[1]: unknown server "githb"; did you mean github? (line 6)`}},
		{"nested", "    aggregate: [inner]\n",
			[]string{`servers.all.aggregate[0]: "inner" is itself an aggregate; aggregates cannot be nested: list its members instead (line 6)`}},
		{"itself", "    aggregate: [all, fs]\n",
			[]string{`servers.all.aggregate[0]: an aggregate cannot list itself (line 6)`}},
		{"twice", "    aggregate: [fs, fs]\n",
			[]string{`servers.all.aggregate[1]: "fs" is listed twice (line 6)`}},
		{"empty", "    aggregate: []\n",
			[]string{`servers.all.aggregate: must list at least one member server, e.g. [fs, github] (line 6)`}},
		{"null", "    aggregate:\n",
			[]string{`servers.all.aggregate: must list member servers, e.g. [fs, github], or be "*" (line 6)`}},
		{"a string", "    aggregate: fs\n",
			[]string{`servers.all.aggregate: must be a list of server names or "*" (every server that is not an aggregate), not the string "fs"; write [fs] for one member (line 6)`}},
		{"with command", "    aggregate: [fs]\n    command: [z]\n",
			[]string{`servers.all.command: an aggregate runs no process of its own (its members keep their own settings): remove command or aggregate (line 7)`}},
		{"daemon", "    aggregate: [fs]\n    mode: daemon\n",
			[]string{`servers.all.mode: an aggregate runs no process of its own (its members keep their own settings): remove mode or aggregate (line 7)`}},
		{"bad separator", "    aggregate: [fs]\n    separator: \"::\"\n",
			[]string{`servers.all.separator: must be 1 to 8 of the characters A-Z, a-z, 0-9, _ and - (what clients accept in a tool name) (got "::") (line 7)`}},
		{"empty separator", "    aggregate: [fs]\n    separator: \"\"\n",
			[]string{`servers.all.separator: must not be empty; the default is "__" (line 7)`}},
		{"long separator", "    aggregate: [fs]\n    separator: ___________\n",
			[]string{`servers.all.separator: must be 1 to 8 of the characters A-Z, a-z, 0-9, _ and - (what clients accept in a tool name) (got "___________") (line 7)`}},
		{"bad prefix", "    aggregate: [fs]\n    prefix: sometimes\n",
			[]string{`servers.all.prefix: must be one of always, conflicts, never (got "sometimes") (line 7)`}},
		{"bad on_member_error", "    aggregate: [fs]\n    on_member_error: ignore\n",
			[]string{`servers.all.on_member_error: must be one of skip, fail (got "ignore") (line 7)`}},
		{"prefix without aggregate", "    command: [z]\n    prefix: always\n",
			[]string{`servers.all.prefix: applies to aggregates only (servers with aggregate: [...]); add aggregate or remove prefix (line 7)`}},
		{"page_size too big", "    aggregate: [fs]\n    page_size: 5000\n",
			[]string{`servers.all.page_size: must be between 1 and 1000 (line 7)`}},
		{"command missing is fine", "    aggregate: [fs, github]\n", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+tc.yaml), envOf(nil))
			var got []string
			if err != nil {
				got = problemsOf(t, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}
