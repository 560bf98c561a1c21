package gateway

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

func connectSSE(t *testing.T, h *harness, server string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "sse-test", Version: "1"}, opts)
	hc := &http.Client{Transport: &http.Transport{}}
	cs, err := client.Connect(context.Background(), &mcp.SSEClientTransport{Endpoint: h.url(server) + "/sse", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatalf("SSE connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close(); hc.CloseIdleConnections() })
	return cs
}

func TestLegacySSE(t *testing.T) {
	for _, mode := range []string{"launcher", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, oneServer("    mode: "+mode+"\n    max_concurrent: 8\n"))
			progress := make(chan struct{}, 100)
			cs := connectSSE(t, h, "t", &mcp.ClientOptions{ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) {
				progress <- struct{}{}
			}})
			if got := callText(t, cs, "echo", map[string]any{"text": "over sse"}); got != "over sse" {
				t.Errorf("echo = %q", got)
			}
			p := &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 200}}
			p.SetProgressToken("tok")
			if _, err := cs.CallTool(context.Background(), p); err != nil {
				t.Fatal(err)
			}
			if len(progress) == 0 {
				t.Error("no progress over the SSE stream")
			}
			pid := int(whoami(t, cs)["pid"].(float64))
			_ = cs.Close() // the stream ends: so does the session
			eventually(t, 5*time.Second, "the session to end with its stream", func() bool { return h.g.mgr.Stats("t").Sessions == 0 })
			if mode == "launcher" {
				eventually(t, 5*time.Second, "its process to stop", func() bool { return !processAlive(pid) })
			}
		})
	}
}

func TestLegacySSEWireFormat(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\npublic_url: https://mcp.example.com\nlimits: {sse_keepalive: 100ms}\nservers:\n"+serverYAML("t", ""))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url("t")+"/sse", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	ev, _ := rd.ReadString('\n')
	data, _ := rd.ReadString('\n')
	if ev != "event: endpoint\n" || !strings.HasPrefix(data, "data: https://mcp.example.com/mcp/t/message?sessionId=") {
		t.Fatalf("first event %q %q: want the endpoint, absolute from public_url", ev, data)
	}
	msgURL := strings.TrimSpace(strings.TrimPrefix(data, "data: "))
	msgURL = h.base + msgURL[len("https://mcp.example.com"):]
	post := func(body string) int {
		r, err := http.Post(msgURL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if st := post(fmt.Sprintf(initBody, "2024-11-05")); st != http.StatusAccepted {
		t.Fatalf("initialize: %d, want 202", st)
	}
	sawInit, sawKeepAlive := false, false
	for !(sawInit && sawKeepAlive) {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v (init %v, keep-alive %v)", err, sawInit, sawKeepAlive)
		}
		sawInit = sawInit || (strings.HasPrefix(line, "data: ") && strings.Contains(line, `"protocolVersion":"2024-11-05"`))
		sawKeepAlive = sawKeepAlive || strings.HasPrefix(line, ": keep-alive")
	}
	// Unknown session and wrong methods.
	if r := h.do(mustReqBody(t, http.MethodPost, h.url("t")+"/message?sessionId=nope", `{}`)); r.Status != http.StatusNotFound {
		t.Errorf("unknown sessionId: %d, want 404", r.Status)
	}
	if r := h.do(mustReq(t, http.MethodPost, h.url("t")+"/sse")); r.Status != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET" {
		t.Errorf("POST /sse: %d Allow %q", r.Status, r.Header.Get("Allow"))
	}
}

func mustReqBody(t testing.TB, method, url, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}
