//lint:file-ignore SA1019 session-era clients still use logging and sampling (deprecated in 2026-07-28); the gateway must route them.

package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func daemonYAML(extra string) string {
	return oneServer("    mode: daemon\n" + extra)
}

// 32 sessions × 100 concurrent calls, all sessions using the same JSON-RPC
// ids (every go-sdk client counts from 1), each get exactly their answers,
// and the pool never exceeds max_processes.
func TestDaemonMultiplexing(t *testing.T) {
	const sessions, calls, maxProcs = 32, 100, 2
	h := newHarness(t, daemonYAML(fmt.Sprintf("    max_processes: %d\n    max_concurrent: 256\n    max_inflight_per_process: 128\n    queue_timeout: 30s\n", maxProcs)))
	clients := make([]*mcp.ClientSession, sessions)
	for i := range clients {
		// 100 calls share 16 connections per client, as a browser or SDK
		// would; 3200 simultaneous TCP connects would only test the kernel's
		// accept queue.
		clients[i] = h.connectWith("t", nil, &http.Transport{MaxConnsPerHost: 16})
	}
	var peak atomic.Int32
	stop := make(chan struct{})
	var watch sync.WaitGroup
	watch.Add(1)
	go func() { // sample the OS process table while the load runs
		defer watch.Done()
		for {
			if n := int32(len(childrenOf(os.Getpid()))); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var wg sync.WaitGroup
	var wrong, failed atomic.Int32
	for i, cs := range clients {
		for j := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				want := fmt.Sprintf("session %d call %d", i, j)
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": want}})
				if err != nil {
					failed.Add(1)
					t.Errorf("%s: %v", want, err)
					return
				}
				if got := res.Content[0].(*mcp.TextContent).Text; got != want {
					wrong.Add(1)
					t.Errorf("asked %q, got %q", want, got)
				}
			}()
		}
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	if wrong.Load() != 0 || failed.Load() != 0 {
		t.Fatalf("%d wrong answers, %d failures out of %d", wrong.Load(), failed.Load(), sessions*calls)
	}
	if p := peak.Load(); p < 1 || p > maxProcs {
		t.Errorf("peak of %d server processes, want 1..%d", p, maxProcs)
	}
	if n := h.g.mgr.Stats("t").Processes; n > maxProcs {
		t.Errorf("%d processes accounted, want at most %d", n, maxProcs)
	}
}

func TestDaemonSharesOneProcessAndAnswersInitializeFromCache(t *testing.T) {
	h := newHarness(t, daemonYAML(""))
	a, b := h.connect("t", nil), h.connect("t", nil)
	if pa, pb := whoami(t, a)["pid"], whoami(t, b)["pid"]; pa != pb {
		t.Errorf("sessions on different processes %v and %v with max_processes 1", pa, pb)
	}
	if n := len(h.logs.find("server process ready", map[string]any{"tool": "t"})); n != 1 {
		t.Errorf("%d handshakes for 2 sessions, want 1", n)
	}
	for _, c := range []struct{ ask, want string }{
		{"2025-03-26", "2025-03-26"},
		{"2025-06-18", "2025-06-18"},
		{"2099-01-01", "2025-11-25"},
	} {
		r := h.post("t", fmt.Sprintf(initBody, c.ask), nil)
		var res struct {
			Result struct {
				ProtocolVersion string                `json:"protocolVersion"`
				ServerInfo      struct{ Name string } `json:"serverInfo"`
			} `json:"result"`
		}
		if err := json.Unmarshal(r.Body, &res); err != nil || r.Status != 200 {
			t.Fatalf("initialize %s: %d %s", c.ask, r.Status, r.Body)
		}
		if res.Result.ProtocolVersion != c.want || res.Result.ServerInfo.Name != "mcpgw-testserver" {
			t.Errorf("client asking %s got %+v, want version %s and the server's info", c.ask, res.Result, c.want)
		}
	}
}

func TestDaemonWarmPoolAndIdleShrink(t *testing.T) {
	h := newHarness(t, daemonYAML("    min_processes: 1\n    max_processes: 3\n    max_inflight_per_process: 1\n    max_concurrent: 8\n    timeouts: {idle: 400ms, kill_grace: 200ms}\n"))
	eventually(t, 10*time.Second, "the warm process", func() bool { return h.g.mgr.Stats("t").Processes == 1 })
	// A session that arrives while every process is at
	// max_inflight_per_process gets a new process: three sessions, each
	// with a call in flight, grow the pool to 3.
	var wg sync.WaitGroup
	for i := range 3 {
		cs := h.connect("t", nil)
		wg.Add(1)
		go func() { defer wg.Done(); callText(t, cs, "sleep", map[string]any{"ms": 4000}) }() // long enough to overlap on a loaded machine
		eventually(t, 10*time.Second, "the call in flight", func() bool { return h.g.mgr.Stats("t").InFlight == i+1 })
	}
	if n := h.g.mgr.Stats("t").Processes; n != 3 {
		t.Errorf("%d processes for 3 busy sessions, want 3", n)
	}
	wg.Wait()
	// Sessions idle out, then processes shrink back to min_processes.
	eventually(t, 10*time.Second, "the pool to shrink to min_processes", func() bool {
		return h.g.mgr.Stats("t").Processes == 1 && len(h.logs.find("stopping an idle server process", nil)) >= 2
	})
}

func TestDaemonProgressAndLogsStayInTheirSession(t *testing.T) {
	h := newHarness(t, daemonYAML("    max_concurrent: 16\n"))
	type rec struct {
		mu       sync.Mutex
		progress map[string]int
		logs     []string
	}
	mk := func(r *rec) *mcp.ClientOptions {
		return &mcp.ClientOptions{
			ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
				r.mu.Lock()
				r.progress[fmt.Sprint(req.Params.ProgressToken)]++
				r.mu.Unlock()
			},
			LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
				r.mu.Lock()
				r.logs = append(r.logs, fmt.Sprint(req.Params.Data))
				r.mu.Unlock()
			},
		}
	}
	ra := &rec{progress: map[string]int{}}
	rb := &rec{progress: map[string]int{}}
	ca, cb := h.connect("t", mk(ra)), h.connect("t", mk(rb))
	// Both sessions use the same progress token at the same time.
	var wg sync.WaitGroup
	for _, cs := range []*mcp.ClientSession{ca, cb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 300}}
			p.SetProgressToken("same-token")
			if _, err := cs.CallTool(context.Background(), p); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for name, r := range map[string]*rec{"a": ra, "b": rb} {
		r.mu.Lock()
		if r.progress["same-token"] == 0 || len(r.progress) != 1 {
			t.Errorf("session %s progress %v, want only its own same-token", name, r.progress)
		}
		r.mu.Unlock()
	}
	// Logs: one at a time they are unambiguous and reach their session.
	callText(t, ca, "log", map[string]any{"level": "info", "text": "from-a"})
	callText(t, cb, "log", map[string]any{"level": "info", "text": "from-b"})
	// Concurrently they may be ambiguous (dropped) but never cross over.
	for i := 0; i < 5; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); callText(t, ca, "log", map[string]any{"level": "info", "text": "from-a"}) }()
		go func() { defer wg.Done(); callText(t, cb, "log", map[string]any{"level": "info", "text": "from-b"}) }()
	}
	wg.Wait()
	eventually(t, 5*time.Second, "the sequential log messages", func() bool {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		rb.mu.Lock()
		defer rb.mu.Unlock()
		return len(ra.logs) >= 1 && len(rb.logs) >= 1
	})
	for name, r := range map[string]*rec{"from-a": ra, "from-b": rb} {
		r.mu.Lock()
		for _, l := range r.logs {
			if l != name {
				t.Errorf("session expecting %s received %q", name, l)
			}
		}
		r.mu.Unlock()
	}
}

