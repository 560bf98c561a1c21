//lint:file-ignore SA1019 session-era clients still use logging and sampling (deprecated in 2026-07-28); the gateway must route them.

package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const baseYAML = `listen: 127.0.0.1:0
servers:
`

func oneServer(extra string) string { return baseYAML + serverYAML("t", extra) }

func TestInitializeListCall(t *testing.T) {
	h := newHarness(t, oneServer(""))
	cs := h.connect("t", nil)
	if got := cs.InitializeResult().ServerInfo.Name; got != "mcpgw-testserver" {
		t.Errorf("server name = %q, want mcpgw-testserver", got)
	}
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tl := range tools.Tools {
		names[tl.Name] = true
	}
	for _, want := range []string{"echo", "sleep", "crash"} {
		if !names[want] {
			t.Errorf("tools/list lacks %q (got %v)", want, names)
		}
	}
	if got := callText(t, cs, "echo", map[string]any{"text": "hello"}); got != "hello" {
		t.Errorf("echo = %q, want hello", got)
	}
}

func TestDemoServerThroughGateway(t *testing.T) {
	h := newHarness(t, `listen: 127.0.0.1:0
servers:
  demo:
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
`)
	cs := h.connect("demo", nil)
	if got := callText(t, cs, "echo", map[string]any{"text": "via gateway"}); got != "via gateway" {
		t.Errorf("echo = %q", got)
	}
	if got := callText(t, cs, "now", map[string]any{}); !strings.Contains(got, "20") {
		t.Errorf("now = %q, want a timestamp", got)
	}
}

func TestSessionsAreIsolated(t *testing.T) {
	h := newHarness(t, oneServer("    max_concurrent: 20\n"))
	type got struct {
		mu   sync.Mutex
		logs []string
	}
	var a, b got
	mk := func(g *got) *mcp.ClientOptions {
		return &mcp.ClientOptions{LoggingMessageHandler: func(_ context.Context, req *mcp.LoggingMessageRequest) {
			g.mu.Lock()
			g.logs = append(g.logs, fmt.Sprint(req.Params.Data))
			g.mu.Unlock()
		}}
	}
	ca := h.connect("t", mk(&a))
	cb := h.connect("t", mk(&b))
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); callText(t, ca, "log", map[string]any{"level": "info", "text": "from-a"}) }()
		go func() { defer wg.Done(); callText(t, cb, "log", map[string]any{"level": "info", "text": "from-b"}) }()
	}
	wg.Wait()
	// Logs sent while several calls were in flight travel on the GET
	// stream, which may deliver them just after the calls return.
	eventually(t, 5*time.Second, "every log notification", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(a.logs) >= 5 && len(b.logs) >= 5
	})
	for _, c := range []struct {
		name string
		g    *got
		own  string
	}{{"a", &a, "from-a"}, {"b", &b, "from-b"}} {
		c.g.mu.Lock()
		if len(c.g.logs) == 0 {
			t.Errorf("session %s received no log notifications", c.name)
		}
		for _, l := range c.g.logs {
			if l != c.own {
				t.Errorf("session %s received %q, which belongs to another session", c.name, l)
			}
		}
		c.g.mu.Unlock()
	}
	// Each session has its own process.
	pa := whoami(t, ca)["pid"]
	pb := whoami(t, cb)["pid"]
	if pa == pb {
		t.Errorf("both sessions share process %v", pa)
	}
}

func whoami(t testing.TB, cs *mcp.ClientSession) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(callText(t, cs, "whoami", nil)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestProgressReachesItsOwnStream(t *testing.T) {
	h := newHarness(t, oneServer("    max_concurrent: 8\n"))
	type rec struct {
		mu     sync.Mutex
		tokens map[string]int
	}
	mk := func(r *rec) *mcp.ClientOptions {
		return &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			r.mu.Lock()
			r.tokens[fmt.Sprint(req.Params.ProgressToken)]++
			r.mu.Unlock()
		}}
	}
	ra, rb := &rec{tokens: map[string]int{}}, &rec{tokens: map[string]int{}}
	ca, cb := h.connect("t", mk(ra)), h.connect("t", mk(rb))
	var wg sync.WaitGroup
	call := func(cs *mcp.ClientSession, token string) {
		defer wg.Done()
		p := &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 300}}
		p.SetProgressToken(token)
		if _, err := cs.CallTool(context.Background(), p); err != nil {
			t.Errorf("sleep: %v", err)
		}
	}
	wg.Add(4)
	go call(ca, "a1")
	go call(ca, "a2")
	go call(cb, "b1")
	go call(cb, "b2")
	wg.Wait()
	check := func(name string, r *rec, own ...string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, tok := range own {
			if r.tokens[tok] == 0 {
				t.Errorf("session %s got no progress for its token %s (got %v)", name, tok, r.tokens)
			}
		}
		if len(r.tokens) != len(own) {
			t.Errorf("session %s got progress for foreign tokens: %v", name, r.tokens)
		}
	}
	check("a", ra, "a1", "a2")
	check("b", rb, "b1", "b2")
}

func TestSamplingRoundTripOnPostStream(t *testing.T) {
	h := newHarness(t, oneServer(""))
	var asked atomic.Int32
	cs := h.connect("t", &mcp.ClientOptions{
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			asked.Add(1)
			return &mcp.CreateMessageResult{Model: "test-model", Role: "assistant", Content: &mcp.TextContent{Text: "sampled"}}, nil
		},
	})
	got := callText(t, cs, "sample", nil)
	if asked.Load() != 1 {
		t.Errorf("sampling handler called %d times, want 1", asked.Load())
	}
	if !strings.Contains(got, "sampled") || !strings.Contains(got, "test-model") {
		t.Errorf("tool result %q does not carry the client's sampling answer", got)
	}
}

func TestListChangedReachesGetStream(t *testing.T) {
	h := newHarness(t, oneServer(""))
	changed := make(chan struct{}, 4)
	cs := h.connect("t", &mcp.ClientOptions{ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	callText(t, cs, "list_changed", nil)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("tools/list_changed never reached the client")
	}
}
