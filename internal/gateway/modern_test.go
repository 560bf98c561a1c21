//lint:file-ignore SA1019 the gateway relays sampling (deprecated in 2026-07-28) from session-era servers to modern clients.

package gateway

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The 2026-07-28 (stateless) path: the Go SDK client's default.

const demoYAML = `  demo:
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
`

const modernOnlyYAML = `  m:
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_MODERN_ONLY: "1"}
`

// modernOnlyServer is a Go SDK server that speaks only 2026-07-28, run as
// a child process by the gateway under test: echo, and add_tool, which
// changes its tool list.
func modernOnlyServer() int {
	srv := mcp.NewServer(&mcp.Implementation{Name: "modern-only", Version: "1"},
		&mcp.ServerOptions{SupportedProtocolVersions: []string{"2026-07-28"}})
	type text struct {
		Text string `json:"text"`
	}
	echo := func(_ context.Context, _ *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: in.Text}}}, nil, nil
	}
	mcp.AddTool(srv, &mcp.Tool{Name: "echo"}, echo)
	mcp.AddTool(srv, &mcp.Tool{Name: "add_tool"}, func(_ context.Context, _ *mcp.CallToolRequest, in text) (*mcp.CallToolResult, any, error) {
		mcp.AddTool(srv, &mcp.Tool{Name: in.Text}, echo)
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "added " + in.Text}}}, nil, nil
	})
	// The SDK answers initialize whatever its versions; this server refuses
	// it before the SDK sees it, as a modern-only server does.
	out := &lockedWriter{w: os.Stdout}
	in, feed := io.Pipe()
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal(sc.Bytes(), &m) == nil && m.Method == "initialize" {
				fmt.Fprintf(out, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"initialize is not supported: this server speaks only 2026-07-28"}}`+"\n", m.ID)
				continue
			}
			_, _ = feed.Write(append(sc.Bytes(), '\n'))
		}
		feed.Close()
	}()
	if err := srv.Run(context.Background(), &mcp.IOTransport{Reader: in, Writer: out}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// lockedWriter serialises writes of whole lines to one stream.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) Close() error { return nil }

// modernMeta is the _meta every modern request carries.
func modernMeta() map[string]any {
	return map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "raw-modern", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": map[string]any{},
	}
}

// modernHdr are the headers of a modern POST for method (and name).
func modernHdr(method, name string) map[string]string {
	h := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": method}
	if name != "" {
		h["Mcp-Name"] = name
	}
	return h
}

// modernBody is a modern request with params (which get _meta unless they
// have one).
func modernBody(id any, method string, params map[string]any) string {
	if params == nil {
		params = map[string]any{}
	}
	if _, ok := params["_meta"]; !ok {
		params["_meta"] = modernMeta()
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	return string(b)
}

func callParams(tool string, args map[string]any) map[string]any {
	return map[string]any{"name": tool, "arguments": args}
}

// TestModernGoSDKClient: the current Go SDK client negotiates 2026-07-28
// through the gateway with a modern server (the demo server, Go SDK
// v1.8.0) and with a session-era one (the test server), in both modes.
func TestModernGoSDKClient(t *testing.T) {
	cases := []struct {
		name, yaml, server, serverName, era string
	}{
		{"dual-era-backend/launcher", baseYAML + demoYAML, "demo", "mcpgw-demo", ""},
		// A dual-era server shares its processes with session-era clients in
		// daemon mode: the gateway initialises them (pool.go).
		{"dual-era-backend/daemon", baseYAML + demoYAML + "    mode: daemon\n", "demo", "mcpgw-demo", "legacy"},
		{"modern-only-backend/launcher", baseYAML + modernOnlyYAML, "m", "modern-only", ""},
		{"modern-only-backend/daemon", baseYAML + modernOnlyYAML + "    mode: daemon\n", "m", "modern-only", "modern"},
		{"legacy-backend/launcher", oneServer(""), "t", "mcpgw-testserver", ""},
		{"legacy-backend/launcher-isolation-request", oneServer("    isolation: request\n"), "t", "mcpgw-testserver", "request"},
		{"legacy-backend/daemon", oneServer("    mode: daemon\n"), "t", "mcpgw-testserver", "legacy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.yaml)
			cs := h.connectVersion(c.server, nil, &http.Transport{}, nil)
			init := cs.InitializeResult()
			if init.ProtocolVersion != "2026-07-28" {
				t.Fatalf("negotiated %q, want 2026-07-28", init.ProtocolVersion)
			}
			if init.ServerInfo == nil || init.ServerInfo.Name != c.serverName {
				t.Errorf("serverInfo = %+v, want %s", init.ServerInfo, c.serverName)
			}
			tools, err := cs.ListTools(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, tl := range tools.Tools {
				found = found || tl.Name == "echo"
			}
			if !found {
				t.Errorf("tools/list lacks echo")
			}
			for i := range 3 {
				want := fmt.Sprintf("modern %d", i)
				if got := callText(t, cs, "echo", map[string]any{"text": want}); got != want {
					t.Errorf("echo = %q, want %q", got, want)
				}
			}
			if st := h.g.mgr.Stats(c.server); st.Sessions != 0 {
				t.Errorf("%d sessions: modern requests must not create sessions", st.Sessions)
			}
			switch c.era {
			case "":
				// One process for the client's identity (anonymous here),
				// reused by discover, list and every call, and kept warm.
				if n := len(h.logs.find("started a process for an identity's 2026-07-28 requests", nil)); n != 1 {
					t.Errorf("launcher mode started %d processes for one identity's sequential requests, want 1", n)
				}
				if n := h.g.mgr.Stats(c.server).Processes; n != 1 {
					t.Errorf("%d processes after the requests, want 1 kept warm", n)
				}
				if n := len(h.logs.find("server process ready", nil)); n != 0 {
					t.Errorf("launcher mode started %d pooled processes", n)
				}
			case "request":
				// One process per request, each stopped when it is over.
				eventually(t, 5*time.Second, "every per-request process to stop", func() bool {
					return h.g.mgr.Stats(c.server).Processes == 0
				})
				if n := len(h.logs.find("backend ended", nil)); n < 5 {
					t.Errorf("%d processes ended, want one per request (discover, list, 3 calls)", n)
				}
			default:
				if len(h.logs.find("server process ready", map[string]any{"era": c.era})) == 0 {
					t.Errorf("no pooled process was recognised as %s", c.era)
				}
			}
		})
	}
}

// TestModernRejections: the status and JSON-RPC code of every rejection
// the stateless path makes (spec 2026-07-28, basic/transports/streamable-http).
func TestModernRejections(t *testing.T) {
	h := newHarness(t, oneServer("    mode: daemon\n"))
	echo := callParams("echo", map[string]any{"text": "x"})
	b64 := "=?base64?" + base64.StdEncoding.EncodeToString([]byte("echo")) + "?="
	withoutCaps := map[string]any{"_meta": map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-28"}, "name": "echo", "arguments": map[string]any{}}
	otherVersion := map[string]any{"_meta": map[string]any{"io.modelcontextprotocol/protocolVersion": "2026-07-27",
		"io.modelcontextprotocol/clientCapabilities": map[string]any{}}, "name": "echo", "arguments": map[string]any{}}
	cases := []struct {
		name   string
		body   string
		hdr    map[string]string
		status int
		code   int
	}{
		{"ok", modernBody(1, "tools/call", echo), modernHdr("tools/call", "echo"), 200, 0},
		{"ok base64 name", modernBody(1, "tools/call", echo), modernHdr("tools/call", b64), 200, 0},
		{"unsupported version", modernBody(1, "tools/call", echo), merge(modernHdr("tools/call", "echo"), map[string]string{"Mcp-Protocol-Version": "2099-01-01"}), 400, -32022},
		{"version mismatch", modernBody(1, "tools/call", otherVersion), modernHdr("tools/call", "echo"), 400, -32020},
		{"missing clientCapabilities", modernBody(1, "tools/call", withoutCaps), modernHdr("tools/call", "echo"), 400, -32602},
		{"missing Mcp-Method", modernBody(1, "tools/call", echo), map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Name": "echo"}, 400, -32020},
		{"wrong Mcp-Method", modernBody(1, "tools/call", echo), modernHdr("tools/list", "echo"), 400, -32020},
		{"missing Mcp-Name", modernBody(1, "tools/call", echo), modernHdr("tools/call", ""), 400, -32020},
		{"wrong Mcp-Name", modernBody(1, "tools/call", echo), modernHdr("tools/call", "sleep"), 400, -32020},
		{"bad base64 Mcp-Name", modernBody(1, "tools/call", echo), modernHdr("tools/call", "=?base64?***?="), 400, -32020},
		{"header without _meta version", modernBody(1, "tools/call", map[string]any{"_meta": map[string]any{}, "name": "echo"}), modernHdr("tools/call", "echo"), 400, -32602},
		{"_meta without header", modernBody(1, "tools/call", echo), map[string]string{"Mcp-Method": "tools/call", "Mcp-Name": "echo"}, 400, -32020},
		{"unknown method (server's -32601)", modernBody(1, "nothing/here", nil), modernHdr("nothing/here", ""), 404, -32601},
		{"method removed in 2026-07-28", modernBody(1, "ping", nil), modernHdr("ping", ""), 404, -32601},
		{"batch", "[" + modernBody(1, "tools/list", nil) + "]", modernHdr("tools/list", ""), 400, -32600},
		{"client response", `{"jsonrpc":"2.0","id":1,"result":{}}`, modernHdr("tools/list", ""), 400, -32600},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.post("t", c.body, c.hdr)
			if r.Status != c.status || r.errorCode() != c.code {
				t.Fatalf("got %d %s, want %d with code %d", r.Status, r.Body, c.status, c.code)
			}
			if r.Header.Get("Mcp-Session-Id") != "" {
				t.Error("the stateless path must not mint sessions")
			}
			if c.code == -32022 {
				var e struct {
					Error struct {
						Data struct {
							Supported []string `json:"supported"`
							Requested string   `json:"requested"`
						} `json:"data"`
					} `json:"error"`
				}
				_ = json.Unmarshal(r.Body, &e)
				if len(e.Error.Data.Supported) == 0 || e.Error.Data.Supported[0] != "2026-07-28" || e.Error.Data.Requested != "2099-01-01" {
					t.Errorf("-32022 data = %+v, want supported versions starting with 2026-07-28", e.Error.Data)
				}
			}
			if c.status == 200 && !strings.Contains(string(r.Body), `"resultType":"complete"`) {
				t.Errorf("result lacks resultType complete: %s", r.Body)
			}
		})
	}
	// A session-era server's list result gets the cautious caching hints.
	if r := h.post("t", modernBody(5, "tools/list", nil), modernHdr("tools/list", "")); r.Status != http.StatusOK ||
		!strings.Contains(string(r.Body), `"ttlMs":0`) || !strings.Contains(string(r.Body), `"cacheScope":"private"`) {
		t.Errorf("tools/list: %d %.300s, want ttlMs 0 and cacheScope private", r.Status, r.Body)
	}
	// A notification is accepted (2026-07-28 defines none over HTTP).
	if r := h.post("t", `{"jsonrpc":"2.0","method":"notifications/whatever"}`, modernHdr("notifications/whatever", "")); r.Status != http.StatusAccepted {
		t.Errorf("notification: %d %s, want 202", r.Status, r.Body)
	}
	// GET and DELETE without a session: 405 (no standalone stream, no
	// session to end).
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		req, _ := http.NewRequest(method, h.url("t"), nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		if r := h.do(req); r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "POST" {
			t.Errorf("%s without session: %d (Allow %q), want 405 with Allow: POST", method, r.Status, r.Header.Get("Allow"))
		}
	}
}

// TestModernDiscover: server/discover is answered for a session-era server
// from its initialize result, and for a modern one from its own.
func TestModernDiscover(t *testing.T) {
	h := newHarness(t, oneServer("    mode: daemon\n")+demoYAML)
	for _, c := range []struct{ server, name string }{{"t", "mcpgw-testserver"}, {"demo", "mcpgw-demo"}} {
		// "t" is a session-era server in daemon mode; "demo" a dual-era one
		// in launcher mode, which serves the session-era versions too (each
		// session-era client initialises a process of its own).
		r := h.post(c.server, modernBody("d1", "server/discover", nil), modernHdr("server/discover", ""))
		if r.Status != http.StatusOK {
			t.Fatalf("%s: discover: %d %s", c.server, r.Status, r.Body)
		}
		var res struct {
			ID     string `json:"id"`
			Result struct {
				ResultType        string          `json:"resultType"`
				SupportedVersions []string        `json:"supportedVersions"`
				Capabilities      json.RawMessage `json:"capabilities"`
				Meta              map[string]struct {
					Name string `json:"name"`
				} `json:"_meta"`
			} `json:"result"`
		}
		if err := json.Unmarshal(r.Body, &res); err != nil {
			t.Fatal(err)
		}
		if res.ID != "d1" || res.Result.ResultType != "complete" || len(res.Result.SupportedVersions) != 5 ||
			res.Result.SupportedVersions[0] != "2026-07-28" || res.Result.SupportedVersions[1] != "2025-11-25" ||
			!strings.Contains(string(res.Result.Capabilities), "tools") ||
			res.Result.Meta["io.modelcontextprotocol/serverInfo"].Name != c.name {
			t.Errorf("%s: discover = %s", c.server, r.Body)
		}
		// Only what the gateway delivers: resource subscriptions and list
		// changes in daemon mode, neither in launcher mode.
		daemon := c.server == "t"
		if daemon != strings.Contains(string(res.Result.Capabilities), `"subscribe":true`) ||
			daemon != strings.Contains(string(res.Result.Capabilities), "listChanged") {
			t.Errorf("%s: capabilities = %s", c.server, res.Result.Capabilities)
		}
	}
}

// sseEvents reads SSE data lines from a response body into a channel.
func sseEvents(t *testing.T, resp *http.Response) <-chan map[string]any {
	ch := make(chan map[string]any, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var m map[string]any
			if json.Unmarshal([]byte(data), &m) == nil {
				ch <- m
			}
		}
	}()
	return ch
}

// postStream sends a modern POST and returns the open response; the
// request is cancelled at the end of the test or by cancel.
func (h *harness) postStream(server, body string, hdr map[string]string) (*http.Response, context.CancelFunc) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url(server), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp, cancel
}

func next(t *testing.T, ch <-chan map[string]any, what string) map[string]any {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatalf("stream ended before %s", what)
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
	return nil
}

// TestModernProgressAndCancellation: progress reaches the request's own
// stream with the client's token; closing the stream cancels the request
// at the server, in both modes.
func TestModernProgressAndCancellation(t *testing.T) {
	for _, mode := range []string{"launcher", "launcher-isolation-request", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, oneServer(modeYAML(mode)))
			params := callParams("sleep", map[string]any{"ms": 400})
			meta := modernMeta()
			meta["progressToken"] = "tok-1"
			params["_meta"] = meta
			resp, _ := h.postStream("t", modernBody(7, "tools/call", params), modernHdr("tools/call", "sleep"))
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("content type %q, want an SSE stream for a request with progress", ct)
			}
			ev := sseEvents(t, resp)
			m := next(t, ev, "progress")
			if m["method"] != "notifications/progress" || m["params"].(map[string]any)["progressToken"] != "tok-1" {
				t.Fatalf("first event = %v, want progress with the client's token", m)
			}
			for m["method"] == "notifications/progress" {
				m = next(t, ev, "the response")
			}
			res, _ := m["result"].(map[string]any)
			if m["id"] != float64(7) || res["resultType"] != "complete" {
				t.Fatalf("response = %v", m)
			}

			// A long request, closed by the client once its first progress
			// notification shows that it is running in the server.
			params = callParams("sleep", map[string]any{"ms": 10000})
			meta = modernMeta()
			meta["progressToken"] = "tok-2"
			params["_meta"] = meta
			resp, cancel := h.postStream("t", modernBody(8, "tools/call", params), modernHdr("tools/call", "sleep"))
			if m := next(t, sseEvents(t, resp), "progress of the long request"); m["method"] != "notifications/progress" {
				t.Fatalf("first event = %v, want progress", m)
			}
			cancel()
			eventually(t, 5*time.Second, "the cancellation to reach the server", func() bool {
				for _, l := range h.logs.find("backend stderr", nil) {
					if strings.Contains(fmt.Sprint(l["line"]), "cancelled request") && strings.Contains(fmt.Sprint(l["line"]), "in flight: true") {
						return true
					}
				}
				return false
			})
			switch mode {
			case "launcher":
				// The process of the cancelled request is not reused (it
				// may still be busy with it): it is stopped; the other is
				// kept warm for the next request.
				eventually(t, 5*time.Second, "the cancelled request's process to stop", func() bool {
					started := len(h.logs.find("started a process for an identity's 2026-07-28 requests", nil))
					return len(h.logs.find("backend ended", nil)) == 1 && h.g.mgr.Stats("t").Processes == started-1
				})
			case "launcher-isolation-request":
				eventually(t, 5*time.Second, "the request's process to stop", func() bool { return h.g.mgr.Stats("t").Processes == 0 })
			}
		})
	}
}

// modeYAML is the server keys of a test mode: launcher (the default),
// launcher-isolation-request or daemon.
func modeYAML(mode string) string {
	switch mode {
	case "launcher-isolation-request":
		return "    isolation: request\n"
	case "daemon":
		return "    mode: daemon\n"
	}
	return ""
}

// TestModernListen: subscriptions/listen opens with the acknowledgment and
// carries list-changed notifications, each with the subscription's id.
func TestModernListen(t *testing.T) {
	h := newHarness(t, oneServer("    mode: daemon\n")+serverYAML("l", ""))
	listen := map[string]any{"notifications": map[string]any{"toolsListChanged": true, "resourceSubscriptions": []string{"file:///x"}}}
	resp, _ := h.postStream("t", modernBody(42, "subscriptions/listen", listen), modernHdr("subscriptions/listen", ""))
	ev := sseEvents(t, resp)
	ack := next(t, ev, "the acknowledgment")
	p, _ := ack["params"].(map[string]any)
	if ack["method"] != "notifications/subscriptions/acknowledged" || p["_meta"].(map[string]any)["io.modelcontextprotocol/subscriptionId"] != float64(42) {
		t.Fatalf("ack = %v", ack)
	}
	if n := p["notifications"].(map[string]any); n["toolsListChanged"] != true || fmt.Sprint(n["resourceSubscriptions"]) != "[file:///x]" {
		t.Errorf("acknowledged filter = %v, want toolsListChanged and file:///x", n)
	}
	r := h.post("t", modernBody(1, "tools/call", callParams("list_changed", nil)), modernHdr("tools/call", "list_changed"))
	if r.Status != http.StatusOK {
		t.Fatalf("list_changed: %d %s", r.Status, r.Body)
	}
	m := next(t, ev, "tools/list_changed")
	if m["method"] != "notifications/tools/list_changed" ||
		m["params"].(map[string]any)["_meta"].(map[string]any)["io.modelcontextprotocol/subscriptionId"] != float64(42) {
		t.Fatalf("notification = %v", m)
	}

	// Resource updates: only for the granted URI, and a session-era
	// client that subscribes and unsubscribes the same URI on the shared
	// process does not take the stream's subscription away.
	sid := h.rawSession("t", "2025-11-25")
	for i, method := range []string{"resources/subscribe", "resources/unsubscribe"} {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{"uri":"file:///x"}}`, i+1, method)
		if r := h.post("t", body, map[string]string{"Mcp-Session-Id": sid}); r.Status != http.StatusOK || r.errorCode() != 0 {
			t.Fatalf("%s: %d %s", method, r.Status, r.Body)
		}
	}
	for _, uri := range []string{"file:///y", "file:///x"} {
		if r := h.post("t", modernBody(2, "tools/call", callParams("touch", map[string]any{"uri": uri})), modernHdr("tools/call", "touch")); r.Status != http.StatusOK {
			t.Fatalf("touch %s: %d %s", uri, r.Status, r.Body)
		}
	}
	m = next(t, ev, "resources/updated")
	if m["method"] != "notifications/resources/updated" || m["params"].(map[string]any)["uri"] != "file:///x" ||
		m["params"].(map[string]any)["_meta"].(map[string]any)["io.modelcontextprotocol/subscriptionId"] != float64(42) {
		t.Fatalf("notification = %v, want resources/updated for file:///x only", m)
	}

	// Launcher mode: no process outlives a request, so nothing is granted.
	resp, _ = h.postStream("l", modernBody("s", "subscriptions/listen", listen), modernHdr("subscriptions/listen", ""))
	ack = next(t, sseEvents(t, resp), "the launcher acknowledgment")
	if n := ack["params"].(map[string]any)["notifications"].(map[string]any); len(n) != 0 {
		t.Errorf("launcher acknowledged %v, want nothing", n)
	}

	// Draining for shutdown ends the stream gracefully, with the listen
	// request's result.
	h.g.mgr.Drain()
	for m = next(t, ev, "the completion result"); m["id"] == nil; m = next(t, ev, "the completion result") {
	}
	if m["id"] != float64(42) || m["result"].(map[string]any)["resultType"] != "complete" {
		t.Errorf("completion = %v", m)
	}
}

