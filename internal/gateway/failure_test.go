package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestCrashMidCallFailsFastThen404(t *testing.T) {
	h := newHarness(t, oneServer(""))
	sid := h.rawSession("t", "2025-06-18")
	hdr := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-06-18"}
	start := time.Now()
	r := h.post("t", `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"crash","arguments":{"code":3}}}`, hdr)
	elapsed := time.Since(start)
	if elapsed > time.Second {
		t.Errorf("crash answered after %s, want < 1s", elapsed)
	}
	if r.Status != http.StatusBadGateway || r.errorCode() != -32002 {
		t.Errorf("crash: %d %s, want 502 with -32002", r.Status, r.Body)
	}
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	_ = json.Unmarshal(r.Body, &m)
	if string(m.ID) != "5" {
		t.Errorf("error id = %s, want the client's 5", m.ID)
	}
	r = h.post("t", `{"jsonrpc":"2.0","id":6,"method":"tools/list"}`, hdr)
	if r.Status != http.StatusNotFound {
		t.Errorf("after crash: %d %s, want 404", r.Status, r.Body)
	}
}

// The Go SDK client sees the crash as an error on the call and the session
// as missing afterwards, so the application can re-initialise.
func TestCrashWithSDKClient(t *testing.T) {
	h := newHarness(t, oneServer(""))
	cs := h.connect("t", nil)
	start := time.Now()
	_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{"code": 1}})
	if err == nil {
		t.Fatal("crash call succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("error after %s, want < 1s", d)
	}
	_, err = cs.ListTools(context.Background(), nil)
	if !errors.Is(err, mcp.ErrSessionMissing) {
		t.Errorf("after crash: %v, want ErrSessionMissing", err)
	}
	// A new session works.
	cs2 := h.connect("t", nil)
	if got := callText(t, cs2, "echo", map[string]any{"text": "again"}); got != "again" {
		t.Errorf("echo = %q", got)
	}
}

func TestGarbageOnStdoutEndsSession(t *testing.T) {
	h := newHarness(t, oneServer("    max_concurrent: 4\n"))
	sid := h.rawSession("t", "2025-06-18")
	hdr := map[string]string{"Mcp-Session-Id": sid}
	// A slow request is pending when the garbage arrives: it must fail too.
	slow := make(chan *rawResponse, 1)
	go func() {
		slow <- h.post("t", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":20000}}}`, hdr)
	}()
	eventually(t, 5*time.Second, "sleep in flight", func() bool { return h.g.mgr.Stats("t").InFlight == 1 })
	start := time.Now()
	r := h.post("t", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"garbage"}}`, hdr)
	if r.Status != http.StatusBadGateway || r.errorCode() != -32003 {
		t.Errorf("garbage: %d %s, want 502 with -32003", r.Status, r.Body)
	}
	select {
	case s := <-slow:
		if s.errorCode() != -32003 {
			t.Errorf("pending sleep: %d %s, want -32003", s.Status, s.Body)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("pending request not failed after the protocol error")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("failure took %s", d)
	}
	if r := h.post("t", `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, hdr); r.Status != http.StatusNotFound {
		t.Errorf("after garbage: %d, want 404", r.Status)
	}
	if len(h.logs.find("backend wrote a line that is not JSON-RPC", nil)) == 0 {
		t.Error("the offending line was not logged")
	}
}

func TestOversizedLineIsProtocolError(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nlimits: {max_message_bytes: 64KiB}\nservers:\n"+serverYAML("t", ""))
	sid := h.rawSession("t", "2025-06-18")
	r := h.post("t", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"huge","arguments":{"bytes":200000}}}`,
		map[string]string{"Mcp-Session-Id": sid})
	if r.Status != http.StatusBadGateway || r.errorCode() != -32003 {
		t.Errorf("huge: %d %.200s, want 502 with -32003", r.Status, r.Body)
	}
	// Under the bound it works.
	sid = h.rawSession("t", "2025-06-18")
	r = h.post("t", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"huge","arguments":{"bytes":30000}}}`,
		map[string]string{"Mcp-Session-Id": sid})
	if r.Status != http.StatusOK || r.errorCode() != 0 {
		t.Errorf("30000 bytes: %d %.200s", r.Status, r.Body)
	}
}

