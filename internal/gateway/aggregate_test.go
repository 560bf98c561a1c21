//lint:file-ignore SA1019 session-era clients still use sampling (deprecated in 2026-07-28); the gateway must route it.

package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/aggregate"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// aggregateYAML is an aggregate "all" of a launcher test server (a), a
// daemon test server (b) and the demo server, with extra aggregate keys.
func aggregateYAML(extra string) string {
	return baseYAML + serverYAML("a", "") + serverYAML("b", "    mode: daemon\n") + `  demo:
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
  all:
    aggregate: [a, b, demo]
` + extra
}

func toolNames(t testing.TB, cs *mcp.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		names = append(names, tool.Name)
	}
	return names
}

func prefixed(member string, names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, member+"__"+n)
	}
	return out
}

// TestAggregateNames: under each prefix mode the aggregate lists every
// member's tools (as each member lists them on its own URL) with the names
// the mode gives them, and each call reaches the member that owns the name.
func TestAggregateNames(t *testing.T) {
	for _, prefix := range []string{"always", "conflicts", "never"} {
		t.Run(prefix, func(t *testing.T) {
			h := newHarness(t, aggregateYAML("    prefix: "+prefix+"\n"))
			direct := map[string][]string{}
			owners := map[string]int{}
			for _, m := range []string{"a", "b", "demo"} {
				direct[m] = toolNames(t, h.connect(m, nil))
				for _, n := range direct[m] {
					owners[n]++
				}
			}
			var want []string
			for _, m := range []string{"a", "b", "demo"} {
				for _, n := range direct[m] {
					switch {
					case prefix == "always" || prefix == "conflicts" && owners[n] > 1:
						want = append(want, m+"__"+n)
					case owners[n] == 1:
						want = append(want, n)
					}
				}
			}
			cs := h.connect("all", nil)
			if diff := cmp.Diff(want, toolNames(t, cs)); diff != "" {
				t.Errorf("tools/list (-want +got):\n%s", diff)
			}
			if prefix == "never" {
				if n := len(h.logs.find("aggregate name collision: no member serves this name", map[string]any{"name": "echo"})); n != 1 {
					t.Errorf("collision of echo logged %d times, want once", n)
				}
				// A name no member serves is an unknown tool.
				_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}})
				if err == nil || !strings.Contains(err.Error(), `unknown tool "echo"`) {
					t.Errorf("call to a colliding name: %v", err)
				}
				if got := callText(t, cs, "now", nil); got == "" {
					t.Error("demo's now through the aggregate answered nothing")
				}
				return
			}
			for _, tool := range []string{"a__echo", "b__echo", "demo__echo"} {
				if got := callText(t, cs, tool, map[string]any{"text": "hi " + tool}); !strings.Contains(got, "hi "+tool) {
					t.Errorf("%s = %q", tool, got)
				}
			}
			// whoami answers with the process's pid: a and b are two processes.
			if callText(t, cs, "a__whoami", nil) == callText(t, cs, "b__whoami", nil) {
				t.Error("a__whoami and b__whoami reached the same process")
			}
		})
	}
}

// TestAggregateShortName: a member's name that would be longer than 64
// characters with its prefix is shortened as package aggregate documents,
// and a call under the short name reaches the member's tool.
func TestAggregateShortName(t *testing.T) {
	member := "m" + strings.Repeat("x", 62) // the longest server name: 63 characters
	h := newHarness(t, baseYAML+serverYAML(member, "")+"  all:\n    aggregate: ["+member+"]\n")
	cs := h.connect("all", nil)
	names := toolNames(t, cs)
	short := aggregate.Shorten(member + "__echo")
	if len(short) != 64 || !slices.Contains(names, short) {
		t.Fatalf("tools/list = %v, want %q (64 characters)", names, short)
	}
	for _, n := range names {
		if len(n) > 64 {
			t.Errorf("%q has %d characters", n, len(n))
		}
	}
	if got := callText(t, cs, short, map[string]any{"text": "short"}); got != "short" {
		t.Errorf("echo through %s = %q", short, got)
	}
}

