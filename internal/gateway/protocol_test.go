package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStatusCodes drives every pre-stream status of docs/design.md's list that
// this version produces (401 arrives with authentication; 429, 502, 503
// and 504 have their own tests in failure_test.go).
func TestStatusCodes(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nauth: {mode: none}\nallowed_hosts: [mcp.example.com]\nallowed_origins: [https://claude.ai]\nlimits: {max_body_bytes: 2KiB}\nservers:\n"+serverYAML("t", ""))
	sid := h.rawSession("t", "2025-06-18")
	sid0326 := h.rawSession("t", "2025-03-26")
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	s := func(extra map[string]string) map[string]string {
		m := map[string]string{"Mcp-Session-Id": sid}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    map[string]string
		want   int
		code   int // JSON-RPC error code, 0 = do not check
	}{
		{"ok", "POST", "/mcp/t", list, s(nil), 200, 0},
		{"notification is 202", "POST", "/mcp/t", `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`, s(nil), 202, 0},
		{"response is 202", "POST", "/mcp/t", `{"jsonrpc":"2.0","id":99,"result":{}}`, s(nil), 202, 0},
		{"malformed JSON", "POST", "/mcp/t", `{"jsonrpc":`, s(nil), 400, -32700},
		{"not JSON-RPC", "POST", "/mcp/t", `{"jsonrpc":"1.0","id":1,"method":"x"}`, s(nil), 400, -32600},
		{"empty batch", "POST", "/mcp/t", `[]`, s(nil), 400, -32600},
		{"no session", "POST", "/mcp/t", list, nil, 400, -32600},
		{"batched initialize", "POST", "/mcp/t", "[" + fmt.Sprintf(initBody, "2025-03-26") + "]", nil, 400, -32600},
		{"re-initialize", "POST", "/mcp/t", fmt.Sprintf(initBody, "2025-06-18"), s(nil), 400, -32600},
		{"batch on 2025-06-18", "POST", "/mcp/t", "[" + list + "]", s(nil), 400, -32600},
		{"bad version header", "POST", "/mcp/t", list, s(map[string]string{"Mcp-Protocol-Version": "1999-01-01"}), 400, -32600},
		{"other supported version header", "POST", "/mcp/t", list, s(map[string]string{"Mcp-Protocol-Version": "2025-03-26"}), 200, 0},
		{"newer supported version header", "POST", "/mcp/t", list, s(map[string]string{"Mcp-Protocol-Version": "2025-11-25"}), 200, 0},
		{"modern version header on a session", "POST", "/mcp/t", list, s(map[string]string{"Mcp-Protocol-Version": "2026-07-28"}), 400, -32600},
		{"malformed version header", "POST", "/mcp/t", list, s(map[string]string{"Mcp-Protocol-Version": "latest"}), 400, -32600},
		{"GET with an unsupported version header", "GET", "/mcp/t", "", s(map[string]string{"Accept": "text/event-stream", "Mcp-Protocol-Version": "2024-01-01"}), 400, -32600},
		{"bad server name", "POST", "/mcp/BAD", list, nil, 400, -32600},
		{"dot segment", "POST", "/mcp/../healthz", list, nil, 400, 0},
		{"encoded slash", "POST", "/mcp/t%2Fx", list, nil, 400, 0},
		{"foreign host", "POST", "/mcp/t", list, s(map[string]string{"Host": "evil.example"}), 403, -32600},
		{"allowed host", "POST", "/mcp/t", list, s(map[string]string{"Host": "mcp.example.com"}), 200, 0},
		{"foreign origin", "POST", "/mcp/t", list, s(map[string]string{"Origin": "https://evil.example"}), 403, -32600},
		{"null origin", "POST", "/mcp/t", list, s(map[string]string{"Origin": "null"}), 403, -32600},
		{"allowed origin", "POST", "/mcp/t", list, s(map[string]string{"Origin": "https://claude.ai"}), 200, 0},
		{"loopback origin", "POST", "/mcp/t", list, s(map[string]string{"Origin": "http://localhost:6274"}), 200, 0},
		{"unknown server", "POST", "/mcp/nope", list, nil, 404, -32600},
		{"unknown session", "POST", "/mcp/t", list, map[string]string{"Mcp-Session-Id": "no-such-session"}, 404, -32600},
		{"unknown path", "GET", "/other", "", nil, 404, 0},
		{"PUT", "PUT", "/mcp/t", list, s(nil), 405, -32600},
		{"no Accept", "POST", "/mcp/t", list, s(map[string]string{"Accept": "application/json"}), 406, -32600},
		{"GET without SSE accept", "GET", "/mcp/t", "", s(map[string]string{"Accept": "application/json"}), 406, -32600},
		{"wrong content type", "POST", "/mcp/t", list, s(map[string]string{"Content-Type": "text/plain"}), 415, -32600},
		{"too large", "POST", "/mcp/t", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("x", 3000) + `"}}}`, s(nil), 413, -32600},
		{"GET without session", "GET", "/mcp/t", "", map[string]string{"Accept": "text/event-stream"}, 405, -32600},
		{"DELETE without session", "DELETE", "/mcp/t", "", nil, 405, -32600},
		{"DELETE unknown session", "DELETE", "/mcp/t", "", map[string]string{"Mcp-Session-Id": "nope"}, 404, 0},
		{"healthz", "GET", "/healthz", "", nil, 200, 0},
		{"readyz", "GET", "/readyz", "", nil, 200, 0},
		{"healthz POST", "POST", "/healthz", "", nil, 405, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, h.base+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.path == "/mcp/../healthz" {
				req.URL.Opaque = "//" + req.URL.Host + c.path // keep the dot segment on the wire
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range c.hdr {
				if k == "Host" {
					req.Host = v
					continue
				}
				req.Header.Set(k, v)
			}
			r := h.do(req)
			if r.Status != c.want {
				t.Fatalf("status %d, want %d (body %.300s)", r.Status, c.want, r.Body)
			}
			if c.code != 0 && r.errorCode() != c.code {
				t.Errorf("error code %d, want %d (body %.300s)", r.errorCode(), c.code, r.Body)
			}
			if c.want == 405 && r.Header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
			if r.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id echoed")
			}
		})
	}

	// 2025-03-26 sessions accept batches, answered as a JSON array.
	r := h.post("t", `[{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"echo","arguments":{"text":"1"}}},{"jsonrpc":"2.0","method":"notifications/roots/list_changed"},{"jsonrpc":"2.0","id":"b","method":"ping"}]`,
		map[string]string{"Mcp-Session-Id": sid0326})
	var arr []map[string]any
	if r.Status != 200 || json.Unmarshal(r.Body, &arr) != nil || len(arr) != 2 {
		t.Errorf("batch on 2025-03-26: %d %s, want a JSON array of 2 responses", r.Status, r.Body)
	}

	// An unknown-session 404 carries a null id, so SDK clients treat it as a
	// lost session rather than a failed call.
	r = h.post("t", list, map[string]string{"Mcp-Session-Id": "gone"})
	if !strings.Contains(string(r.Body), `"id":null`) {
		t.Errorf("404 body %s: want a null id", r.Body)
	}
}

