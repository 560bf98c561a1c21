//lint:file-ignore SA1019 session-era servers (server-everything) still use sampling (deprecated in 2026-07-28); the gateway must route it.

package interop

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/demo"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// The Go SDK client (the version in go.mod) against the npm servers, through
// the gateway, over Streamable HTTP and HTTP+SSE, in launcher and daemon
// mode.

// transports are the client transports of the Go SDK the gateway serves:
// Streamable HTTP with the client's default protocol version (2026-07-28,
// the stateless path) and pinned to the newest session-based one, and
// HTTP+SSE.
var transports = []string{"streamable", "streamable-2025-11-25", "sse"}

// tsTransports are the TypeScript SDK client's (1.x: session-based
// protocol versions only).
var tsTransports = []string{"streamable", "sse"}

// servers pairs a gateway server name with its mode, for test names.
var everythingServers = []struct{ name, mode string }{{"ev", "launcher"}, {"evd", "daemon"}}

const sampledText = "sampled by the Go interop client"

// elicitedName is what the Go interop client answers to an elicitation.
const elicitedName = "Ada through the interop client"

// connectGo opens a Go SDK client session to server over transport.
func connectGo(t *testing.T, f *fixture, server, transport string, opts *mcp.ClientOptions, roots ...*mcp.Root) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgw-interop-go", Version: "1"}, opts)
	client.AddRoots(roots...)
	hc := &http.Client{Transport: &http.Transport{}}
	var tr mcp.Transport
	var so *mcp.ClientSessionOptions
	switch transport {
	case "streamable":
		tr = &mcp.StreamableClientTransport{Endpoint: f.url(server), HTTPClient: hc}
	case "streamable-2025-11-25":
		tr = &mcp.StreamableClientTransport{Endpoint: f.url(server), HTTPClient: hc}
		so = &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"}
	case "sse":
		tr = &mcp.SSEClientTransport{Endpoint: f.url(server) + "/sse", HTTPClient: hc}
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	// Not a context with a deadline: the SDK's SSE transport keeps using
	// Connect's context for its GET stream, which would end with it.
	cs, err := client.Connect(t.Context(), tr, so)
	if err != nil {
		t.Fatalf("connect to %s over %s: %v", server, transport, err)
	}
	want := "2025-11-25"
	if transport == "streamable" {
		want = "2026-07-28"
	}
	if v := cs.InitializeResult().ProtocolVersion; v != want {
		t.Errorf("%s over %s negotiated %s, want %s", server, transport, v, want)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		hc.CloseIdleConnections()
	})
	return cs
}

// texts returns the text contents of a tool result.
func texts(res *mcp.CallToolResult) []string {
	var out []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			out = append(out, tc.Text)
		}
	}
	return out
}

func callTexts(t *testing.T, cs *mcp.ClientSession, p *mcp.CallToolParams) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, p)
	if err != nil {
		t.Fatalf("call %s: %v", p.Name, err)
	}
	if res.IsError {
		t.Fatalf("call %s: tool error %q", p.Name, texts(res))
	}
	return texts(res)
}

type progressLog struct {
	mu   sync.Mutex
	seen []string
}

func (l *progressLog) add(_ context.Context, req *mcp.ProgressNotificationClientRequest) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, fmt.Sprintf("%s %v/%v", req.Params.ProgressToken, req.Params.Progress, req.Params.Total))
}

func (l *progressLog) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seen)
}

