//lint:file-ignore SA1019 the test server asks for sampling (deprecated in 2026-07-28); the gateway must relay it.

package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// modernConnect opens a Go SDK client session that speaks 2026-07-28.
func (h *harness) modernConnect(server string, opts *mcp.ClientOptions) *mcp.ClientSession {
	h.t.Helper()
	cs := h.connectVersion(server, opts, &http.Transport{}, nil)
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		h.t.Fatalf("%s: negotiated %s, want 2026-07-28", server, v)
	}
	return cs
}

// TestAggregateModern: a 2026-07-28 client (the Go SDK's default) gets
// from an aggregate of a launcher member (a), a daemon member (b) and the
// demo server what a session-era client gets: the same merged lists, paged
// with the aggregate's cursor, calls that reach each member, progress,
// sampling through input_required rounds, resources and prompts.
func TestAggregateModern(t *testing.T) {
	h := newHarness(t, aggregateYAML("    page_size: 3\n"))
	var mu sync.Mutex
	var progress []string
	cs := h.modernConnect("all", &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, fmt.Sprint(req.Params.ProgressToken))
			mu.Unlock()
		},
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "sampled " + req.Params.Messages[0].Content.(*mcp.TextContent).Text}}, nil
		},
	})
	ctx := context.Background()

	init := cs.InitializeResult()
	if sess := h.connect("all", nil).InitializeResult().Capabilities; init.Capabilities.Tools == nil || init.Capabilities.Resources == nil ||
		(init.Capabilities.Prompts == nil) != (sess.Prompts == nil) || (init.Capabilities.Completions == nil) != (sess.Completions == nil) {
		t.Errorf("discover capabilities = %+v, want the members' as initialize has them (%+v)", init.Capabilities, sess)
	}
	if !strings.Contains(init.Instructions, "## demo") {
		t.Errorf("instructions = %q, want the demo server's under its name", init.Instructions)
	}
	if init.ServerInfo == nil || init.ServerInfo.Name != "mcpgw-aggregate-all" {
		t.Errorf("serverInfo = %+v", init.ServerInfo)
	}

	t.Run("lists", func(t *testing.T) {
		session := h.connect("all", nil) // the session era's merged list is the reference
		want := toolNames(t, session)
		if len(want) < 7 {
			t.Fatalf("session-era tools = %v", want)
		}
		if diff := cmp.Diff(want, toolNames(t, cs)); diff != "" {
			t.Errorf("modern tools/list (-session +modern):\n%s", diff)
		}
		first, err := cs.ListTools(ctx, &mcp.ListToolsParams{})
		if err != nil {
			t.Fatal(err)
		}
		if len(first.Tools) != 3 || first.NextCursor == "" {
			t.Errorf("first page: %d tools, next %q; want 3 and a cursor (page_size: 3)", len(first.Tools), first.NextCursor)
		}
		if _, err := cs.ListTools(ctx, &mcp.ListToolsParams{Cursor: "mcpgw1.bm9wZQ"}); err == nil || !strings.Contains(err.Error(), "invalid cursor") {
			t.Errorf("a forged cursor: %v, want invalid cursor", err)
		}
		var prompts, resources []string
		for p, err := range cs.Prompts(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			prompts = append(prompts, p.Name)
		}
		for r, err := range cs.Resources(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			resources = append(resources, r.URI)
		}
		var sessPrompts, sessResources []string
		for p, err := range session.Prompts(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			sessPrompts = append(sessPrompts, p.Name)
		}
		for r, err := range session.Resources(ctx, nil) {
			if err != nil {
				t.Fatal(err)
			}
			sessResources = append(sessResources, r.URI)
		}
		if diff := cmp.Diff(sessPrompts, prompts); diff != "" {
			t.Errorf("prompts (-session +modern):\n%s", diff)
		}
		if diff := cmp.Diff(sessResources, resources); diff != "" || !slices.Contains(resources, "mcpgw:b:test://docs/readme") {
			t.Errorf("resources (-session +modern):\n%s (want b's readme wrapped: a shares it)", diff)
		}
	})

	t.Run("calls", func(t *testing.T) {
		for _, tool := range []string{"a__echo", "b__echo", "demo__echo"} {
			if got := callText(t, cs, tool, map[string]any{"text": "hi " + tool}); !strings.Contains(got, "hi "+tool) {
				t.Errorf("%s = %q", tool, got)
			}
		}
		if callText(t, cs, "a__whoami", nil) == callText(t, cs, "b__whoami", nil) {
			t.Error("a__whoami and b__whoami reached the same process")
		}
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "nosuch", Arguments: map[string]any{}})
		if err == nil || !strings.Contains(err.Error(), `unknown tool "nosuch"`) {
			t.Errorf("unknown tool: %v", err)
		}
		// The test server answers prompts/get but does not declare prompts:
		// as in the session era, it is not asked.
		if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "b__review"}); err == nil || !strings.Contains(err.Error(), `unknown prompt "b__review"`) {
			t.Errorf("b__review: %v, want an unknown prompt", err)
		}
		rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "mcpgw:b:test://docs/readme"})
		if err != nil || len(rr.Contents) != 1 || rr.Contents[0].URI != "mcpgw:b:test://docs/readme" {
			t.Errorf("read b's readme = %+v, %v; want its contents under the URI the list shows", rr, err)
		}
	})

	for _, member := range []string{"a", "b"} {
		t.Run("traffic-"+member, func(t *testing.T) {
			p := &mcp.CallToolParams{Name: member + "__sleep", Arguments: map[string]any{"ms": 120}}
			p.SetProgressToken("tok-" + member)
			if _, err := cs.CallTool(ctx, p); err != nil {
				t.Fatalf("sleep: %v", err)
			}
			mu.Lock()
			got := slices.Clone(progress)
			mu.Unlock()
			if !slices.Contains(got, "tok-"+member) {
				t.Errorf("no progress with the client's token tok-%s: %v", member, got)
			}
			if got := callText(t, cs, member+"__sample", map[string]any{"text": "q-" + member}); !strings.Contains(got, "sampled q-"+member) {
				t.Errorf("sample = %q, want the client's sampled text", got)
			}
		})
	}
}