func TestRequestIDEchoed(t *testing.T) {
	h := newHarness(t, oneServer(""))
	req := mustReq(t, http.MethodGet, h.base+"/healthz")
	req.Header.Set("X-Request-Id", "abc-123")
	if r := h.do(req); r.Header.Get("X-Request-Id") != "abc-123" {
		t.Errorf("X-Request-Id = %q, want abc-123", r.Header.Get("X-Request-Id"))
	}
	req.Header.Set("X-Request-Id", "bad id <script>")
	if r := h.do(req); r.Header.Get("X-Request-Id") == "bad id <script>" || r.Header.Get("X-Request-Id") == "" {
		t.Errorf("invalid X-Request-Id echoed or none generated: %q", r.Header.Get("X-Request-Id"))
	}
}

func TestLogsCarryFixedFields(t *testing.T) {
	h := newHarness(t, oneServer(""))
	cs := h.connect("t", nil)
	callText(t, cs, "echo", map[string]any{"text": "x"})
	reqs := h.logs.find("request", map[string]any{"method": "tools/call"})
	if len(reqs) == 0 {
		t.Fatal("no request log line for tools/call")
	}
	for _, l := range reqs {
		for _, k := range []string{"tool", "runtime", "request_id", "duration", "error", "session_id", "method", "client"} {
			if _, ok := l[k]; !ok {
				t.Errorf("log line lacks %q: %v", k, l)
			}
		}
		// client is the identity (anonymous without auth); the MCP
		// client software moved to client_info.
		if l["tool"] != "t" || l["runtime"] != "native" || l["client"] != "anonymous" || l["client_info"] != "gateway-test/1" {
			t.Errorf("log line fields: %v", l)
		}
		if _, ok := l["duration"].(float64); !ok {
			t.Errorf("duration is not a number: %v", l["duration"])
		}
	}
	// Error lines carry the error text.
	h.post("t", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, map[string]string{"Mcp-Session-Id": "nope"})
	bad := h.logs.find("request", map[string]any{"status": 404})
	if len(bad) == 0 || bad[0]["error"] == "" {
		t.Errorf("404 log line without error: %v", bad)
	}
}