func TestEverythingGoSDK(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, srv := range everythingServers {
		for _, transport := range transports {
			t.Run(srv.mode+"/"+transport, func(t *testing.T) {
				progress := &progressLog{}
				cs := connectGo(t, f, srv.name, transport, &mcp.ClientOptions{
					ProgressNotificationHandler: progress.add,
					CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
						var prompt string
						if len(req.Params.Messages) > 0 {
							if tc, ok := req.Params.Messages[0].Content.(*mcp.TextContent); ok {
								prompt = tc.Text
							}
						}
						return &mcp.CreateMessageResult{Model: "interop-model", Role: "assistant",
							Content: &mcp.TextContent{Text: sampledText + " for: " + prompt}}, nil
					},
				})
				ctx := t.Context()
				init := cs.InitializeResult()
				if init.ServerInfo.Name != "mcp-servers/everything" {
					t.Errorf("server name = %q, want mcp-servers/everything", init.ServerInfo.Name)
				}
				t.Logf("negotiated %s over %s", init.ProtocolVersion, transport)

				tools, err := cs.ListTools(ctx, nil)
				if err != nil {
					t.Fatalf("tools/list: %v", err)
				}
				var names []string
				for _, tool := range tools.Tools {
					names = append(names, tool.Name)
				}
				for _, want := range []string{"echo", "get-sum", "trigger-long-running-operation", "trigger-sampling-request"} {
					if !slices.Contains(names, want) {
						t.Errorf("tools/list lacks %q: %v", want, names)
					}
				}

				if got := callTexts(t, cs, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "hi from go"}}); !slices.Equal(got, []string{"Echo: hi from go"}) {
					t.Errorf("echo = %q", got)
				}
				if got := callTexts(t, cs, &mcp.CallToolParams{Name: "get-sum", Arguments: map[string]any{"a": 19, "b": 23}}); !slices.Equal(got, []string{"The sum of 19 and 23 is 42."}) {
					t.Errorf("get-sum = %q", got)
				}

				prompt, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "args-prompt", Arguments: map[string]string{"city": "Porto"}})
				if err != nil {
					t.Fatalf("prompts/get: %v", err)
				}
				if len(prompt.Messages) != 1 || prompt.Messages[0].Content.(*mcp.TextContent).Text != "What's weather in Porto?" {
					t.Errorf("args-prompt = %+v", prompt.Messages)
				}

				res, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "demo://resource/dynamic/text/3"})
				if err != nil {
					t.Fatalf("resources/read: %v", err)
				}
				if len(res.Contents) != 1 || !strings.HasPrefix(res.Contents[0].Text, "Resource 3: This is a plaintext resource") {
					t.Errorf("resource = %+v", res.Contents)
				}

				// Progress: three steps, each reported with the client's own
				// token (the gateway rewrites it on the way in and back).
				p := &mcp.CallToolParams{Name: "trigger-long-running-operation", Arguments: map[string]any{"duration": 0.3, "steps": 3}}
				p.SetProgressToken("go-progress")
				if got := callTexts(t, cs, p); !slices.Equal(got, []string{"Long running operation completed. Duration: 0.3 seconds, Steps: 3."}) {
					t.Errorf("long-running = %q", got)
				}
				want := []string{"go-progress 1/3", "go-progress 2/3", "go-progress 3/3"}
				// Notification handlers may run after the result.
				testutil.WaitUntil(5*time.Second, func() bool { return len(progress.get()) >= len(want) })
				if diff := cmp.Diff(want, progress.get()); diff != "" {
					t.Errorf("progress notifications (-want +got):\n%s", diff)
				}

				// Sampling: the server asks this client for a completion in
				// the middle of a tool call and reports what it got.
				got := strings.Join(callTexts(t, cs, &mcp.CallToolParams{Name: "trigger-sampling-request", Arguments: map[string]any{"prompt": "ping", "maxTokens": 5}}), "\n")
				if !strings.Contains(got, sampledText+" for: Resource trigger-sampling-request context: ping") {
					t.Errorf("sampling result = %q, want the client's answer in it", got)
				}

				// Elicitation, which this client did not declare: in launcher
				// mode the server sees the client's own capabilities and does
				// not offer the tool; in daemon mode the gateway declared it
				// for the shared process, and refuses the server's request on
				// behalf of this client, which gets a tool error, not a hang.
				hasElicit := slices.Contains(names, "trigger-elicitation-request")
				if srv.mode == "launcher" && hasElicit {
					t.Errorf("launcher: trigger-elicitation-request listed for a client without elicitation")
				}
				switch {
				case srv.mode == "daemon" && transport == "streamable":
					// 2026-07-28: the request fails with
					// MissingRequiredClientCapability (-32021).
					_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "trigger-elicitation-request", Arguments: map[string]any{}})
					if err == nil || !strings.Contains(err.Error(), "-32021") && !strings.Contains(err.Error(), `"elicitation"`) {
						t.Errorf("daemon, modern: elicitation for a client without the capability: err = %v, want -32021", err)
					}
				case srv.mode == "daemon":
					res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "trigger-elicitation-request", Arguments: map[string]any{}})
					if err != nil {
						t.Fatalf("trigger-elicitation-request: %v", err)
					}
					if got := strings.Join(texts(res), ""); !res.IsError || !strings.Contains(got, "did not declare support for elicitation/create") {
						t.Errorf("daemon: elicitation for a client without the capability: isError=%v %q", res.IsError, got)
					}
				}
			})
		}
	}
}