func TestDaemonLogLevelIsPerSession(t *testing.T) {
	h := newHarness(t, daemonYAML(""))
	var gotA, gotB atomic.Int32
	ca := h.connect("t", &mcp.ClientOptions{LoggingMessageHandler: func(context.Context, *mcp.LoggingMessageRequest) { gotA.Add(1) }})
	cb := h.connect("t", &mcp.ClientOptions{LoggingMessageHandler: func(context.Context, *mcp.LoggingMessageRequest) { gotB.Add(1) }})
	if err := ca.SetLoggingLevel(context.Background(), &mcp.SetLoggingLevelParams{Level: "error"}); err != nil {
		t.Fatal(err)
	}
	callText(t, ca, "log", map[string]any{"level": "info", "text": "quiet"})
	callText(t, cb, "log", map[string]any{"level": "info", "text": "loud"})
	callText(t, ca, "log", map[string]any{"level": "error", "text": "important"})
	eventually(t, 5*time.Second, "b's info log and a's error log", func() bool { return gotB.Load() == 1 && gotA.Load() == 1 })
}

func TestDaemonSamplingGoesToTheCapableClient(t *testing.T) {
	h := newHarness(t, daemonYAML(""))
	capable := h.connect("t", &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "sampled"}}, nil
		},
	})
	plain := h.connect("t", nil)
	if got := callText(t, capable, "sample", nil); !strings.Contains(got, "sampled") {
		t.Errorf("capable client: %q", got)
	}
	if got := callText(t, plain, "sample", nil); !strings.Contains(got, "did not declare support") {
		t.Errorf("client without sampling: %q, want the gateway's refusal", got)
	}
}