// TestAggregateSessionTraffic: progress, sampling, logging and list_changed
// travel between the client and whichever member is involved, in launcher
// (a) and daemon (b) mode.
func TestAggregateSessionTraffic(t *testing.T) {
	h := newHarness(t, aggregateYAML(""))
	var mu sync.Mutex
	var progress []string
	changed := make(chan struct{}, 16)
	cs := h.connect("all", &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, fmt.Sprint(req.Params.ProgressToken))
			mu.Unlock()
		},
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "sampled"}}, nil
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
	})
	ctx := context.Background()
	for _, member := range []string{"a", "b"} {
		t.Run(member, func(t *testing.T) {
			p := &mcp.CallToolParams{Name: member + "__sleep", Arguments: map[string]any{"ms": 120}}
			p.SetProgressToken("tok-" + member)
			if _, err := cs.CallTool(ctx, p); err != nil {
				t.Fatalf("sleep: %v", err)
			}
			testutil.WaitUntil(5*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return slices.Contains(progress, "tok-"+member)
			})
			mu.Lock()
			if !slices.Contains(progress, "tok-"+member) {
				t.Errorf("no progress with the client's token tok-%s: %v", member, progress)
			}
			mu.Unlock()

			if got := callText(t, cs, member+"__sample", map[string]any{"text": "q"}); !strings.Contains(got, "sampled") {
				t.Errorf("sample = %q, want the client's sampled text", got)
			}

			// list_changed from the member becomes the aggregate's.
			for len(changed) > 0 {
				<-changed
			}
			callText(t, cs, member+"__list_changed", nil)
			select {
			case <-changed:
			case <-time.After(5 * time.Second):
				t.Fatal("no notifications/tools/list_changed through the aggregate")
			}
			if names := toolNames(t, cs); !slices.Contains(names, member+"__echo") {
				t.Errorf("tools after list_changed = %v", names)
			}
		})
	}
	if err := cs.SetLoggingLevel(ctx, &mcp.SetLoggingLevelParams{Level: "info"}); err != nil {
		t.Errorf("logging/setLevel: %v", err)
	}
}

// TestAggregateMemberCrash: a launcher member that crashes disappears from
// the lists (the client is told), the others keep working, /readyz names
// it, and it comes back, with list_changed, when it is started again.
func TestAggregateMemberCrash(t *testing.T) {
	h := newHarness(t, aggregateYAML(""))
	changed := make(chan struct{}, 16)
	cs := h.connect("all", &mcp.ClientOptions{
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
	})
	if names := toolNames(t, cs); !slices.Contains(names, "a__echo") {
		t.Fatalf("tools = %v", names)
	}
	_, _ = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "a__crash", Arguments: map[string]any{"code": 3}})
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no list_changed after the member crashed")
	}
	if got := callText(t, cs, "b__echo", map[string]any{"text": "still"}); got != "still" {
		t.Errorf("b__echo after a crashed = %q", got)
	}
	if len(h.logs.find("aggregate member ended; its tools, prompts and resources are left out until it is back", map[string]any{"member": "a"})) != 1 {
		t.Error("the crash is not logged once with the member's name")
	}
	// It is started again at once: list_changed again, and its tools are back.
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no list_changed after the member came back")
	}
	if names := toolNames(t, cs); !slices.Contains(names, "a__echo") {
		t.Errorf("tools after the restart = %v", names)
	}
	if got := callText(t, cs, "a__echo", map[string]any{"text": "back"}); got != "back" {
		t.Errorf("a__echo after the restart = %q", got)
	}
	if len(h.logs.find("aggregate member is back", map[string]any{"member": "a"})) != 1 {
		t.Error("the recovery is not logged")
	}
}

