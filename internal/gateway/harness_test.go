package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.uber.org/goleak"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/demo"
	"github.com/mcpgw/mcpgw/internal/proctest"
	"github.com/mcpgw/mcpgw/internal/sandbox"
	"github.com/mcpgw/mcpgw/internal/testserver"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// TestMain doubles as the test servers: the gateway under test starts this
// very binary as a real child process, either as the misbehaving test
// server or as the demo server.
func TestMain(m *testing.M) {
	if sandbox.Requested() {
		os.Exit(sandbox.Main())
	}
	if os.Getenv(testserver.EnvVar) == "1" {
		os.Exit(testserver.Main())
	}
	if os.Getenv("MCPGW_TEST_MODERN_ONLY") == "1" {
		os.Exit(modernOnlyServer())
	}
	if os.Getenv("MCPGW_TEST_DEMO") == "1" {
		if err := demo.Run(context.Background(), os.Stdin, os.Stdout, "test"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// logBuffer collects the gateway's JSON log lines.
type logBuffer struct{ testutil.Buffer }

// Lines returns the decoded log records.
func (b *logBuffer) Lines() []map[string]any { return b.JSONLines() }

// find returns the records with msg whose fields match.
func (b *logBuffer) find(msg string, fields map[string]any) []map[string]any {
	var out []map[string]any
	for _, l := range b.Lines() {
		if l["msg"] != msg {
			continue
		}
		ok := true
		for k, v := range fields {
			if fmt.Sprint(l[k]) != fmt.Sprint(v) {
				ok = false
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

type harness struct {
	t    testing.TB
	g    *Gateway
	base string // http://127.0.0.1:port
	logs *logBuffer
	cfg  *config.Config
	done chan error
}

// testConfig expands a YAML config in which ${TESTBIN} is this test binary.
func testConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	state := stateDirOf(t) // the default state_dir (servers' caches): not the user's
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) {
		switch k {
		case "TESTBIN":
			return self, true
		case "XDG_STATE_HOME":
			return state, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// stateDirs holds each test's default state_dir, one for all the configs
// a test parses (a reload keeps it).
var stateDirs sync.Map // testing.TB → string

func stateDirOf(t testing.TB) string {
	if d, ok := stateDirs.Load(t); ok {
		return d.(string)
	}
	d := t.TempDir()
	stateDirs.Store(t, d)
	t.Cleanup(func() { stateDirs.Delete(t) })
	return d
}

// serverYAML is a test-server entry; extra is indented YAML added to it.
func serverYAML(name, extra string) string {
	return fmt.Sprintf(`  %s:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1"}
%s`, name, extra)
}

// newHarness starts a gateway with cfgYAML on a loopback port.
func newHarness(t testing.TB, cfgYAML string) *harness {
	t.Helper()
	return newHarnessWith(t, cfgYAML, nil)
}

// newHarnessWith is newHarness with more options (the logger, environment
// and version are the harness's).
func newHarnessWith(t testing.TB, cfgYAML string, more *Options) *harness {
	t.Helper()
	cfg := testConfig(t, cfgYAML)
	logs := &logBuffer{}
	var lvl slog.Level // the config's level (info by default), as in production
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: lvl}))
	opts := &Options{}
	if more != nil {
		*opts = *more
	}
	opts.Logger, opts.Getenv, opts.Version = log, os.LookupEnv, "test"
	g := New(cfg, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, g: g, base: "http://" + ln.Addr().String(), logs: logs, cfg: cfg, done: make(chan error, 1)}
	go func() { h.done <- g.Serve(ln) }()
	t.Cleanup(func() {
		h.shutdown(10 * time.Second)
		if t.Failed() { // the gateway's view, for whoever reads the failure
			lines := logs.Lines()
			for _, l := range lines[max(0, len(lines)-60):] {
				b, _ := json.Marshal(l)
				t.Logf("gateway log: %.400s", b)
			}
		}
	})
	return h
}

func (h *harness) shutdown(timeout time.Duration) {
	select {
	case <-h.done:
		return // already shut down
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := h.g.Shutdown(ctx); err != nil {
		h.t.Errorf("shutdown: %v", err)
	}
	if err := <-h.done; err != nil {
		h.t.Errorf("serve: %v", err)
	}
	h.done <- nil
	http.DefaultClient.CloseIdleConnections()
}

func (h *harness) url(server string) string { return h.base + "/mcp/" + server }

// connect opens a Go SDK client session through the gateway.
func (h *harness) connect(server string, opts *mcp.ClientOptions) *mcp.ClientSession {
	h.t.Helper()
	return h.connectWith(server, opts, &http.Transport{})
}

// sessionEra pins a Go SDK client to the newest session-based protocol
// version; without it the client speaks 2026-07-28 (modern_test.go).
var sessionEra = &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"}

// connectWith is connect over a given HTTP transport.
func (h *harness) connectWith(server string, opts *mcp.ClientOptions, tr *http.Transport) *mcp.ClientSession {
	h.t.Helper()
	return h.connectVersion(server, opts, tr, sessionEra)
}

// connectVersion opens a Go SDK client session with session options so
// (nil: the client's default, 2026-07-28).
func (h *harness) connectVersion(server string, opts *mcp.ClientOptions, tr *http.Transport, so *mcp.ClientSessionOptions) *mcp.ClientSession {
	h.t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "gateway-test", Version: "1"}, opts)
	hc := &http.Client{Transport: tr}
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.url(server), HTTPClient: hc}, so)
	if err != nil {
		h.t.Fatalf("connect to %s: %v", server, err)
	}
	h.t.Cleanup(func() {
		_ = cs.Close()
		hc.CloseIdleConnections()
	})
	return cs
}

// callText calls a tool and returns its first text content.
func callText(t testing.TB, cs *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("call %s: %v", tool, err)
	}
	if len(res.Content) == 0 {
		t.Fatalf("call %s: no content", tool)
	}
	tc, ok := res.Content[0].(*mcp.TextContent)
	if !ok {
		t.Fatalf("call %s: content is %T", tool, res.Content[0])
	}
	return tc.Text
}

// rawResponse is a decoded HTTP exchange with the gateway.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// errorCode returns the JSON-RPC error code of the body, or 0.
func (r *rawResponse) errorCode() int {
	var m struct {
		Error *struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(r.Body, &m) != nil || m.Error == nil {
		return 0
	}
	return m.Error.Code
}

// post sends a raw POST with the usual MCP headers plus hdr.
func (h *harness) post(server, body string, hdr map[string]string) *rawResponse {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url(server), strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) *rawResponse {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("reading body: %v", err)
	}
	return &rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: body}
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"%s","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// rawSession initializes a session by hand and returns its id.
func (h *harness) rawSession(server, version string) string {
	h.t.Helper()
	r := h.post(server, fmt.Sprintf(initBody, version), nil)
	if r.Status != http.StatusOK {
		h.t.Fatalf("initialize: %d %s", r.Status, r.Body)
	}
	sid := r.Header.Get("Mcp-Session-Id")
	if sid == "" {
		h.t.Fatal("initialize: no Mcp-Session-Id")
	}
	r = h.post(server, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, map[string]string{"Mcp-Session-Id": sid})
	if r.Status != http.StatusAccepted {
		h.t.Fatalf("initialized: %d %s", r.Status, r.Body)
	}
	return sid
}

// eventually is testutil.Eventually (polls cond, no fixed sleeps).
var eventually = testutil.Eventually

func processAlive(pid int) bool { return proctest.Alive(pid) }

func childrenOf(pid int) []int { return proctest.ChildrenOf(pid) }

var mcpCallSleep = mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 3000}}

func osGetpid() int { return os.Getpid() }

// spawnChild asks the test server to fork a grandchild and returns its pid.
func spawnChild(t testing.TB, cs *mcp.ClientSession) int {
	t.Helper()
	var sc testserver.SpawnChild
	if err := json.Unmarshal([]byte(callText(t, cs, "spawn_child", nil)), &sc); err != nil || sc.PID == 0 {
		t.Fatalf("spawn_child: %v", err)
	}
	return sc.PID
}

// openStream opens the GET stream of session sid on server "t"; the
// stream is cut after within, and closed at the end of the test.
func (h *harness) openStream(sid string, within time.Duration) *http.Response {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url("t"), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { resp.Body.Close(); cancel() })
	return resp
}