// TestModernMRTR: a session-era server's sampling request during a tool
// call reaches a modern client as an input_required result; the Go SDK
// client answers it and retries, and gets the tool's result. Without the
// capability the client gets -32021.
func TestModernMRTR(t *testing.T) {
	for _, mode := range []string{"launcher", "launcher-isolation-request", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, oneServer(modeYAML(mode)))
			var prompts []string
			cs := h.connectVersion("t", &mcp.ClientOptions{
				CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
					prompts = append(prompts, req.Params.Messages[0].Content.(*mcp.TextContent).Text)
					return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "sampled answer"}}, nil
				},
			}, &http.Transport{}, nil)
			if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
				t.Fatalf("negotiated %s", v)
			}
			got := callText(t, cs, "sample", map[string]any{"text": "question?"})
			if !strings.Contains(got, "sampled answer") || len(prompts) != 1 || prompts[0] != "question?" {
				t.Errorf("sample = %q (prompts %q), want the client's answer", got, prompts)
			}

			plain := h.connectVersion("t", nil, &http.Transport{}, nil)
			_, err := plain.CallTool(context.Background(), &mcp.CallToolParams{Name: "sample", Arguments: map[string]any{}})
			if err == nil || !strings.Contains(err.Error(), "sampling") {
				t.Errorf("without sampling: err = %v, want -32021 naming the capability", err)
			}
			if mode == "launcher-isolation-request" {
				eventually(t, 5*time.Second, "every per-request process to stop", func() bool { return h.g.mgr.Stats("t").Processes == 0 })
			}
		})
	}
}