func TestFilesystemGoSDK(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, srv := range []struct{ name, mode string }{{"fs", "launcher"}, {"fsd", "daemon"}} {
		for _, transport := range transports {
			t.Run(srv.mode+"/"+transport, func(t *testing.T) {
				const rootsLine = "No valid root directories provided by client"
				before := strings.Count(f.logs.String(), rootsLine) // subtests run one at a time
				cs := connectGo(t, f, srv.name, transport, nil)
				if name := cs.InitializeResult().ServerInfo.Name; name != "secure-filesystem-server" {
					t.Errorf("server name = %q", name)
				}
				tools, err := cs.ListTools(t.Context(), nil)
				if err != nil {
					t.Fatalf("tools/list: %v", err)
				}
				var names []string
				for _, tool := range tools.Tools {
					names = append(names, tool.Name)
				}
				for _, want := range []string{"list_directory", "read_text_file", "list_allowed_directories"} {
					if !slices.Contains(names, want) {
						t.Errorf("tools/list lacks %q: %v", want, names)
					}
				}
				if got := callTexts(t, cs, &mcp.CallToolParams{Name: "list_directory", Arguments: map[string]any{"path": f.fsDir}}); !slices.Equal(got, []string{"[FILE] hello.txt\n[DIR] sub"}) {
					t.Errorf("list_directory = %q", got)
				}
				if got := callTexts(t, cs, &mcp.CallToolParams{Name: "read_text_file", Arguments: map[string]any{"path": filepath.Join(f.fsDir, "hello.txt")}}); !slices.Equal(got, []string{"hello interop\n"}) {
					t.Errorf("read_text_file = %q", got)
				}
				// Outside the served directory: a tool error, not a protocol one.
				res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "read_text_file", Arguments: map[string]any{"path": "/etc/hostname"}})
				if err != nil {
					t.Fatalf("read outside: %v", err)
				}
				if got := strings.Join(texts(res), ""); !res.IsError || !strings.Contains(got, "Access denied") {
					t.Errorf("read outside the served directory: isError=%v %q, want an access-denied tool error", res.IsError, got)
				}
				if srv.mode == "launcher" && transport != "streamable" {
					// The Go client declares roots; the server asked for them
					// (a server→client request through the gateway), got the
					// client's empty list, and says so on stderr, which the
					// gateway logs.
					seen := func() bool { return strings.Count(f.logs.String(), rootsLine) > before }
					if !testutil.WaitUntil(5*time.Second, seen) {
						t.Errorf("server-filesystem never reported the client's roots (%q on its stderr)", rootsLine)
					}
				}
			})
		}
	}
}

// TestDemoGoSDK: the Go SDK client with a Go SDK server (mcpgw's demo
// server, which also speaks 2026-07-28) behind the gateway, over every
// transport: modern requests pass through, session-era ones use the
// gateway's initialize.
func TestDemoGoSDK(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, srv := range []struct{ name, mode string }{{"demo", "launcher"}, {"demod", "daemon"}} {
		for _, transport := range transports {
			t.Run(srv.mode+"/"+transport, func(t *testing.T) {
				cs := connectGo(t, f, srv.name, transport, nil)
				if name := cs.InitializeResult().ServerInfo.Name; name != demo.Name {
					t.Errorf("server name = %q", name)
				}
				if got := callTexts(t, cs, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello demo from go"}}); !slices.Equal(got, []string{"hello demo from go"}) {
					t.Errorf("echo = %q", got)
				}
			})
		}
	}
}