// TestAggregateModernRequestState: an aggregate's input_required round
// carries a requestState that names its member; a retry whose state was
// changed, or that names another tool, is refused with -32602 and does not
// reach a member; the true retry gets the tool's result.
func TestAggregateModernRequestState(t *testing.T) {
	h := newHarness(t, aggregateYAML(""))
	params := sampleParams()
	params["name"] = "b__sample"
	first := h.post("all", modernBody(1, "tools/call", params), modernHdr("tools/call", "b__sample"))
	var res struct {
		Result inputRequired `json:"result"`
	}
	if json.Unmarshal(first.Body, &res) != nil || res.Result.ResultType != "input_required" {
		t.Fatalf("first round: %d %s, want input_required", first.Status, first.Body)
	}
	ir := res.Result
	if !strings.HasPrefix(ir.RequestState, "mcpgw-mrtr.agg~b~") {
		t.Fatalf("requestState %q does not name member b", ir.RequestState)
	}
	var key string
	for k := range ir.InputRequests {
		key = k
	}
	retry := func(id int, tool, state string) *rawResponse {
		p := callParams(tool, map[string]any{"text": "q"})
		p["_meta"] = sampleParams()["_meta"]
		p["requestState"] = state
		p["inputResponses"] = map[string]any{key: map[string]any{"role": "assistant", "model": "m", "content": map[string]any{"type": "text", "text": "A"}}}
		return h.post("all", modernBody(id, "tools/call", p), modernHdr("tools/call", tool))
	}
	tampered := map[string]string{
		"member":  strings.Replace(ir.RequestState, "agg~b~", "agg~a~", 1),
		"mac":     flipAt(ir.RequestState, strings.LastIndex(ir.RequestState, "~")-2),
		"inner":   ir.RequestState + "x",
		"garbage": "mcpgw-mrtr.agg~b~~~",
	}
	for name, state := range tampered {
		if r := retry(2, "b__sample", state); r.Status != http.StatusBadRequest || r.errorCode() != -32602 {
			t.Errorf("retry with a tampered %s: %d %s, want 400 -32602", name, r.Status, r.Body)
		}
	}
	if r := retry(3, "a__sample", ir.RequestState); r.Status != http.StatusBadRequest || r.errorCode() != -32602 {
		t.Errorf("retry redirected to a__sample: %d %s, want 400 -32602", r.Status, r.Body)
	}
	if n := len(h.logs.find("a retry's requestState does not match the aggregate's: refused", nil)); n < 3 {
		t.Errorf("%d refusals logged", n)
	}
	r := retry(4, "b__sample", ir.RequestState)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `\"text\":\"A\"`) || !strings.Contains(string(r.Body), `"id":4`) ||
		!strings.Contains(string(r.Body), `"mcpgw-aggregate-all"`) {
		t.Errorf("retry: %d %s, want the tool's result with the retry's id, as the aggregate's", r.Status, r.Body)
	}
	if r := retry(5, "b__sample", ir.RequestState); r.Status != http.StatusBadRequest || r.errorCode() != -32602 {
		t.Errorf("second use: %d %s, want 400 -32602", r.Status, r.Body)
	}
}

