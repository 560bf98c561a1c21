//lint:file-ignore SA1019 session-era servers (server-everything) still use sampling (deprecated in 2026-07-28); the gateway must route it.

package interop

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/testutil"
)

// aggregateYAML publishes server-everything, server-filesystem,
// server-memory and the demo server in both modes, and an aggregate of
// each mode's four: all (launcher members) and alld (daemon members).
const aggregateYAML = `listen: 127.0.0.1:0
workspaces: {files: "${FSDIR}", mem: "${MEMDIR}"}
servers:
  ev:
    command: ["${NODE}", "${EVERYTHING}", "stdio"]
    read_paths: ["${INTEROP}"]
    max_concurrent: 8
  fs:
    command: ["${NODE}", "${FILESYSTEM}", "${FSDIR}"]
    read_paths: ["${INTEROP}"]
    workspaces: [{name: files, mode: ro}]
  memory:
    command: ["${NODE}", "${MEMORY}"]
    read_paths: ["${INTEROP}"]
    env: {MEMORY_FILE_PATH: "${MEMDIR}/launcher.jsonl"}
    workspaces: [{name: mem, mode: rw}]
  demo:
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
  evd:
    mode: daemon
    command: ["${NODE}", "${EVERYTHING}", "stdio"]
    read_paths: ["${INTEROP}"]
    max_concurrent: 8
  fsd:
    mode: daemon
    command: ["${NODE}", "${FILESYSTEM}", "${FSDIR}"]
    read_paths: ["${INTEROP}"]
    workspaces: [{name: files, mode: ro}]
  memoryd:
    mode: daemon
    command: ["${NODE}", "${MEMORY}"]
    read_paths: ["${INTEROP}"]
    env: {MEMORY_FILE_PATH: "${MEMDIR}/daemon.jsonl"}
    workspaces: [{name: mem, mode: rw}]
  demod:
    mode: daemon
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
  all:
    aggregate: [ev, fs, memory, demo]
    page_size: 5
  alld:
    aggregate: [evd, fsd, memoryd, demod]
    page_size: 5
`

// newAggregateFixture starts a gateway with aggregateYAML.
func newAggregateFixture(t *testing.T) *fixture {
	t.Helper()
	ne := requireNode(t)
	memory, err := packageBin(ne.dir, "@modelcontextprotocol/server-memory")
	if err != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatal(err)
		}
		t.Skipf("skipping: %v (run `npm ci` in interop/)", err)
	}
	fsDir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fsDir, "hello.txt"), []byte("hello interop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	memDir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	interopDir, err := filepath.EvalSymlinks(ne.dir)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"TESTBIN": self, "NODE": ne.node, "EVERYTHING": ne.everything, "FILESYSTEM": ne.filesystem,
		"MEMORY": memory, "FSDIR": fsDir, "MEMDIR": memDir, "INTEROP": interopDir}
	return startFixture(t, ne, aggregateYAML, vars, fsDir)
}

// listAll returns the names (tools, prompts) or URIs (resources,
// templates) of every page of a session's four lists.
func listAll(t *testing.T, cs *mcp.ClientSession) map[string][]string {
	t.Helper()
	ctx := t.Context()
	out := map[string][]string{}
	caps := cs.InitializeResult().Capabilities
	if caps.Tools != nil {
		for tool, err := range cs.Tools(ctx, nil) {
			if err != nil {
				t.Fatalf("tools/list: %v", err)
			}
			out["tools"] = append(out["tools"], tool.Name)
		}
	}
	if caps.Prompts != nil {
		for p, err := range cs.Prompts(ctx, nil) {
			if err != nil {
				t.Fatalf("prompts/list: %v", err)
			}
			out["prompts"] = append(out["prompts"], p.Name)
		}
	}
	if caps.Resources != nil {
		for r, err := range cs.Resources(ctx, nil) {
			if err != nil {
				t.Fatalf("resources/list: %v", err)
			}
			out["resources"] = append(out["resources"], r.URI)
		}
		for r, err := range cs.ResourceTemplates(ctx, nil) {
			if err != nil {
				t.Fatalf("resources/templates/list: %v", err)
			}
			out["templates"] = append(out["templates"], r.URITemplate)
		}
	}
	return out
}