func TestRequestTimeout(t *testing.T) {
	h := newHarness(t, oneServer("    timeouts: {request: 300ms}\n"))
	sid := h.rawSession("t", "2025-06-18")
	start := time.Now()
	r := h.post("t", `{"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"sleep","arguments":{"ms":10000}}}`,
		map[string]string{"Mcp-Session-Id": sid})
	if r.Status != http.StatusGatewayTimeout || r.errorCode() != -32001 {
		t.Fatalf("timeout: %d %s, want 504 with -32001", r.Status, r.Body)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Errorf("timed out after %s, want about 300ms", d)
	}
	// The backend was told to cancel: the test server reports it on stderr.
	eventually(t, 3*time.Second, "cancellation reaching the backend", func() bool {
		for _, l := range h.logs.find("backend stderr", nil) {
			if strings.Contains(fmt.Sprint(l["line"]), "cancelled") {
				return true
			}
		}
		return false
	})
	// The session survives a timeout.
	r = h.post("t", `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`,
		map[string]string{"Mcp-Session-Id": sid})
	if r.Status != http.StatusOK || r.errorCode() != 0 {
		t.Errorf("after timeout: %d %s", r.Status, r.Body)
	}
}

// The 504 of a server that never answers initialize arrives at the
// startup timeout, before the stop sequence of a process that ignores
// SIGTERM (two kill graces) has run.
func TestStartupTimeout(t *testing.T) {
	for _, mode := range []string{"launcher", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, baseYAML+`  t:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1", MCPGW_TESTSERVER_NO_INIT: "1", MCPGW_TESTSERVER_IGNORE_TERM: "1"}
    mode: `+mode+`
    timeouts: {startup: 300ms, kill_grace: 1s}
`)
			start := time.Now()
			r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), nil)
			d := time.Since(start)
			if r.Status != http.StatusGatewayTimeout || r.errorCode() != -32001 {
				t.Errorf("startup timeout: %d %s, want 504 with -32001", r.Status, r.Body)
			}
			if d < 300*time.Millisecond || d > 1500*time.Millisecond {
				t.Errorf("504 after %s, want it at the startup timeout (300ms), not after the kill graces (2s)", d)
			}
			eventually(t, 5*time.Second, "the process slot to be released", func() bool { return h.g.mgr.Stats("t").Processes == 0 })
		})
	}
}