// flipAt changes the character at i of s to another of the base64url
// alphabet.
func flipAt(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// TestAggregateModernListen: subscriptions/listen to an aggregate is
// granted what its members grant (a daemon member: list changes and
// resource updates), and a member's notifications reach it with the
// aggregate's subscription id and URIs.
func TestAggregateModernListen(t *testing.T) {
	h := newHarness(t, aggregateYAML(""))
	cs := h.modernConnect("all", nil)
	if tools := cs.InitializeResult().Capabilities.Tools; tools == nil || !tools.ListChanged {
		t.Errorf("discover tools capability = %+v, want listChanged (b is a daemon)", tools)
	}
	listen := map[string]any{"notifications": map[string]any{"toolsListChanged": true,
		"resourceSubscriptions": []string{"mcpgw:b:test://docs/readme", "file:///y"}}}
	resp, _ := h.postStream("all", modernBody(42, "subscriptions/listen", listen), modernHdr("subscriptions/listen", ""))
	ev := sseEvents(t, resp)
	ack := next(t, ev, "the acknowledgment")
	if ack["method"] != "notifications/subscriptions/acknowledged" {
		t.Fatalf("ack = %v", ack)
	}
	n := ack["params"].(map[string]any)["notifications"].(map[string]any)
	if n["toolsListChanged"] != true || fmt.Sprint(n["resourceSubscriptions"]) != "[mcpgw:b:test://docs/readme file:///y]" {
		t.Errorf("acknowledged %v", n)
	}
	callText(t, cs, "b__list_changed", nil)
	m := next(t, ev, "tools/list_changed")
	if m["method"] != "notifications/tools/list_changed" ||
		m["params"].(map[string]any)["_meta"].(map[string]any)["io.modelcontextprotocol/subscriptionId"] != float64(42) {
		t.Fatalf("notification = %v", m)
	}
	callText(t, cs, "b__touch", map[string]any{"uri": "test://docs/readme"})
	m = next(t, ev, "resources/updated")
	if m["method"] != "notifications/resources/updated" || m["params"].(map[string]any)["uri"] != "mcpgw:b:test://docs/readme" {
		t.Fatalf("notification = %v, want the update under the URI the client subscribed", m)
	}
	// At most 64 resource URIs per stream, as for any server.
	var many []string
	for i := range 70 {
		many = append(many, fmt.Sprintf("mcpgw:b:file:///%d", i))
	}
	resp2, _ := h.postStream("all", modernBody(43, "subscriptions/listen", map[string]any{"notifications": map[string]any{"resourceSubscriptions": many}}),
		modernHdr("subscriptions/listen", ""))
	ack2 := next(t, sseEvents(t, resp2), "the second acknowledgment")
	if got := ack2["params"].(map[string]any)["notifications"].(map[string]any)["resourceSubscriptions"].([]any); len(got) != 64 || got[63] != many[63] {
		t.Errorf("granted %d URIs, want the first 64", len(got))
	}
	h.g.mgr.Drain()
	for m = next(t, ev, "the completion result"); m["id"] == nil; m = next(t, ev, "the completion result") {
	}
	if m["id"] != float64(42) || m["result"].(map[string]any)["resultType"] != "complete" {
		t.Errorf("completion = %v", m)
	}
}

// TestAggregateModernListenAfterCrash: a subscription stream on an
// aggregate outlives its daemon member's process. The member's listener
// belongs to the member server, not to the process, so the replacement
// process's list changes and resource updates reach the stream that was
// open before the crash, under the client's subscription id and URI. (The
// test server announces every touch whether subscribed or not, so this does
// not show the URI being subscribed on the new process; pool.go does that.)
func TestAggregateModernListenAfterCrash(t *testing.T) {
	h := newHarness(t, aggregateYAML(""))
	cs := h.modernConnect("all", nil)
	listen := map[string]any{"notifications": map[string]any{"toolsListChanged": true,
		"resourceSubscriptions": []string{"mcpgw:b:test://docs/readme"}}}
	resp, _ := h.postStream("all", modernBody(42, "subscriptions/listen", listen), modernHdr("subscriptions/listen", ""))
	ev := sseEvents(t, resp)
	if ack := next(t, ev, "the acknowledgment"); ack["method"] != "notifications/subscriptions/acknowledged" {
		t.Fatalf("ack = %v", ack)
	}
	pid := func() any { // of b's daemon process
		var w map[string]any
		if err := json.Unmarshal([]byte(callText(t, cs, "b__whoami", nil)), &w); err != nil {
			t.Fatal(err)
		}
		return w["pid"]
	}
	before := pid()
	if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "b__crash", Arguments: map[string]any{}}); err == nil {
		t.Fatal("b__crash answered: the member's process did not crash")
	}
	if after := pid(); after == before {
		t.Fatalf("b's process was not replaced: pid %v before and after the crash", after)
	}
	callText(t, cs, "b__list_changed", nil)
	m := next(t, ev, "tools/list_changed from the replacement process")
	if m["method"] != "notifications/tools/list_changed" ||
		m["params"].(map[string]any)["_meta"].(map[string]any)["io.modelcontextprotocol/subscriptionId"] != float64(42) {
		t.Fatalf("notification = %v", m)
	}
	callText(t, cs, "b__touch", map[string]any{"uri": "test://docs/readme"})
	m = next(t, ev, "resources/updated from the replacement process")
	if m["method"] != "notifications/resources/updated" || m["params"].(map[string]any)["uri"] != "mcpgw:b:test://docs/readme" {
		t.Fatalf("notification = %v, want the update under the URI the client subscribed", m)
	}
}