// TestAggregateGoSDK: an aggregate of the four servers, in launcher and
// daemon mode, over Streamable HTTP (session era and 2026-07-28) and
// HTTP+SSE, with the Go SDK client: every member's tools and prompts listed under its prefix and
// every resource and template under its own URI, across pages; a call to
// each member; a prompt and a templated resource; progress, sampling,
// elicitation and (launcher) roots through the aggregate (in 2026-07-28,
// these are input_required rounds whose retry reaches the same member).
func TestAggregateGoSDK(t *testing.T) {
	t.Parallel()
	f := newAggregateFixture(t)
	for _, agg := range []struct {
		name, mode string
		members    []string
	}{
		{"all", "launcher", []string{"ev", "fs", "memory", "demo"}},
		{"alld", "daemon", []string{"evd", "fsd", "memoryd", "demod"}},
	} {
		for _, transport := range []string{"streamable-2025-11-25", "sse", "streamable"} {
			t.Run(agg.mode+"/"+transport, func(t *testing.T) {
				sampling := func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
					return &mcp.CreateMessageResult{Model: "interop-model", Role: "assistant",
						Content: &mcp.TextContent{Text: sampledText}}, nil
				}
				elicit := func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"name": elicitedName}}, nil
				}
				want := map[string][]string{}
				for _, m := range agg.members {
					// The same capabilities as the aggregate's client: a
					// launcher server lists its sampling and elicitation
					// tools only to a client that can sample and elicit.
					direct := listAll(t, connectGo(t, f, m, transport, &mcp.ClientOptions{CreateMessageHandler: sampling, ElicitationHandler: elicit}))
					for _, k := range []string{"tools", "prompts"} {
						for _, n := range direct[k] {
							want[k] = append(want[k], m+"__"+n)
						}
					}
					want["resources"] = append(want["resources"], direct["resources"]...)
					want["templates"] = append(want["templates"], direct["templates"]...)
				}
				if len(want["tools"]) <= 5 || len(want["resources"]) <= 5 {
					t.Fatalf("%d tools, %d resources: the test needs more than one page of the aggregate's (page_size 5)", len(want["tools"]), len(want["resources"]))
				}

				progress := &progressLog{}
				cs := connectGo(t, f, agg.name, transport, &mcp.ClientOptions{
					ProgressNotificationHandler: progress.add,
					CreateMessageHandler:        sampling,
					ElicitationHandler:          elicit,
				}, &mcp.Root{URI: "file:///interop-root", Name: "interop-root"})
				if diff := cmp.Diff(want, listAll(t, cs)); diff != "" {
					t.Errorf("lists through the aggregate (-want each member's own +got):\n%s", diff)
				}
				ev, fs, memory, demo := agg.members[0], agg.members[1], agg.members[2], agg.members[3]
				ctx := t.Context()

				if got := callTexts(t, cs, &mcp.CallToolParams{Name: ev + "__echo", Arguments: map[string]any{"message": "hi"}}); !slices.Equal(got, []string{"Echo: hi"}) {
					t.Errorf("%s__echo = %q", ev, got)
				}
				if got := callTexts(t, cs, &mcp.CallToolParams{Name: fs + "__read_text_file", Arguments: map[string]any{"path": filepath.Join(f.fsDir, "hello.txt")}}); !slices.Equal(got, []string{"hello interop\n"}) {
					t.Errorf("%s__read_text_file = %q", fs, got)
				}
				entity := "aggregate-" + agg.mode + "-" + transport
				callTexts(t, cs, &mcp.CallToolParams{Name: memory + "__create_entities", Arguments: map[string]any{
					"entities": []map[string]any{{"name": entity, "entityType": "test", "observations": []string{"through the aggregate"}}}}})
				graph := strings.Join(callTexts(t, cs, &mcp.CallToolParams{Name: memory + "__read_graph", Arguments: map[string]any{}}), "")
				if !strings.Contains(graph, entity) {
					t.Errorf("%s__read_graph = %q, want the entity just created", memory, graph)
				}
				if got := strings.Join(callTexts(t, cs, &mcp.CallToolParams{Name: demo + "__echo", Arguments: map[string]any{"text": "demo hi"}}), ""); !strings.Contains(got, "demo hi") {
					t.Errorf("%s__echo = %q", demo, got)
				}

				prompt, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: ev + "__args-prompt", Arguments: map[string]string{"city": "Porto"}})
				if err != nil {
					t.Fatalf("prompts/get: %v", err)
				}
				if len(prompt.Messages) != 1 || prompt.Messages[0].Content.(*mcp.TextContent).Text != "What's weather in Porto?" {
					t.Errorf("args-prompt = %+v", prompt.Messages)
				}
				res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo://resource/dynamic/text/3"})
				if err != nil {
					t.Fatalf("resources/read of a templated URI: %v", err)
				}
				if len(res.Contents) != 1 || !strings.HasPrefix(res.Contents[0].Text, "Resource 3: This is a plaintext resource") {
					t.Errorf("resource = %+v", res.Contents)
				}

				p := &mcp.CallToolParams{Name: ev + "__trigger-long-running-operation", Arguments: map[string]any{"duration": 0.3, "steps": 3}}
				p.SetProgressToken("agg-progress")
				callTexts(t, cs, p)
				wantProgress := []string{"agg-progress 1/3", "agg-progress 2/3", "agg-progress 3/3"}
				testutil.WaitUntil(5*time.Second, func() bool { return len(progress.get()) >= len(wantProgress) })
				if diff := cmp.Diff(wantProgress, progress.get()); diff != "" {
					t.Errorf("progress (-want +got):\n%s", diff)
				}
				got := strings.Join(callTexts(t, cs, &mcp.CallToolParams{Name: ev + "__trigger-sampling-request", Arguments: map[string]any{"prompt": "ping", "maxTokens": 5}}), "\n")
				if !strings.Contains(got, sampledText) {
					t.Errorf("sampling through the aggregate = %q, want the client's answer in it", got)
				}
				got = strings.Join(callTexts(t, cs, &mcp.CallToolParams{Name: ev + "__trigger-elicitation-request", Arguments: map[string]any{}}), "\n")
				if !strings.Contains(got, elicitedName) {
					t.Errorf("elicitation through the aggregate = %q, want the client's answer in it", got)
				}
				// Roots belong to one client: a daemon's shared process was
				// started without them and lists no roots tool.
				if agg.mode == "launcher" {
					got = strings.Join(callTexts(t, cs, &mcp.CallToolParams{Name: ev + "__get-roots-list", Arguments: map[string]any{}}), "\n")
					if !strings.Contains(got, "file:///interop-root") {
						t.Errorf("roots through the aggregate = %q, want the client's root in it", got)
					}
				}
				init, _ := json.Marshal(cs.InitializeResult().Instructions)
				t.Logf("instructions: %.200s", init)
			})
		}
	}
}