func TestDaemonSubscriptions(t *testing.T) {
	h := newHarness(t, daemonYAML(""))
	var gotA, gotB atomic.Int32
	ca := h.connect("t", &mcp.ClientOptions{ResourceUpdatedHandler: func(context.Context, *mcp.ResourceUpdatedNotificationRequest) { gotA.Add(1) }})
	cb := h.connect("t", &mcp.ClientOptions{ResourceUpdatedHandler: func(context.Context, *mcp.ResourceUpdatedNotificationRequest) { gotB.Add(1) }})
	if err := ca.Subscribe(context.Background(), &mcp.SubscribeParams{URI: "file:///x"}); err != nil {
		t.Fatal(err)
	}
	callText(t, cb, "touch", map[string]any{"uri": "file:///x"})
	callText(t, cb, "touch", map[string]any{"uri": "file:///other"})
	eventually(t, 5*time.Second, "the update at the subscriber", func() bool { return gotA.Load() == 1 })
	if gotB.Load() != 0 {
		t.Errorf("non-subscriber got %d updates", gotB.Load())
	}
	// After a crash the subscription is re-established on the new process.
	if _, err := cb.CallTool(context.Background(), &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{"code": 1}}); err == nil {
		t.Fatal("crash call succeeded")
	}
	callText(t, ca, "echo", map[string]any{"text": "moves a"})
	eventually(t, 5*time.Second, "the re-subscription", func() bool {
		n := 0
		for _, l := range h.logs.find("backend stderr", nil) {
			if strings.Contains(fmt.Sprint(l["line"]), "resources/subscribe") && strings.Contains(fmt.Sprint(l["line"]), "file:///x") {
				n++
			}
		}
		return n == 2
	})
	callText(t, cb, "touch", map[string]any{"uri": "file:///x"})
	eventually(t, 5*time.Second, "the update after the move", func() bool { return gotA.Load() == 2 })
}

// A crash fails exactly the requests in flight on the dead process, at
// once; the sessions then move to a restarted process.
func TestDaemonCrashMidFlight(t *testing.T) {
	h := newHarness(t, daemonYAML("    max_concurrent: 16\n"))
	a, b := h.connect("t", nil), h.connect("t", nil)
	pid := whoami(t, a)["pid"]
	errs := make(chan error, 4)
	for _, cs := range []*mcp.ClientSession{a, b, b} {
		go func() {
			_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 20000}})
			errs <- err
		}()
	}
	eventually(t, 5*time.Second, "three calls in flight", func() bool { return h.g.mgr.Stats("t").InFlight == 3 })
	start := time.Now()
	if _, err := a.CallTool(context.Background(), &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{"code": 1}}); err == nil {
		t.Fatal("crash call succeeded")
	}
	for range 3 {
		select {
		case err := <-errs:
			if err == nil {
				t.Error("an in-flight call on the crashed process succeeded")
			}
		case <-time.After(2 * time.Second):
			t.Fatal("in-flight calls not failed promptly")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("failures took %s", d)
	}
	for _, cs := range []*mcp.ClientSession{a, b} {
		if got := callText(t, cs, "echo", map[string]any{"text": "after"}); got != "after" {
			t.Errorf("after crash: %q", got)
		}
	}
	if whoami(t, a)["pid"] == pid {
		t.Error("still on the crashed process")
	}
}