func TestUnstartableServerIs503(t *testing.T) {
	h := newHarness(t, baseYAML+`  t:
    command: ["/nonexistent/mcp-server"]
`)
	r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if r.Status != http.StatusServiceUnavailable || r.errorCode() != -32004 || r.Header.Get("Retry-After") == "" {
		t.Errorf("unstartable: %d %s (Retry-After %q), want 503 -32004 with Retry-After", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	rr := h.do(mustReq(t, http.MethodGet, h.base+"/readyz"))
	if rr.Status != http.StatusServiceUnavailable || !strings.Contains(string(rr.Body), "nonexistent") {
		t.Errorf("readyz: %d %s, want 503 naming the command", rr.Status, rr.Body)
	}
}

func mustReq(t testing.TB, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestSIGTERMIgnoringChildIsKilled(t *testing.T) {
	h := newHarness(t, baseYAML+`  t:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1", MCPGW_TESTSERVER_IGNORE_TERM: "1"}
    timeouts: {kill_grace: 300ms}
`)
	cs := h.connect("t", nil)
	pid := int(whoami(t, cs)["pid"].(float64))
	start := time.Now()
	_ = cs.Close() // DELETE
	eventually(t, 5*time.Second, "the process to die", func() bool { return !processAlive(pid) })
	d := time.Since(start)
	// close stdin → 300ms → SIGTERM (ignored) → 300ms → SIGKILL
	if d < 600*time.Millisecond {
		t.Errorf("process gone after %s; it should have survived stdin close and SIGTERM", d)
	}
	eventually(t, 2*time.Second, "the backend-ended log", func() bool {
		for _, l := range h.logs.find("backend ended", map[string]any{"process": pid}) {
			if strings.Contains(fmt.Sprint(l["exit"]), "killed") {
				return true
			}
		}
		return false
	})
}

func TestGrandchildrenAreStopped(t *testing.T) {
	h := newHarness(t, oneServer("    timeouts: {kill_grace: 300ms}\n"))
	cs := h.connect("t", nil)
	pid := spawnChild(t, cs)
	if !processAlive(pid) {
		t.Fatal("grandchild not running")
	}
	_ = cs.Close()
	eventually(t, 5*time.Second, "the grandchild to die with its group", func() bool { return !processAlive(pid) })
}

// TestIdleTimeoutReaps: the real thing end to end. The idle bound leaves
// room for the whoami call after initialize on a loaded machine (at 300 ms
// it could reap the session first); the rule's timing is tested exactly in
// internal/session's synctest tests.
func TestIdleTimeoutReaps(t *testing.T) {
	h := newHarness(t, oneServer("    timeouts: {idle: 1500ms, kill_grace: 200ms}\n"))
	cs := h.connect("t", nil)
	pid := int(whoami(t, cs)["pid"].(float64))
	eventually(t, 5*time.Second, "the idle process to be stopped", func() bool { return !processAlive(pid) })
	_, err := cs.ListTools(context.Background(), nil)
	if !errors.Is(err, mcp.ErrSessionMissing) {
		t.Errorf("after idle reap: %v, want ErrSessionMissing", err)
	}
	if len(h.logs.find("session idle timeout", map[string]any{"tool": "t"})) == 0 {
		t.Error("idle reap not logged")
	}
}

func TestMaxLifetimeDrainsThenStops(t *testing.T) {
	h := newHarness(t, oneServer("    timeouts: {max_lifetime: 1s, kill_grace: 200ms}\n"))
	sid := h.rawSession("t", "2025-06-18")
	hdr := map[string]string{"Mcp-Session-Id": sid}
	// A request running across the lifetime bound completes normally.
	r := h.post("t", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":1500}}}`, hdr)
	if r.Status != http.StatusOK || r.errorCode() != 0 {
		t.Fatalf("request across lifetime: %d %s", r.Status, r.Body)
	}
	eventually(t, 5*time.Second, "the expired session to be stopped", func() bool { return h.g.mgr.Stats("t").Processes == 0 })
	if r := h.post("t", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, hdr); r.Status != http.StatusNotFound {
		t.Errorf("after lifetime: %d, want 404", r.Status)
	}
}

func TestStderrFloodIsBounded(t *testing.T) {
	h := newHarness(t, oneServer(""))
	cs := h.connect("t", nil)
	start := time.Now()
	res := callText(t, cs, "flood_stderr", map[string]any{"lines": 20000, "bytes_per_line": 10000})
	if res == "" {
		t.Fatal("flood_stderr returned nothing")
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("flood took %s", d)
	}
	// The gateway stays responsive.
	if got := callText(t, cs, "echo", map[string]any{"text": "still here"}); got != "still here" {
		t.Errorf("echo = %q", got)
	}
	lines := h.logs.find("backend stderr", nil)
	if len(lines) == 0 || len(lines) > 5000 {
		t.Errorf("logged %d stderr lines for 20000 written; want a rate-limited, non-zero number", len(lines))
	}
	for _, l := range lines {
		if s := fmt.Sprint(l["line"]); len(s) > 4096 {
			t.Fatalf("stderr line of %d bytes logged; bound is 4096", len(s))
		}
		if l["tool"] != "t" || l["stream"] != "stderr" {
			t.Fatalf("stderr line without tool/stream: %v", l)
		}
	}
	eventually(t, 5*time.Second, "a rate-limit report", func() bool {
		return len(h.logs.find("backend stderr was rate limited", nil)) > 0
	})
}

func TestConcurrencyLimitUnderBurst(t *testing.T) {
	h := newHarness(t, oneServer("    max_concurrent: 2\n"))
	sid := h.rawSession("t", "2025-06-18")
	const n = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.post("t", fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":500}}}`, i+10),
				map[string]string{"Mcp-Session-Id": sid})
			mu.Lock()
			statuses[r.Status]++
			mu.Unlock()
			if r.Status == http.StatusTooManyRequests {
				if r.Header.Get("Retry-After") == "" || r.errorCode() != -32029 {
					t.Errorf("429 without Retry-After or -32029: %s", r.Body)
				}
			}
		}()
	}
	wg.Wait()
	if statuses[http.StatusOK] < 1 || statuses[http.StatusOK] > 2 || statuses[http.StatusTooManyRequests] < n-2 {
		t.Errorf("statuses %v: want at most 2 OK and the rest 429", statuses)
	}
}

func TestQueueTimeoutWaitsForSlot(t *testing.T) {
	h := newHarness(t, oneServer("    max_concurrent: 1\n    queue_timeout: 5s\n"))
	sid := h.rawSession("t", "2025-06-18")
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := h.post("t", fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":200}}}`, i+1),
				map[string]string{"Mcp-Session-Id": sid})
			codes[i] = r.Status
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("request %d: %d, want 200 after queueing", i, c)
		}
	}
}

