package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A server that prints its token on stderr does not get it logged: the
// values of its env are redacted from its stderr lines.
func TestStderrRedactsEnvValues(t *testing.T) {
	const secret = "ghp_s3cr3t-value-0123456789"
	h := newHarness(t, baseYAML+`  t:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1", MCPGW_TESTSERVER_PRINT_ENV: GITHUB_TOKEN, GITHUB_TOKEN: "`+secret+`"}
`)
	cs := h.connect("t", nil)
	callText(t, cs, "echo", map[string]any{"text": "x"})
	eventually(t, 5*time.Second, "the server's stderr line with its token", func() bool {
		for _, l := range h.logs.find("backend stderr", nil) {
			// Both are env values: the name the knob gives too.
			if fmt.Sprint(l["line"]) == "testserver: [redacted]=[redacted]" {
				return true
			}
		}
		return false
	})
	if strings.Contains(h.logs.String(), secret) || strings.Contains(h.logs.String(), "s3cr3t") {
		t.Errorf("the token reached the log:\n%s", h.logs.String())
	}
}

// A session ends with one "session ended" line saying why and how long it
// lived; a DELETE is the client's decision, logged at info, and the
// process it stops is not logged as an error.
func TestSessionEndedLine(t *testing.T) {
	h := newHarness(t, oneServer(""))
	cs := h.connect("t", nil)
	sid := cs.ID()
	pid := whoami(t, cs)["pid"]
	if err := cs.Close(); err != nil { // DELETE
		t.Fatal(err)
	}
	var ended []map[string]any
	eventually(t, 5*time.Second, "the session ended line", func() bool {
		ended = h.logs.find("session ended", map[string]any{"session_id": sid})
		return len(ended) > 0 && len(h.logs.find("backend ended", map[string]any{"process": pid})) > 0
	})
	if len(ended) != 1 {
		t.Fatalf("%d session ended lines, want 1: %v", len(ended), ended)
	}
	e := ended[0]
	if e["level"] != "INFO" || e["reason"] != "client ended the session (DELETE)" || e["error"] != "" || e["tool"] != "t" {
		t.Errorf("session ended = %v, want INFO with the DELETE as its reason and no error", e)
	}
	if _, ok := e["duration_ms"].(float64); !ok {
		t.Errorf("session ended without duration_ms: %v", e)
	}
	for _, b := range h.logs.find("backend ended", map[string]any{"process": pid}) {
		if b["level"] != "INFO" || b["error"] != "" || b["reason"] != "client ended the session (DELETE)" {
			t.Errorf("backend ended after a DELETE = %v, want INFO with a reason and an empty error", b)
		}
	}
	for _, l := range h.logs.Lines() {
		if l["level"] == "WARN" || l["level"] == "ERROR" {
			t.Errorf("a normal session logged %v", l)
		}
	}
}

// A session whose process crashes ends with a warning that says so.
func TestSessionEndedByACrash(t *testing.T) {
	h := newHarness(t, oneServer(""))
	sid := h.rawSession("t", "2025-06-18")
	h.post("t", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"crash","arguments":{"code":3}}}`,
		map[string]string{"Mcp-Session-Id": sid})
	var ended []map[string]any
	eventually(t, 5*time.Second, "the session ended line", func() bool {
		ended = h.logs.find("session ended", map[string]any{"session_id": sid})
		return len(ended) > 0
	})
	if e := ended[0]; e["level"] != "WARN" || !strings.Contains(fmt.Sprint(e["error"]), "exit status 3") {
		t.Errorf("session ended by a crash = %v, want WARN naming the exit", e)
	}
}

// Probes polling /healthz and /readyz are logged at debug, whatever the
// answer; a change of readiness is one line.
func TestProbePollsAreNotErrors(t *testing.T) {
	h := newHarness(t, baseYAML+`  t:
    command: ["/nonexistent/mcp-server"]
`)
	for range 3 {
		if r := h.do(mustReq(t, http.MethodGet, h.base+"/readyz")); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("readyz: %d, want 503", r.Status)
		}
		h.do(mustReq(t, http.MethodGet, h.base+"/healthz"))
	}
	if got := h.logs.find("request", nil); len(got) != 0 {
		t.Errorf("probe polls logged at info or above: %v", got)
	}
	changes := h.logs.find("readiness changed", nil)
	if len(changes) != 1 || changes[0]["level"] != "WARN" || !strings.Contains(fmt.Sprint(changes[0]["problems"]), "server t: command \"/nonexistent/mcp-server\"") {
		t.Errorf("readiness changes = %v, want one WARN naming the server's problem", changes)
	}
}