func TestDaemonCrashLoopBacksOff(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "crash")
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, baseYAML+`  t:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1", MCPGW_TESTSERVER_CRASH_IF_EXISTS: "`+flag+`"}
    mode: daemon
`)
	var statuses []int
	var r *rawResponse
	for range 3 {
		r = h.post("t", fmt.Sprintf(initBody, "2025-06-18"), nil)
		statuses = append(statuses, r.Status)
	}
	if statuses[0] != http.StatusBadGateway || statuses[2] != http.StatusServiceUnavailable {
		t.Fatalf("statuses %v: want 502 for the crashes, then 503 during the back-off", statuses)
	}
	if r.Header.Get("Retry-After") == "" || r.errorCode() != -32004 {
		t.Errorf("503 without Retry-After or -32004: %s", r.Body)
	}
	// Each crash counts once: the first restarts at once, the second backs
	// off for a second, in one log line.
	lines := h.logs.find("server keeps failing; backing off", nil)
	if len(lines) != 1 || fmt.Sprint(lines[0]["failures"]) != "2" || fmt.Sprint(lines[0]["retry_in_ms"]) != "1000" {
		t.Errorf("back-off log lines after two crashes: %v, want one with failures 2 and retry_in_ms 1000", lines)
	}
	rr := h.do(mustReq(t, http.MethodGet, h.base+"/readyz"))
	if !strings.Contains(string(rr.Body), `"failed":true`) || !strings.Contains(string(rr.Body), "crash loop") {
		t.Errorf("readyz does not mark the server failed: %s", rr.Body)
	}
	os.Remove(flag)
	eventually(t, 10*time.Second, "recovery after the back-off", func() bool {
		return h.post("t", fmt.Sprintf(initBody, "2025-06-18"), nil).Status == http.StatusOK
	})
}

// A process whose timed-out request stays unanswered after its
// cancellation and which then does not answer a ping either (wedged) is
// recycled; the sessions continue on a new process.
func TestDaemonStuckProcessIsRecycled(t *testing.T) {
	h := newHarness(t, daemonYAML("    max_concurrent: 8\n    timeouts: {request: 300ms, kill_grace: 300ms}\n"))
	a, b := h.connect("t", nil), h.connect("t", nil)
	pid := whoami(t, a)["pid"]
	if _, err := b.CallTool(context.Background(), &mcp.CallToolParams{Name: "stuck", Arguments: map[string]any{"ms": 50}}); err != nil {
		t.Errorf("a short call that finished in time failed: %v", err)
	}
	_, err := a.CallTool(context.Background(), &mcp.CallToolParams{Name: "wedge", Arguments: map[string]any{"ms": 10000}})
	if err == nil {
		t.Fatal("wedged call succeeded")
	}
	eventually(t, 5*time.Second, "the recycling", func() bool {
		return len(h.logs.find("recycling a stuck server process", nil)) == 1
	})
	if got := whoami(t, b)["pid"]; got == pid {
		t.Error("session still on the recycled process")
	}
}

// A well-behaved server sends no response to a cancelled request, and a
// server that ignores the cancellation but keeps answering others is not
// wedged: neither is recycled (the process is pinged and answers).
func TestDaemonCancelledRequestKeepsProcess(t *testing.T) {
	h := newHarness(t, daemonYAML("    max_concurrent: 8\n    timeouts: {request: 300ms, kill_grace: 300ms}\n"))
	a, b := h.connect("t", nil), h.connect("t", nil)
	pid := whoami(t, a)["pid"]
	for _, tool := range []string{"sleep", "stuck"} { // no answer after the cancellation; a late one
		if _, err := a.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: map[string]any{"ms": 1500}}); err == nil {
			t.Fatalf("%s: a call past its timeout succeeded", tool)
		}
	}
	eventually(t, 5*time.Second, "both processes' pings", func() bool {
		return len(h.logs.find("server process answers after leaving a timed-out request unanswered: keeping it", nil)) == 2
	})
	if n := len(h.logs.find("recycling a stuck server process", nil)); n != 0 {
		t.Errorf("%d recycles of a process that answers, want 0", n)
	}
	if got := whoami(t, b)["pid"]; got != pid {
		t.Errorf("the other session moved from process %v to %v", pid, got)
	}
}