func TestProcessCapReclaimsIdleSession(t *testing.T) {
	h := newHarness(t, oneServer("    max_processes: 1\n    timeouts: {reclaim_idle: 200ms, kill_grace: 200ms}\n"))
	old := h.rawSession("t", "2025-06-18")
	// The old session is busy: a new session is refused.
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		h.post("t", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":700}}}`,
			map[string]string{"Mcp-Session-Id": old})
	}()
	eventually(t, 2*time.Second, "the sleep to be in flight", func() bool { return h.g.mgr.Stats("t").InFlight == 1 })
	r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if r.Status != http.StatusTooManyRequests || r.errorCode() != -32029 {
		t.Errorf("at cap with a busy session: %d %s, want 429", r.Status, r.Body)
	}
	<-busy
	// Once idle long enough, the old session is reclaimed for a new one.
	eventually(t, 5*time.Second, "a reclaiming initialize", func() bool {
		r = h.post("t", fmt.Sprintf(initBody, "2025-06-18"), nil)
		return r.Status == http.StatusOK
	})
	if r := h.post("t", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"Mcp-Session-Id": old}); r.Status != http.StatusNotFound {
		t.Errorf("reclaimed session: %d, want 404", r.Status)
	}
	if len(h.logs.find("reclaiming an idle session to make room for a new one", map[string]any{"session_id": old})) == 0 {
		t.Error("reclaim not logged")
	}
}

func TestGlobalProcessCap(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nlimits: {max_processes: 1}\nservers:\n"+
		serverYAML("a", "    timeouts: {reclaim_idle: 1h}\n")+serverYAML("b", ""))
	h.rawSession("a", "2025-06-18")
	r := h.post("b", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if r.Status != http.StatusTooManyRequests || !strings.Contains(string(r.Body), "limits.max_processes") {
		t.Errorf("global cap: %d %s, want 429 naming limits.max_processes", r.Status, r.Body)
	}
}

func TestKeepAliveOnIdleStreams(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nlimits: {sse_keepalive: 100ms}\nservers:\n"+serverYAML("t", ""))
	sid := h.rawSession("t", "2025-06-18")
	resp := h.openStream(sid, 5*time.Second)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("GET content type %q", ct)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ": keep-alive") {
		t.Errorf("GET stream: first line %q (%v), want a keep-alive comment", line, err)
	}
	// POST stream of a long call: switches to SSE and keeps it alive.
	preq, _ := http.NewRequest(http.MethodPost, h.url("t"), strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":400}}}`))
	preq.Header.Set("Content-Type", "application/json")
	preq.Header.Set("Accept", "application/json, text/event-stream")
	preq.Header.Set("Mcp-Session-Id", sid)
	presp, err := http.DefaultClient.Do(preq)
	if err != nil {
		t.Fatal(err)
	}
	defer presp.Body.Close()
	sc := bufio.NewScanner(presp.Body)
	var sawKeepAlive, sawResult bool
	for sc.Scan() {
		l := sc.Text()
		sawKeepAlive = sawKeepAlive || strings.HasPrefix(l, ": keep-alive")
		sawResult = sawResult || (strings.HasPrefix(l, "data: ") && strings.Contains(l, `"result"`))
	}
	if !sawKeepAlive || !sawResult {
		t.Errorf("POST stream: keep-alive %v, result %v", sawKeepAlive, sawResult)
	}
}