// TestAggregateMemberDownReadiness: a member that cannot start is left out
// (the others serve), named in the log and in /readyz detail; with
// on_member_error: fail the aggregate refuses to start instead.
func TestAggregateMemberDownReadiness(t *testing.T) {
	broken := "  broken:\n    command: [\"${TESTBIN}\"]\n    env: {MCPGW_TESTSERVER: \"1\", MCPGW_TESTSERVER_NO_INIT: \"1\"}\n    timeouts: {startup: 300ms}\n"
	t.Run("skip", func(t *testing.T) {
		h := newHarness(t, baseYAML+serverYAML("a", "")+broken+"  all:\n    aggregate: [a, broken]\n")
		cs := h.connect("all", nil)
		if diff := cmp.Diff(prefixed("a", toolNames(t, h.connect("a", nil))), toolNames(t, cs)); diff != "" {
			t.Errorf("tools (-want +got):\n%s", diff)
		}
		if len(h.logs.find("aggregate member cannot start; it is left out", map[string]any{"member": "broken"})) == 0 {
			t.Error("the member that cannot start is not logged")
		}
		resp, err := http.Get(h.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		var rd struct {
			Servers map[string]struct {
				Ready  bool
				Detail string
			}
		}
		_ = json.NewDecoder(resp.Body).Decode(&rd)
		resp.Body.Close()
		if s := rd.Servers["all"]; s.Ready || !strings.Contains(s.Detail, "broken") {
			t.Errorf("/readyz detail of all = %+v, want the member named", s)
		}
	})
	t.Run("fail", func(t *testing.T) {
		h := newHarness(t, baseYAML+serverYAML("a", "")+broken+"  all:\n    aggregate: [a, broken]\n    on_member_error: fail\n")
		resp := h.post("all", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, nil)
		if resp.Status != http.StatusGatewayTimeout || !strings.Contains(string(resp.Body), `member \"broken\"`) {
			t.Errorf("initialize = %d %s, want 504 naming the member", resp.Status, resp.Body)
		}
	})
}

// TestAggregatePolicy: a member's own policy and the aggregate's (on the
// names the aggregate shows) both decide what each identity sees, and a
// hidden tool's call gets the unknown tool's answer.
func TestAggregatePolicy(t *testing.T) {
	h := newHarness(t, authYAML(nil, "")+
		serverYAML("a", "    policy: [{deny: 'identity.name == \"laptop\" && tool.name == \"crash\"'}]\n")+
		serverYAML("b", "")+`  all:
    aggregate: [a, b]
    tools: {deny: ["*__spawn_child"]}
    policy: [{deny: 'identity.name == "laptop" && tool.name.startsWith("b__")'}]
`)
	ci := h.connectAs("all", http.Header{"Authorization": {"Bearer " + ciToken}}, sessionEra)
	laptop := h.connectAs("all", http.Header{"Authorization": {"Bearer " + laptopToken}}, sessionEra)
	ciTools, laptopTools := toolNames(t, ci), toolNames(t, laptop)
	for _, c := range []struct {
		who        string
		got        []string
		has, hasnt []string
	}{
		{"ci", ciTools, []string{"a__crash", "a__echo", "b__echo"}, []string{"a__spawn_child", "b__spawn_child"}},
		{"laptop", laptopTools, []string{"a__echo"}, []string{"a__crash", "b__echo", "a__spawn_child"}},
	} {
		for _, n := range c.has {
			if !slices.Contains(c.got, n) {
				t.Errorf("%s does not see %s: %v", c.who, n, c.got)
			}
		}
		for _, n := range c.hasnt {
			if slices.Contains(c.got, n) {
				t.Errorf("%s sees %s", c.who, n)
			}
		}
	}
	for _, hidden := range []string{"b__echo", "a__crash"} {
		_, hiddenErr := laptop.CallTool(context.Background(), &mcp.CallToolParams{Name: hidden, Arguments: map[string]any{"text": "x", "code": 3}})
		_, unknownErr := laptop.CallTool(context.Background(), &mcp.CallToolParams{Name: "nosuch", Arguments: map[string]any{"text": "x", "code": 3}})
		if hiddenErr == nil || unknownErr == nil || hiddenErr.Error() != strings.ReplaceAll(unknownErr.Error(), "nosuch", hidden) {
			t.Errorf("hidden %s's answer = %v, want the unknown tool's %v", hidden, hiddenErr, unknownErr)
		}
	}
	if got := callText(t, laptop, "a__echo", map[string]any{"text": "alive"}); got != "alive" {
		t.Errorf("a__echo after the hidden calls = %q (did a get crash?)", got)
	}
	if got := callText(t, ci, "b__echo", map[string]any{"text": "ci"}); got != "ci" {
		t.Errorf("ci's b__echo = %q", got)
	}
}