// Secrets given to one server's env never appear in the logs, and the
// child sees only the minimal base plus its own env.
func TestChildEnvironmentIsExplicit(t *testing.T) {
	t.Setenv("MCPGW_TEST_GATEWAY_SECRET", "gateway-only-secret")
	h := newHarness(t, baseYAML+`  t:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1", API_TOKEN: "${MCPGW_TEST_GATEWAY_SECRET}"}
`)
	cs := h.connect("t", nil)
	env := whoami(t, cs)["env"].(map[string]any)
	if env["API_TOKEN"] != "gateway-only-secret" {
		t.Errorf("configured env not passed: %v", env)
	}
	for k := range env {
		switch k {
		case "PATH", "HOME", "LANG", "TZ", "MCPGW_TESTSERVER", "API_TOKEN",
			// the sandbox's private temporary directory and cache:
			"TMPDIR", "XDG_CACHE_HOME", "npm_config_cache", "UV_CACHE_DIR", "PIP_CACHE_DIR":
		default:
			t.Errorf("child inherited %s", k)
		}
	}
	if _, ok := env["MCPGW_TEST_GATEWAY_SECRET"]; ok {
		t.Error("gateway environment leaked to the child")
	}
	for _, l := range h.logs.Lines() {
		b, _ := json.Marshal(l)
		if strings.Contains(string(b), "gateway-only-secret") {
			t.Fatalf("secret in log line: %s", b)
		}
	}
}

func TestDrainingRefusesNewWorkAndFinishesInFlight(t *testing.T) {
	h := newHarness(t, oneServer(""))
	sid := h.rawSession("t", "2025-06-18")
	inflight := make(chan *rawResponse, 1)
	go func() {
		inflight <- h.post("t", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":800}}}`,
			map[string]string{"Mcp-Session-Id": sid})
	}()
	eventually(t, 5*time.Second, "the request to be in flight", func() bool { return h.g.mgr.Stats("t").InFlight == 1 })
	shut := make(chan struct{})
	go func() { defer close(shut); h.shutdown(10 * time.Second) }()
	eventually(t, 2*time.Second, "draining", func() bool { return h.g.draining.Load() })
	// The in-flight call completes.
	r := <-inflight
	if r.Status != 200 || r.errorCode() != 0 {
		t.Errorf("in-flight request during drain: %d %s", r.Status, r.Body)
	}
	<-shut
	if n := h.g.mgr.Stats("").Processes; n != 0 {
		t.Errorf("%d processes after shutdown", n)
	}
}

func TestDrainingAnswers503(t *testing.T) {
	h := newHarness(t, oneServer(""))
	sid := h.rawSession("t", "2025-06-18")
	h.g.draining.Store(true)
	h.g.mgr.Drain()
	r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if r.Status != http.StatusServiceUnavailable || r.errorCode() != -32004 || r.Header.Get("Retry-After") == "" {
		t.Errorf("initialize while draining: %d %s", r.Status, r.Body)
	}
	r = h.post("t", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, map[string]string{"Mcp-Session-Id": sid})
	if r.Status != http.StatusServiceUnavailable {
		t.Errorf("request while draining: %d %s", r.Status, r.Body)
	}
	rr := h.do(mustReq(t, http.MethodGet, h.base+"/readyz"))
	if rr.Status != http.StatusServiceUnavailable || !strings.Contains(string(rr.Body), "draining") {
		t.Errorf("readyz while draining: %d %s", rr.Status, rr.Body)
	}
}

// Shutdown leaves no child process behind (checked in the OS process
// table); TestMain's goleak check covers goroutines.
func TestShutdownLeavesNoProcess(t *testing.T) {
	h := newHarness(t, oneServer("    max_processes: 8\n    timeouts: {kill_grace: 300ms}\n")+`  stubborn:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1", MCPGW_TESTSERVER_IGNORE_TERM: "1"}
    timeouts: {kill_grace: 300ms}
`)
	var pids []int
	for i := 0; i < 3; i++ {
		cs := h.connect("t", nil)
		pids = append(pids, int(whoami(t, cs)["pid"].(float64)))
	}
	cs := h.connect("stubborn", nil)
	pids = append(pids, int(whoami(t, cs)["pid"].(float64)))
	pids = append(pids, spawnChild(t, cs))
	// One call in flight during shutdown.
	go cs.CallTool(context.Background(), &mcpCallSleep)
	h.shutdown(5 * time.Second)
	for _, p := range pids {
		if processAlive(p) {
			t.Errorf("process %d still alive after shutdown", p)
		}
	}
	if kids := childrenOf(osGetpid()); len(kids) != 0 {
		t.Errorf("gateway still has child processes: %v", kids)
	}
}

// When limits.shutdown_timeout runs out, a request still in flight gets
// exactly one JSON-RPC error on its open stream, and the stream ends.
func TestShutdownTimeoutAnswersPendingOnce(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nlimits: {sse_keepalive: 100ms}\nservers:\n"+serverYAML("t", "    timeouts: {kill_grace: 200ms}\n"))
	sid := h.rawSession("t", "2025-06-18")
	req, _ := http.NewRequest(http.MethodPost, h.url("t"), strings.NewReader(
		`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":30000}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("want an SSE stream after the first keep-alive, got %q", resp.Header.Get("Content-Type"))
	}
	h.shutdown(300 * time.Millisecond)
	body, _ := io.ReadAll(resp.Body)
	if n := strings.Count(string(body), `"id":42`); n != 1 {
		t.Fatalf("stream carried %d messages for request 42, want exactly 1:\n%s", n, body)
	}
	if !strings.Contains(string(body), "-32002") {
		t.Errorf("want a -32002 error on the stream:\n%s", body)
	}
}