// inputRequired is the result of a modern request that needs input.
type inputRequired struct {
	ResultType    string                    `json:"resultType"`
	InputRequests map[string]map[string]any `json:"inputRequests"`
	RequestState  string                    `json:"requestState"`
}

// sampleParams are the params of a call to the test server's sample tool
// from a modern client that declares sampling.
func sampleParams() map[string]any {
	params := callParams("sample", map[string]any{"text": "q"})
	meta := modernMeta()
	meta["io.modelcontextprotocol/clientCapabilities"] = map[string]any{"sampling": map[string]any{}}
	params["_meta"] = meta
	return params
}

// firstRound calls sample with params (and extra headers) and returns the
// input_required result; it fails the test on anything else.
func (h *harness) firstRound(server string, params map[string]any, hdr map[string]string) inputRequired {
	h.t.Helper()
	r := h.post(server, modernBody(1, "tools/call", params), merge(modernHdr("tools/call", "sample"), hdr))
	var res struct {
		Result inputRequired `json:"result"`
	}
	if json.Unmarshal(r.Body, &res) != nil || res.Result.ResultType != "input_required" || res.Result.RequestState == "" {
		h.t.Fatalf("first round: %d %s, want input_required", r.Status, r.Body)
	}
	return res.Result
}

// TestModernRequestStateChecks: a retry must come from the same request,
// and a requestState works once.
func TestModernRequestStateChecks(t *testing.T) {
	h := newHarness(t, oneServer("    mode: daemon\n"))
	meta := sampleParams()["_meta"]
	ir := h.firstRound("t", sampleParams(), nil)
	if len(ir.InputRequests) != 1 {
		t.Fatalf("input requests = %v, want one", ir.InputRequests)
	}
	var key string
	for k, v := range ir.InputRequests {
		key = k
		if v["method"] != "sampling/createMessage" {
			t.Errorf("input request = %v", v)
		}
	}
	retry := func(id int, args map[string]any, state string) *rawResponse {
		p := callParams("sample", args)
		p["_meta"] = meta
		p["requestState"] = state
		p["inputResponses"] = map[string]any{key: map[string]any{"role": "assistant", "model": "m", "content": map[string]any{"type": "text", "text": "A"}}}
		return h.post("t", modernBody(id, "tools/call", p), modernHdr("tools/call", "sample"))
	}
	if r := retry(2, map[string]any{"text": "other"}, ir.RequestState); r.Status != 400 || r.errorCode() != -32602 {
		t.Errorf("retry with other arguments: %d %s, want 400 -32602", r.Status, r.Body)
	}
	r := retry(3, map[string]any{"text": "q"}, ir.RequestState)
	if r.Status != 200 || !strings.Contains(string(r.Body), `\"text\":\"A\"`) || !strings.Contains(string(r.Body), `"id":3`) {
		t.Errorf("retry: %d %s, want the tool's result with the retry's id", r.Status, r.Body)
	}
	if r := retry(4, map[string]any{"text": "q"}, ir.RequestState); r.Status != 400 || r.errorCode() != -32602 {
		t.Errorf("second use of a requestState: %d %s, want 400 -32602", r.Status, r.Body)
	}
}