func TestHeldMessagesReachLaterGetStream(t *testing.T) {
	h := newHarness(t, oneServer(""))
	sid := h.rawSession("t", "2025-06-18")
	r := h.post("t", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_changed"}}`, map[string]string{"Mcp-Session-Id": sid})
	if r.Status != http.StatusOK {
		t.Fatalf("list_changed: %d %s", r.Status, r.Body)
	}
	resp := h.openStream(sid, 5*time.Second)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "notifications/tools/list_changed") {
			return
		}
	}
	t.Fatal("held list_changed notification was not delivered on the GET stream")
}

func TestHeldMessagesAreBounded(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nlimits: {max_held_messages: 2}\nservers:\n"+serverYAML("t", ""))
	sid := h.rawSession("t", "2025-06-18")
	for i := 0; i < 4; i++ {
		r := h.post("t", fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"list_changed"}}`, i+1), map[string]string{"Mcp-Session-Id": sid})
		if r.Status != http.StatusOK {
			t.Fatalf("list_changed: %d", r.Status)
		}
	}
	if n := len(h.logs.find("dropping a server message: no GET stream is open to receive it", map[string]any{"session_id": sid})); n != 2 {
		t.Errorf("%d drops logged, want 2", n)
	}
	if got := readStreamEvents(t, h, sid, 2, 2*time.Second); got != 2 {
		t.Errorf("GET stream delivered %d held messages, want 2", got)
	}
}

func TestHeldMessagesExpire(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nlimits: {hold_messages: 200ms}\nservers:\n"+serverYAML("t", ""))
	sid := h.rawSession("t", "2025-06-18")
	h.post("t", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_changed"}}`, map[string]string{"Mcp-Session-Id": sid})
	eventually(t, 5*time.Second, "the held message to expire", func() bool {
		return len(h.logs.find("dropping a server message: no GET stream is open to receive it",
			map[string]any{"session_id": sid, "reason": "held longer than limits.hold_messages"})) == 1
	})
	if got := readStreamEvents(t, h, sid, 1, 500*time.Millisecond); got != 0 {
		t.Errorf("expired message delivered anyway (%d events)", got)
	}
}

// readStreamEvents opens the GET stream and counts message events until
// want arrive or the time is up.
func readStreamEvents(t *testing.T, h *harness, sid string, want int, within time.Duration) int {
	t.Helper()
	resp := h.openStream(sid, within)
	n := 0
	sc := bufio.NewScanner(resp.Body)
	for n < want && sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			n++
		}
	}
	return n
}

// Slow clients cannot pin connections: a header or body that does not
// arrive within limits.read_timeout ends the exchange.
func TestSlowClients(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nlimits: {read_timeout: 300ms}\nservers:\n"+serverYAML("t", ""))
	addr := strings.TrimPrefix(h.base, "http://")
	t.Run("slow headers", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /mcp/t HTTP/1.1\r\nHost: 127.0.0.1\r\n") // never finishes the header
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		if d := time.Since(start); err != nil || d > 3*time.Second {
			t.Errorf("connection held for %s (err %v), want closed after ~300ms", d, err)
		}
	})
	t.Run("slow body", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /mcp/t HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"")
		// net/http drops the connection once the body read times out (the
		// handler's 400 is logged but cannot be delivered mid-body).
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadAll(c)
		if d := time.Since(start); err != nil || d > 3*time.Second {
			t.Errorf("connection held for %s (err %v), want closed after ~300ms", d, err)
		}
		eventually(t, 2*time.Second, "the timed-out body to be logged", func() bool {
			for _, l := range h.logs.find("request", map[string]any{"status": 400}) {
				if strings.Contains(fmt.Sprint(l["error"]), "timeout") {
					return true
				}
			}
			return false
		})
	})
}