// TestAggregateModernMemberDown: a member that cannot start is absent
// from a modern client's lists and discover while the others serve; with
// on_member_error: fail the request fails naming the member.
func TestAggregateModernMemberDown(t *testing.T) {
	broken := "  broken:\n    command: [\"${TESTBIN}\"]\n    env: {MCPGW_TESTSERVER: \"1\", MCPGW_TESTSERVER_NO_INIT: \"1\"}\n    timeouts: {startup: 300ms}\n"
	t.Run("skip", func(t *testing.T) {
		h := newHarness(t, baseYAML+serverYAML("a", "    mode: daemon\n")+broken+"  all:\n    aggregate: [a, broken]\n")
		cs := h.modernConnect("all", nil)
		if diff := cmp.Diff(prefixed("a", toolNames(t, h.connect("a", nil))), toolNames(t, cs)); diff != "" {
			t.Errorf("tools (-want +got):\n%s", diff)
		}
		if got := callText(t, cs, "a__echo", map[string]any{"text": "up"}); got != "up" {
			t.Errorf("a__echo = %q", got)
		}
		if len(h.logs.find("aggregate member cannot start; it is left out", map[string]any{"member": "broken", "era": "modern"})) != 1 {
			t.Error("the member that cannot start is not logged once")
		}
	})
	t.Run("fail", func(t *testing.T) {
		h := newHarness(t, baseYAML+serverYAML("a", "")+broken+"  all:\n    aggregate: [a, broken]\n    on_member_error: fail\n")
		r := h.post("all", modernBody(1, "tools/list", nil), modernHdr("tools/list", ""))
		if r.Status != http.StatusGatewayTimeout || !strings.Contains(string(r.Body), `member \"broken\"`) {
			t.Errorf("tools/list = %d %s, want 504 naming the member", r.Status, r.Body)
		}
		r = h.post("all", modernBody(2, "server/discover", nil), modernHdr("server/discover", ""))
		if r.Status != http.StatusGatewayTimeout || !strings.Contains(string(r.Body), `member \"broken\"`) {
			t.Errorf("server/discover = %d %s, want 504 naming the member", r.Status, r.Body)
		}
	})
}

