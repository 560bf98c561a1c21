package main

import (
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/internal/pins"
)

// TestToolsCommand: "mcpgw tools list" shows what is pinned and what
// changed, "mcpgw tools approve" approves a change once, and mistakes are
// usage errors that say what to write.
func TestToolsCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir, state := t.TempDir(), t.TempDir()
	st, err := pins.Open(t.Context(), state, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Record(pins.Pin{Server: "gh", Tool: "get_issue", Approved: "aaaaaaaaaaaaaaaa11", ApprovedDef: []byte("{}"), Seen: "aaaaaaaaaaaaaaaa11", SeenDef: []byte("{}")})
	st.Record(pins.Pin{Server: "gh", Tool: "create_issue", Approved: "bbbbbbbbbbbbbbbb22", ApprovedDef: []byte("{}"), Seen: "bbbbbbbbbbbbbbbb22", SeenDef: []byte("{}")})
	st.Record(pins.Pin{Server: "gh", Tool: "create_issue", Seen: "cccccccccccccccc33", SeenDef: []byte(`{"x":1}`)})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runBinary(t, dir, nil, "tools", "list", "--state-dir", state)
	if code != 0 || errOut != "" {
		t.Fatalf("tools list: exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SERVER") ||
		!strings.Contains(lines[1], "create_issue") || !strings.Contains(lines[1], "changed (approve with: mcpgw tools approve gh create_issue)") ||
		!strings.Contains(lines[1], "bbbbbbbbbbbbbbbb") || !strings.Contains(lines[1], "cccccccccccccccc") ||
		!strings.Contains(lines[2], "get_issue") || !strings.Contains(lines[2], "pinned") {
		t.Fatalf("tools list:\n%s", out)
	}
	// A gateway declares how it pins gh: the change is held or only logged.
	for mode, want := range map[string]string{
		"enforce": "pending: hidden until approved (approve with: mcpgw tools approve gh create_issue)",
		"warn":    "changed: served, with a warning (approve with: mcpgw tools approve gh create_issue)",
	} {
		st, err := pins.Open(t.Context(), state, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetModes(t.Context(), map[string]string{"gh": mode}); err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runBinary(t, dir, nil, "tools", "list", "--state-dir", state)
		if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || errOut != "" || len(lines) != 3 || !strings.Contains(lines[1], want) ||
			!strings.Contains(lines[2], "pinned") {
			t.Fatalf("tools list with gh at pin_tools: %s: exit %d, stderr %q, stdout:\n%s", mode, code, errOut, out)
		}
	}

	for _, tc := range []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"approve", "--state-dir", state, "gh", "create_issue"}, 0, "approved create_issue of server gh; a running gateway serves it within a second\n", ""},
		{[]string{"approve", "--state-dir", state, "gh", "create_issue"}, 0, "create_issue of server gh is already approved: its definition has not changed\n", ""},
		{[]string{"approve", "--state-dir", state, "gh", "nosuch"}, 1, "", `server "gh" has no pinned tool "nosuch" in ` + state + "; mcpgw tools list shows the pinned tools"},
		{[]string{"approve", "--state-dir", state, "gh"}, 2, "", "tools approve needs SERVER TOOL, e.g. mcpgw tools approve github get_issue (see mcpgw tools list)"},
		{[]string{"pin", "--state-dir", state}, 2, "", `tools: unknown subcommand "pin"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runBinary(t, dir, nil, append([]string{"tools"}, tc.args...)...)
			if code != tc.code || out != tc.out || !strings.Contains(errOut, tc.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, stderr containing %q", code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}
	_, out, _ = runBinary(t, dir, nil, "tools", "list", "--state-dir", state)
	if strings.Contains(out, "changed") {
		t.Errorf("still changed after approval:\n%s", out)
	}
}