// TestModernOnlyBackend: a server that refuses initialize but speaks
// 2026-07-28 serves modern clients; session-era clients get a clear error;
// its list changes reach modern listeners through the gateway's own
// subscription (daemon mode).
func TestModernOnlyBackend(t *testing.T) {
	h := newHarness(t, baseYAML+modernOnlyYAML+"    mode: daemon\n")
	resp, _ := h.postStream("m", modernBody(9, "subscriptions/listen", map[string]any{"notifications": map[string]any{"toolsListChanged": true}}),
		modernHdr("subscriptions/listen", ""))
	ev := sseEvents(t, resp)
	next(t, ev, "the acknowledgment")
	cs := h.connectVersion("m", nil, &http.Transport{}, nil)
	if got := callText(t, cs, "add_tool", map[string]any{"text": "fresh"}); got != "added fresh" {
		t.Fatalf("add_tool = %q", got)
	}
	m := next(t, ev, "tools/list_changed")
	if m["method"] != "notifications/tools/list_changed" ||
		m["params"].(map[string]any)["_meta"].(map[string]any)["io.modelcontextprotocol/subscriptionId"] != float64(9) {
		t.Errorf("notification = %v", m)
	}
	r := h.post("m", fmt.Sprintf(initBody, "2025-11-25"), nil)
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "2026-07-28") {
		t.Errorf("session-era initialize: %d %s, want 400 naming 2026-07-28", r.Status, r.Body)
	}
}