// TestAggregateModernPolicy: the aggregate's policy decides what a modern
// client sees, and a hidden tool's call gets the unknown tool's answer.
func TestAggregateModernPolicy(t *testing.T) {
	h := newHarness(t, authYAML(nil, "")+serverYAML("a", "")+serverYAML("b", "    mode: daemon\n")+`  all:
    aggregate: [a, b]
    tools: {deny: ["*__spawn_child"]}
    policy: [{deny: 'identity.name == "laptop" && tool.name.startsWith("b__")'}]
`)
	laptop := h.connectAs("all", http.Header{"Authorization": {"Bearer " + laptopToken}}, nil)
	if v := laptop.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("negotiated %s", v)
	}
	names := toolNames(t, laptop)
	if !slices.Contains(names, "a__echo") || slices.Contains(names, "b__echo") || slices.Contains(names, "a__spawn_child") {
		t.Errorf("laptop sees %v", names)
	}
	_, hiddenErr := laptop.CallTool(context.Background(), &mcp.CallToolParams{Name: "b__echo", Arguments: map[string]any{"text": "x"}})
	_, unknownErr := laptop.CallTool(context.Background(), &mcp.CallToolParams{Name: "nosuch", Arguments: map[string]any{"text": "x"}})
	if hiddenErr == nil || unknownErr == nil || hiddenErr.Error() != strings.ReplaceAll(unknownErr.Error(), "nosuch", "b__echo") {
		t.Errorf("hidden b__echo's answer = %v, want the unknown tool's %v", hiddenErr, unknownErr)
	}
}

// TestAggregateModernMemberDownAnnounced: a subscription stream on an
// aggregate hears tools/list_changed when a member fails to start (its
// tools leave the list) and again when it serves once more (they are back).
func TestAggregateModernMemberDownAnnounced(t *testing.T) {
	// A fresh process per request, so that the crash file decides each
	// request's fate.
	crash := filepath.Join(t.TempDir(), "crash")
	flaky := fmt.Sprintf("  flaky:\n    command: [\"${TESTBIN}\"]\n    isolation: request\n    env: {MCPGW_TESTSERVER: \"1\", MCPGW_TESTSERVER_CRASH_IF_EXISTS: %q}\n", crash)
	h := newHarness(t, baseYAML+serverYAML("b", "    mode: daemon\n")+flaky+"  all:\n    aggregate: [b, flaky]\n")
	cs := h.modernConnect("all", nil)
	resp, _ := h.postStream("all", modernBody(7, "subscriptions/listen", map[string]any{"notifications": map[string]any{"toolsListChanged": true}}),
		modernHdr("subscriptions/listen", ""))
	ev := sseEvents(t, resp)
	if ack := next(t, ev, "the acknowledgment"); ack["method"] != "notifications/subscriptions/acknowledged" {
		t.Fatalf("ack = %v", ack)
	}
	hasFlaky := func() bool {
		return slices.ContainsFunc(toolNames(t, cs), func(n string) bool { return strings.HasPrefix(n, "flaky__") })
	}
	if !hasFlaky() {
		t.Fatal("flaky's tools are not listed")
	}
	if err := os.WriteFile(crash, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if hasFlaky() {
		t.Fatal("flaky's tools are listed while it cannot start")
	}
	m := next(t, ev, "tools/list_changed after the member failed")
	if m["method"] != "notifications/tools/list_changed" ||
		m["params"].(map[string]any)["_meta"].(map[string]any)["io.modelcontextprotocol/subscriptionId"] != float64(7) {
		t.Fatalf("notification = %v", m)
	}
	if err := os.Remove(crash); err != nil {
		t.Fatal(err)
	}
	if !hasFlaky() {
		t.Fatal("flaky's tools are not back once it starts")
	}
	if m = next(t, ev, "tools/list_changed after the member came back"); m["method"] != "notifications/tools/list_changed" {
		t.Fatalf("notification = %v", m)
	}
	if !hasFlaky() {
		t.Fatal("flaky's tools left the list again")
	}
	select {
	case m := <-ev:
		t.Errorf("a third notification while the members stay as they are: %v", m)
	case <-time.After(200 * time.Millisecond):
	}
}
