//lint:file-ignore SA1019 session-era servers (server-everything) still use sampling (deprecated in 2026-07-28); the gateway must route it.

package interop

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/clustertest"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/gateway"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// TestClusterTypeScript: the TypeScript SDK client runs a full session of
// server-everything (initialize, tools/list, calls, progress, sampling,
// the GET stream, DELETE) through Debian's haproxy in round-robin over three replicas,
// so that its requests land on replicas that do not own the session and
// are forwarded; every answer is right.
func TestClusterTypeScript(t *testing.T) {
	ne := requireNode(t)
	interopDir, err := filepath.EvalSymlinks(ne.dir)
	if err != nil {
		t.Fatal(err)
	}
	lns := make([]net.Listener, 3)
	var peers, addrs []string
	for i := range lns {
		if lns[i], err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, lns[i].Addr().String())
		peers = append(peers, `"http://`+lns[i].Addr().String()+`"`)
	}
	lb := clustertest.StartHAProxy(t, addrs)
	logs := make([]*testutil.Buffer, 3)
	for i, ln := range lns {
		yaml := fmt.Sprintf(`listen: 127.0.0.1:0
cluster:
  replica_id: r%d
  key_env: CLUSTER_KEY
  peers: [%s]
  refresh: 500ms
servers:
  ev:
    command: ["${NODE}", "${EVERYTHING}", "stdio"]
    read_paths: ["${INTEROP}"]
    max_concurrent: 8
`, i, strings.Join(peers, ", "))
		state := t.TempDir()
		vars := map[string]string{"NODE": ne.node, "EVERYTHING": ne.everything, "INTEROP": interopDir,
			"CLUSTER_KEY": strings.Repeat("k3y", 12), "XDG_STATE_HOME": state}
		cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) {
			if v, ok := vars[k]; ok {
				return v, true
			}
			return os.LookupEnv(k)
		})
		if err != nil {
			t.Fatalf("config: %v", err)
		}
		logs[i] = &testutil.Buffer{}
		g := gateway.New(cfg, &gateway.Options{Logger: slog.New(slog.NewJSONHandler(logs[i], nil)), Getenv: os.LookupEnv, Version: "interop-test"})
		done := make(chan error, 1)
		go func() { done <- g.Serve(ln) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := g.Shutdown(ctx); err != nil {
				t.Errorf("shutdown r%d: %v", i, err)
			}
			if err := <-done; err != nil {
				t.Errorf("serve r%d: %v", i, err)
			}
			if t.Failed() {
				lines := strings.Split(strings.TrimSpace(logs[i].String()), "\n")
				for _, l := range lines[max(0, len(lines)-30):] {
					t.Logf("r%d log: %.400s", i, l)
				}
			}
		})
	}
	// Every replica knows the others before the client starts.
	for i := range logs {
		for j := range logs {
			if i != j {
				logs[i].WaitFor(t, fmt.Sprintf(`"peer":"r%d"`, j), 10*time.Second)
			}
		}
	}

	f := &fixture{node: ne, base: lb.URL()}
	out := runTS(t, f, "streamable", "ev", "everything")
	sid := field[string](t, out, "sessionId")
	owner, _, _ := strings.Cut(sid, ".")
	if v := field[string](t, out, "protocolVersion"); v != "2025-11-25" {
		t.Errorf("negotiated %q, want 2025-11-25", v)
	}
	if tools := field[[]string](t, out, "tools"); len(tools) == 0 {
		t.Error("tools/list is empty")
	}
	if got := field[[]string](t, out, "echo"); len(got) != 1 || got[0] != "Echo: hello from ts" {
		t.Errorf("echo = %q", got)
	}
	if got := field[[]string](t, out, "sum"); len(got) != 1 || got[0] != "The sum of 2 and 40 is 42." {
		t.Errorf("get-sum = %q", got)
	}
	progress := field[struct {
		Wire []progressStep
		Text []string
	}](t, out, "progress")
	if len(progress.Wire) != 3 || len(progress.Text) != 1 || !strings.HasPrefix(progress.Text[0], "Long running operation completed") {
		t.Errorf("progress through the replicas: %+v, want three steps and the result", progress)
	}
	if got := strings.Join(field[[]string](t, out, "sampling"), "\n"); !strings.Contains(got, "sampled by the interop client") {
		t.Errorf("sampling through the replicas = %q, want the client's answer", got)
	}
	term := field[struct{ StatusAfter int }](t, out, "terminate")
	if term.StatusAfter != 404 {
		t.Errorf("a request after DELETE: %d, want 404 (from whichever replica took it)", term.StatusAfter)
	}
	// The session's requests reached replicas other than its owner, and
	// its GET stream (opened by the SDK after initialize) was answered
	// with a stream, wherever it landed.
	forwarded, gets := 0, 0
	for i, l := range logs {
		if fmt.Sprintf("r%d", i) != owner {
			forwarded += strings.Count(l.String(), sid)
		}
		for _, line := range l.JSONLines() {
			if line["session_id"] == sid && line["http_method"] == "GET" && line["status"] == float64(200) {
				gets++
			}
		}
	}
	if gets == 0 {
		t.Error("no replica logged the session's GET stream with 200")
	}
	if forwarded < 3 {
		t.Errorf("only %d log lines of replicas other than the owner %s name session %s: forwarding untested", forwarded, owner, sid)
	}

	// The Go SDK client in its default era (2026-07-28): each sampling
	// request is an MRTR round whose retry, carrying the requestState of
	// the replica that ran the first round, lands on the next replica,
	// which forwards it there.
	cs := connectGo(t, f, "ev", "streamable", &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			return &mcp.CreateMessageResult{Model: "interop-model", Role: "assistant", Content: &mcp.TextContent{Text: sampledText}}, nil
		},
	})
	if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("the Go SDK negotiated %s, want 2026-07-28", v)
	}
	for i := range 3 {
		got := strings.Join(callTexts(t, cs, &mcp.CallToolParams{Name: "trigger-sampling-request", Arguments: map[string]any{"prompt": "ping", "maxTokens": 5}}), "\n")
		if !strings.Contains(got, sampledText) {
			t.Errorf("MRTR round %d through haproxy = %q, want the client's answer", i, got)
		}
	}
	// A forwarded request keeps its X-Request-Id: it is logged by the
	// replica that forwarded it (an access line without the method, which
	// it does not read) and by the owner that ran it.
	on := map[string]map[int]bool{}
	calls := map[string]bool{}
	for i, l := range logs {
		for _, line := range l.JSONLines() {
			id, _ := line["request_id"].(string)
			if line["msg"] != "request" || id == "" {
				continue
			}
			if on[id] == nil {
				on[id] = map[int]bool{}
			}
			on[id][i] = true
			if line["method"] == "tools/call" && line["session_id"] == nil {
				calls[id] = true
			}
		}
	}
	hops := 0
	for id := range calls {
		if len(on[id]) > 1 {
			hops++
		}
	}
	if hops == 0 {
		t.Errorf("no 2026-07-28 tools/call was forwarded to another replica (%d calls): the MRTR retries were not tested across replicas", len(calls))
	}
}
