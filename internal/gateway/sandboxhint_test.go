package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/sandbox"
)

// A sandboxed server that exits during its startup or a request: the
// client's error and the log say that it ran under Landlock, what it was
// allowed, and which keys widen that, so that a denial does not pass for
// something else. An unconfined server's error says nothing of a sandbox.
func TestSandboxedExitSaysLandlock(t *testing.T) {
	if err := sandbox.Check(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	flag := filepath.Join(t.TempDir(), "crash")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, baseYAML+`  boot:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1", MCPGW_TESTSERVER_CRASH_IF_EXISTS: "`+flag+`"}
    read_paths: ["`+filepath.Dir(flag)+`"]
  mid:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1"}
  free:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1"}
    sandbox: none
`)
	wantHint := func(what, msg string, readPath string) {
		t.Helper()
		for _, want := range []string{"it ran under the Landlock sandbox", "sandbox: landlock", ".read_paths", ".workspaces", ".sandbox: none"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: %q does not say %q", what, msg, want)
			}
		}
		if readPath != "" && !strings.Contains(msg, readPath) {
			t.Errorf("%s: %q does not list its read path %s", what, msg, readPath)
		}
	}

	// During startup: the process exits before answering initialize.
	r := h.post("boot", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if r.errorCode() != -32002 {
		t.Fatalf("start of a crashing server: %d %s, want -32002", r.Status, r.Body)
	}
	wantHint("the client's error at startup", string(r.Body), filepath.Dir(flag))
	t.Logf("startup error: %s", r.Body)

	// During a request.
	sid := h.rawSession("mid", "2025-06-18")
	r = h.post("mid", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crash","arguments":{"code":3}}}`,
		map[string]string{"Mcp-Session-Id": sid})
	if !strings.Contains(string(r.Body), "-32002") {
		t.Fatalf("a request that crashes its server: %d %s, want -32002", r.Status, r.Body)
	}
	wantHint("the client's error during a request", string(r.Body), "")
	if !strings.Contains(string(r.Body), "servers.mid.read_paths") {
		t.Errorf("the error does not name the server's keys: %s", r.Body)
	}

	eventually(t, 5*time.Second, "the backend ended lines", func() bool { return len(h.logs.find("backend ended", nil)) >= 2 })
	for _, l := range h.logs.find("backend ended", nil) {
		wantHint("the log", fmt.Sprint(l["error"]), "")
	}

	// Unconfined: no word of a sandbox.
	sid = h.rawSession("free", "2025-06-18")
	r = h.post("free", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crash","arguments":{"code":3}}}`,
		map[string]string{"Mcp-Session-Id": sid})
	if !strings.Contains(string(r.Body), "-32002") || strings.Contains(string(r.Body), "Landlock") {
		t.Errorf("an unconfined server's crash: %s, want -32002 without a sandbox hint", r.Body)
	}
}
