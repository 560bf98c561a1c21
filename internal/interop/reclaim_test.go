package interop

import (
	"os"
	"strings"
	"testing"
)

// TestReclaimClientsThatNeverDelete: one TypeScript SDK client run after
// another, each of which opens a session, calls a tool and exits without
// DELETE (as the MCP Inspector CLI does), against a launcher server capped
// at two processes: every run gets its answer, because a session with
// nothing in flight and no open stream is reclaimable after
// reclaim_unattended (default 2s) rather than reclaim_idle (60s). Each
// later run waits for that within queue_timeout instead of getting 429.
func TestReclaimClientsThatNeverDelete(t *testing.T) {
	ne := requireNode(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	yaml := `listen: 127.0.0.1:0
servers:
  demo:
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
    max_processes: 2
    queue_timeout: 10s
`
	f := startFixture(t, ne, yaml, map[string]string{"TESTBIN": self}, "")
	for i := range 5 {
		out := runTS(t, f, "streamable", "demo", "demo")
		if got := field[[]string](t, out, "echo"); len(got) != 1 || !strings.Contains(got[0], "hello demo from ts") {
			t.Fatalf("run %d: echo %q", i+1, got)
		}
	}
	logs := f.logs.String()
	if n := strings.Count(logs, "reclaiming an idle session to make room for a new one"); n != 3 {
		t.Errorf("%d reclaims, want 3 (runs 3 to 5, each for one left-behind session)", n)
	}
	if strings.Contains(logs, `"http_method":"DELETE"`) {
		t.Error("a client sent DELETE; this test is about clients that do not")
	}
	if strings.Contains(logs, `"status":429`) {
		t.Error("a run got 429")
	}
}