// max_lifetime replaces processes without failing a request.
func TestDaemonLifetimeReplacementDropsNothing(t *testing.T) {
	h := newHarness(t, daemonYAML("    max_concurrent: 8\n    timeouts: {max_lifetime: 700ms, kill_grace: 300ms}\n"))
	clients := []*mcp.ClientSession{h.connect("t", nil), h.connect("t", nil)}
	pids := map[any]bool{}
	var mu sync.Mutex
	deadline := time.Now().Add(2500 * time.Millisecond)
	var wg sync.WaitGroup
	var n atomic.Int32
	for _, cs := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
				if err != nil {
					t.Errorf("call failed during replacement: %v", err)
					return
				}
				var w map[string]any
				_ = json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &w)
				mu.Lock()
				pids[w["pid"]] = true
				mu.Unlock()
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if len(pids) < 2 {
		t.Errorf("served by %d process(es) over 2.5s with max_lifetime 700ms; want replacements", len(pids))
	}
	t.Logf("%d calls over %d processes", n.Load(), len(pids))
}

// Many replacements with requests always waiting for the next process:
// a waiter woken when the draining process ends must find its process slot
// free (session.proc.HandleClose releases the slot before the pool wakes
// its waiters), not a 429 because queue_timeout is 0.
func TestDaemonLifetimeReplacementWaitersGetTheSlot(t *testing.T) {
	const clients = 16
	h := newHarness(t, daemonYAML("    max_concurrent: 32\n    timeouts: {max_lifetime: 150ms, kill_grace: 50ms}\n"))
	var sessions []*mcp.ClientSession
	for range clients {
		sessions = append(sessions, h.connect("t", nil))
	}
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	var n, refused atomic.Int32
	pids := sync.Map{}
	for _, cs := range sessions {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
				if err != nil {
					refused.Add(1)
					t.Errorf("call failed during replacement: %v", err)
					return
				}
				var w map[string]any
				_ = json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &w)
				pids.Store(w["pid"], true)
				n.Add(1)
			}
		})
	}
	wg.Wait()
	replaced := 0
	pids.Range(func(any, any) bool { replaced++; return true })
	t.Logf("%d calls over %d processes, %d refused", n.Load(), replaced, refused.Load())
	if replaced < 3 {
		t.Errorf("served by %d process(es) over 3s with max_lifetime 150ms; want several replacements", replaced)
	}
}

func TestDaemonSessionDeleteLeavesProcess(t *testing.T) {
	h := newHarness(t, daemonYAML(""))
	a := h.connect("t", nil)
	b := h.connect("t", nil)
	pid := whoami(t, a)["pid"]
	_ = a.Close()
	if got := whoami(t, b)["pid"]; got != pid {
		t.Errorf("closing one session replaced the shared process")
	}
	if n := h.g.mgr.Stats("t").Sessions; n != 1 {
		t.Errorf("%d sessions after one DELETE, want 1", n)
	}
}

// limits.max_sessions bounds sessions, which cost no process in daemon
// mode: at the limit the longest-idle session is ended, or 429.
func TestMaxSessions(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nlimits: {max_sessions: 2}\nservers:\n"+serverYAML("t", "    mode: daemon\n    timeouts: {reclaim_idle: 300ms}\n"))
	a := h.rawSession("t", "2025-06-18")
	h.rawSession("t", "2025-06-18")
	r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if r.Status != http.StatusTooManyRequests || !strings.Contains(string(r.Body), "limits.max_sessions") {
		t.Fatalf("third session with none idle: %d %s, want 429 naming limits.max_sessions", r.Status, r.Body)
	}
	eventually(t, 5*time.Second, "a session idle long enough to be ended", func() bool {
		return h.post("t", fmt.Sprintf(initBody, "2025-06-18"), nil).Status == http.StatusOK
	})
	if r := h.post("t", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"Mcp-Session-Id": a}); r.Status != http.StatusNotFound {
		t.Errorf("the ended (longest-idle) session: %d, want 404", r.Status)
	}
	if n := h.g.mgr.Stats("t").Sessions; n > 2 {
		t.Errorf("%d sessions, limit 2", n)
	}
}