// TestModernListenLimit: open subscription streams are bounded by
// limits.max_sessions; a stream over the limit gets 429, and closing one
// frees its place.
func TestModernListenLimit(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nlimits: {max_sessions: 1}\nservers:\n"+serverYAML("t", "    mode: daemon\n"))
	listen := modernBody(1, "subscriptions/listen", map[string]any{"notifications": map[string]any{"toolsListChanged": true}})
	resp, cancel := h.postStream("t", listen, modernHdr("subscriptions/listen", ""))
	next(t, sseEvents(t, resp), "the acknowledgment")
	if r := h.post("t", listen, modernHdr("subscriptions/listen", "")); r.Status != http.StatusTooManyRequests || r.errorCode() != -32029 {
		t.Fatalf("second stream: %d %s, want 429", r.Status, r.Body)
	}
	cancel()
	eventually(t, 5*time.Second, "the first stream's place to free", func() bool {
		ctx, stop := context.WithTimeout(context.Background(), 2*time.Second)
		defer stop()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url("t"), strings.NewReader(listen))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range modernHdr("subscriptions/listen", "") {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestModernRequestStateExpires: a client that never retries does not keep
// the request, its server request or (launcher mode) its process: all end
// with the request's timeout, and a late retry gets -32602.
func TestModernRequestStateExpires(t *testing.T) {
	h := newHarness(t, oneServer("    timeouts: {request: 500ms}\n"))
	params := sampleParams() // the process is the identity's: not reused after an abandoned request
	ir := h.firstRound("t", params, nil)
	if n := h.g.mgr.Stats("t").Processes; n != 1 {
		t.Fatalf("%d processes while the request waits for input, want 1", n)
	}
	eventually(t, 5*time.Second, "the waiting request's process to stop", func() bool { return h.g.mgr.Stats("t").Processes == 0 })
	if len(h.logs.find("client did not retry a request that needed input; cancelling it", nil)) != 1 {
		t.Error("expiry was not logged")
	}
	params["requestState"] = ir.RequestState
	params["inputResponses"] = map[string]any{}
	if r := h.post("t", modernBody(2, "tools/call", params), modernHdr("tools/call", "sample")); r.Status != 400 || r.errorCode() != -32602 {
		t.Errorf("late retry: %d %s, want 400 -32602", r.Status, r.Body)
	}
}

// TestModernShutdownStopsRequestProcesses: a shutdown whose deadline passes
// with a modern request running stops that request's own process (launcher
// mode) and answers the client with one error on its stream.
func TestModernShutdownStopsRequestProcesses(t *testing.T) {
	h := newHarness(t, oneServer(""))
	params := callParams("sleep", map[string]any{"ms": 60000})
	meta := modernMeta()
	meta["progressToken"] = "p"
	params["_meta"] = meta
	resp, _ := h.postStream("t", modernBody(1, "tools/call", params), modernHdr("tools/call", "sleep"))
	ev := sseEvents(t, resp)
	next(t, ev, "progress: the request is running in its process")
	start := time.Now()
	h.shutdown(300 * time.Millisecond)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	m := next(t, ev, "the error")
	for m["method"] == "notifications/progress" {
		m = next(t, ev, "the error")
	}
	if e, _ := m["error"].(map[string]any); e == nil || e["code"] != float64(-32002) || m["id"] != float64(1) {
		t.Errorf("final message = %v, want the request's -32002 error", m)
	}
	ended := h.logs.find("backend ended", nil)
	if len(ended) != 1 {
		t.Fatalf("%d processes ended, want 1", len(ended))
	}
	var pid int
	fmt.Sscan(fmt.Sprint(ended[0]["process"]), &pid)
	if pid == 0 || processAlive(pid) {
		t.Errorf("process %d outlived the shutdown", pid)
	}
}

// TestModernGoSDKSubscribe: the Go SDK client's Subscribe, which under
// 2026-07-28 opens a subscriptions/listen stream for the URI, receives the
// session-era server's resource updates through a daemon pool.
func TestModernGoSDKSubscribe(t *testing.T) {
	h := newHarness(t, oneServer("    mode: daemon\n"))
	updated := make(chan string, 8)
	cs := h.connectVersion("t", &mcp.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *mcp.ResourceUpdatedNotificationRequest) { updated <- req.Params.URI },
	}, &http.Transport{}, nil)
	if err := cs.Subscribe(context.Background(), &mcp.SubscribeParams{URI: "file:///z"}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	callText(t, cs, "touch", map[string]any{"uri": "file:///other"})
	callText(t, cs, "touch", map[string]any{"uri": "file:///z"})
	select {
	case uri := <-updated:
		if uri != "file:///z" {
			t.Errorf("update for %q, want file:///z only", uri)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no resources/updated within 10s")
	}
	if err := cs.Unsubscribe(context.Background(), &mcp.UnsubscribeParams{URI: "file:///z"}); err != nil {
		t.Errorf("unsubscribe: %v", err)
	}
}
