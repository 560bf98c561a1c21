//lint:file-ignore SA1019 session-era clients still use sampling (deprecated in 2026-07-28); the gateway must route them.

package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/cluster"
	"github.com/mcpgw/mcpgw/internal/config"
)

const (
	testClusterKey = "0123456789abcdef0123456789abcdef-test-cluster-key"
	testTokenA     = "token-of-client-a-for-the-cluster-tests"
	testTokenB     = "token-of-client-b-for-the-cluster-tests"
)

// replicaYAML is what startReplicas adds to each replica's config.
type replicaYAML struct {
	top     string // top-level keys
	cluster string // keys of cluster:, indented by two
	server  string // keys of server "t", indented by four
}

// startReplicas starts n gateways that form one cluster on loopback
// ports, each serving the test server "t", with two token identities a
// and b.
func startReplicas(t testing.TB, n int, extra replicaYAML) []*harness {
	t.Helper()
	t.Setenv("MCPGW_TEST_CLUSTER_KEY", testClusterKey)
	t.Setenv("MCPGW_TEST_TOKEN_A", testTokenA)
	t.Setenv("MCPGW_TEST_TOKEN_B", testTokenB)
	lns := make([]net.Listener, n)
	peers := make([]string, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], peers[i] = ln, `"http://`+ln.Addr().String()+`"`
	}
	hs := make([]*harness, n)
	for i, ln := range lns {
		yaml := fmt.Sprintf(`listen: 127.0.0.1:0
%sauth:
  tokens:
    - {name: a, value_env: MCPGW_TEST_TOKEN_A}
    - {name: b, value_env: MCPGW_TEST_TOKEN_B}
cluster:
  replica_id: r%d
  key_env: MCPGW_TEST_CLUSTER_KEY
  peers: [%s]
  refresh: 500ms
%sservers:
`, extra.top, i, strings.Join(peers, ", "), extra.cluster) + serverYAML("t", extra.server)
		hs[i] = newHarnessOn(t, yaml, ln)
	}
	return hs
}

// newHarnessOn is newHarness on a given listener.
func newHarnessOn(t testing.TB, cfgYAML string, ln net.Listener) *harness {
	t.Helper()
	cfg := testConfig(t, cfgYAML)
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	g := New(cfg, &Options{Logger: log, Getenv: os.LookupEnv, Version: "test"})
	h := &harness{t: t, g: g, base: "http://" + ln.Addr().String(), logs: logs, cfg: cfg, done: make(chan error, 1)}
	go func() { h.done <- g.Serve(ln) }()
	t.Cleanup(func() {
		h.shutdown(10 * time.Second)
		if t.Failed() {
			lines := logs.Lines()
			for _, l := range lines[max(0, len(lines)-40):] {
				b, _ := json.Marshal(l)
				t.Logf("%s log: %.400s", cfg.Cluster.ReplicaID, b)
			}
		}
	})
	return h
}

// roundRobin spreads requests over the replicas in turn, as a load
// balancer without affinity does, adding a bearer token, and records
// where each request of each session went.
type roundRobin struct {
	bases []string // host:port
	token string
	next  atomic.Int64
	tr    *http.Transport

	mu    sync.Mutex
	hosts map[string]map[string]int // session id → host → requests
	fails []string
}

func newRoundRobin(hs []*harness, token string) *roundRobin {
	rr := &roundRobin{token: token, tr: &http.Transport{}, hosts: map[string]map[string]int{}}
	for _, h := range hs {
		rr.bases = append(rr.bases, strings.TrimPrefix(h.base, "http://"))
	}
	return rr
}

func (rr *roundRobin) RoundTrip(req *http.Request) (*http.Response, error) {
	host := rr.bases[int(rr.next.Add(1))%len(rr.bases)]
	out := req.Clone(req.Context())
	out.URL.Host, out.Host = host, host
	out.Header.Set("Authorization", "Bearer "+rr.token)
	resp, err := rr.tr.RoundTrip(out)
	sid := req.Header.Get("Mcp-Session-Id")
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if sid != "" {
		if rr.hosts[sid] == nil {
			rr.hosts[sid] = map[string]int{}
		}
		rr.hosts[sid][host]++
	}
	if err == nil && resp.StatusCode >= 400 {
		rr.fails = append(rr.fails, fmt.Sprintf("%s %s on %s: %d", req.Method, sid, host, resp.StatusCode))
	}
	return resp, err
}

// connect opens a Go SDK session whose every request goes to the next
// replica; so nil is the client's default era (2026-07-28).
func (rr *roundRobin) connect(t *testing.T, url string, opts *mcp.ClientOptions, so *mcp.ClientSessionOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "cluster-test", Version: "1"}, opts)
	hc := &http.Client{Transport: rr}
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: hc}, so)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = cs.Close(); rr.tr.CloseIdleConnections() })
	return cs
}

// TestClusterSessionOnAnyReplica: a full session-era session and modern
// requests with an MRTR round, each request on the next of three
// replicas, get every answer right; requests for a session reach
// replicas that do not own it, which forward them.
func TestClusterSessionOnAnyReplica(t *testing.T) {
	hs := startReplicas(t, 3, replicaYAML{server: "    max_concurrent: 8\n"})
	rr := newRoundRobin(hs, testTokenA)
	var progress, sampled atomic.Int32
	listChanged := make(chan struct{}, 1)
	opts := &mcp.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *mcp.ProgressNotificationClientRequest) { progress.Add(1) },
		CreateMessageHandler: func(_ context.Context, req *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			sampled.Add(1)
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "sampled answer"}}, nil
		},
		ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) {
			select {
			case listChanged <- struct{}{}:
			default:
			}
		},
	}

	t.Run("session era", func(t *testing.T) {
		cs := rr.connect(t, hs[0].url("t"), opts, sessionEra)
		sid := cs.ID()
		owner, ok := strings.CutPrefix(sid, "r")
		if !ok || len(owner) < 2 || owner[1] != '.' {
			t.Fatalf("session id %q does not name its replica", sid)
		}
		tools, err := cs.ListTools(context.Background(), nil)
		if err != nil || len(tools.Tools) == 0 {
			t.Fatalf("tools/list: %v", err)
		}
		for i := range 6 {
			want := fmt.Sprintf("echo %d", i)
			if got := callText(t, cs, "echo", map[string]any{"text": want}); got != want {
				t.Errorf("echo = %q, want %q", got, want)
			}
		}
		p := &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 300}}
		p.SetProgressToken("tok")
		if _, err := cs.CallTool(context.Background(), p); err != nil {
			t.Fatalf("sleep: %v", err)
		}
		if progress.Load() == 0 {
			t.Error("no progress notification reached the client through the replicas")
		}
		if got := callText(t, cs, "sample", map[string]any{"text": "q"}); !strings.Contains(got, "sampled answer") || sampled.Load() != 1 {
			t.Errorf("sample = %q after %d sampling requests, want the client's answer", got, sampled.Load())
		}
		// The GET stream (opened by the SDK on some replica) carries
		// server notifications from the owner.
		callText(t, cs, "list_changed", nil)
		select {
		case <-listChanged:
		case <-time.After(5 * time.Second):
			t.Error("notifications/tools/list_changed did not reach the GET stream")
		}
		if err := cs.Close(); err != nil {
			t.Errorf("close (DELETE): %v", err)
		}
		ownerIdx := int(sid[1] - '0')
		eventually(t, 5*time.Second, "the session to end on its owner", func() bool {
			return hs[ownerIdx].g.mgr.Stats("t").Sessions == 0
		})
		rr.mu.Lock()
		defer rr.mu.Unlock()
		elsewhere := 0
		for host, n := range rr.hosts[sid] {
			if host != rr.bases[ownerIdx] {
				elsewhere += n
			}
		}
		if elsewhere < 5 {
			t.Errorf("only %d requests of the session reached non-owner replicas (%v): the test did not test forwarding", elsewhere, rr.hosts[sid])
		}
		if len(rr.fails) > 0 {
			t.Errorf("requests failed: %q", rr.fails)
		}
	})

	t.Run("legacy SSE", func(t *testing.T) {
		client := mcp.NewClient(&mcp.Implementation{Name: "cluster-test", Version: "1"}, nil)
		cs, err := client.Connect(context.Background(), &mcp.SSEClientTransport{Endpoint: hs[0].url("t") + "/sse", HTTPClient: &http.Client{Transport: rr}}, nil)
		if err != nil {
			t.Fatalf("connect over HTTP+SSE: %v", err)
		}
		defer cs.Close()
		for i := range 6 { // each POST on the next replica, every answer on the one stream
			want := fmt.Sprintf("legacy %d", i)
			if got := callText(t, cs, "echo", map[string]any{"text": want}); got != want {
				t.Errorf("echo = %q, want %q", got, want)
			}
		}
		forwarded := 0
		for _, h := range hs {
			for _, l := range h.logs.find("request", map[string]any{"status": 202}) {
				if strings.HasSuffix(fmt.Sprint(l["path"]), "/message") {
					forwarded++
				}
			}
		}
		if forwarded < 6 {
			t.Errorf("%d POSTs to /message answered 202, want at least 6", forwarded)
		}
	})

	t.Run("modern MRTR", func(t *testing.T) {
		cs := rr.connect(t, hs[0].url("t"), opts, nil)
		if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
			t.Fatalf("negotiated %s", v)
		}
		before := sampled.Load()
		for i := range 3 {
			if got := callText(t, cs, "sample", map[string]any{"text": "q"}); !strings.Contains(got, "sampled answer") {
				t.Errorf("round %d: sample = %q, want the client's answer", i, got)
			}
		}
		if n := sampled.Load() - before; n != 3 {
			t.Errorf("%d sampling rounds, want 3", n)
		}
		forwarded := 0
		for _, h := range hs {
			forwarded += len(h.logs.find("request", map[string]any{"status": 200, "client": "a", "method": "tools/call"}))
		}
		if forwarded < 6 { // three first rounds and three retries, wherever they ran
			t.Errorf("%d tools/call requests logged, want at least 6", forwarded)
		}
	})
}

// TestClusterRefusals: ids and forwarded requests need the cluster key;
// a session stays its creator's through the hop; a gone owner is 404.
func TestClusterRefusals(t *testing.T) {
	hs := startReplicas(t, 3, replicaYAML{})
	auth := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	// A session on r1, made directly there.
	r := hs[1].post("t", fmt.Sprintf(initBody, "2025-11-25"), auth(testTokenA))
	sid := r.Header.Get("Mcp-Session-Id")
	if r.Status != http.StatusOK || !strings.HasPrefix(sid, "r1.") {
		t.Fatalf("initialize on r1: %d %s, session %q", r.Status, r.Body, sid)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	withSID := func(tok, id string) map[string]string {
		return merge(auth(tok), map[string]string{"Mcp-Session-Id": id, "Mcp-Protocol-Version": "2025-11-25"})
	}

	if r := hs[0].post("t", list, withSID(testTokenA, sid)); r.Status != http.StatusOK {
		t.Fatalf("tools/list via r0: %d %s, want 200 from the owner", r.Status, r.Body)
	}
	// Another identity presenting the id gets the 404 of an unknown
	// session, from the owner, through the hop.
	if r := hs[2].post("t", list, withSID(testTokenB, sid)); r.Status != http.StatusNotFound {
		t.Errorf("another identity via r2: %d %s, want 404", r.Status, r.Body)
	}
	// A forged id naming r1: its MAC is wrong, so r0 does not forward it.
	parts := strings.Split(sid, ".")
	forged := parts[0] + "." + parts[1] + ".AAAAAAAAAAAAAAAAAAAAAA"
	if r := hs[0].post("t", list, withSID(testTokenA, forged)); r.Status != http.StatusNotFound {
		t.Errorf("forged id via r0: %d %s, want 404", r.Status, r.Body)
	}
	if n := len(hs[1].logs.find("request", map[string]any{"session_id": forged})); n != 0 {
		t.Errorf("the forged id reached its named owner %d times", n)
	}
	// A forwarded request signed with another key, or not at all.
	for name, hdr := range map[string]string{"unsigned": "v1.1.r0.r1.YQ.YQ.AAAA", "garbage": "x"} {
		r := hs[1].post("t", list, merge(withSID(testTokenA, sid), map[string]string{cluster.HeaderForwarded: hdr}))
		if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "cluster key") {
			t.Errorf("%s forwarded header: %d %s, want 403 naming the cluster key", name, r.Status, r.Body)
		}
	}
	signed := func(n *cluster.Node, to, id string, who cluster.Identity) *rawResponse {
		req := mustRequest(t, hs[1].url("t"), list, withSID(testTokenA, id))
		req.Header.Del("Authorization")
		n.Sign(req, to, who)
		return hs[1].do(req)
	}
	right := &config.Cluster{ReplicaID: "r0", Key: testClusterKey, ForwardTimeout: time.Second}
	wrong := &config.Cluster{ReplicaID: "r0", Key: strings.Repeat("x", 40), ForwardTimeout: time.Second}
	a := cluster.Identity{Name: "a", ClientIP: "192.0.2.1"}
	if r := signed(cluster.New(right, nil), "r1", sid, a); r.Status != http.StatusOK {
		t.Errorf("forwarded with the cluster key: %d %s, want 200", r.Status, r.Body)
	}
	if r := signed(cluster.New(wrong, nil), "r1", sid, a); r.Status != http.StatusForbidden {
		t.Errorf("forwarded with another key: %d %s, want 403", r.Status, r.Body)
	}
	if r := signed(cluster.New(right, nil), "r2", sid, a); r.Status != http.StatusForbidden {
		t.Errorf("forwarded to another replica: %d %s, want 403", r.Status, r.Body)
	}
	// A header signed for one session does not open another.
	req := mustRequest(t, hs[1].url("t"), list, withSID(testTokenA, sid))
	cluster.New(right, nil).Sign(req, "r1", a)
	req.Header.Set("Mcp-Session-Id", hs[1].rawSessionAs(testTokenA))
	req.Header.Del("Authorization")
	if r := hs[1].do(req); r.Status != http.StatusForbidden {
		t.Errorf("a signature moved to another session: %d %s, want 403", r.Status, r.Body)
	}
	hello, _ := http.Get(hs[1].base + cluster.HelloPath)
	if hello.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned hello: %d, want 403", hello.StatusCode)
	}
	hello.Body.Close()

	// The owner is gone: its sessions answer 404 elsewhere, so clients
	// re-initialise; new sessions start on the remaining replicas.
	hs[1].shutdown(5 * time.Second)
	r = hs[0].post("t", list, withSID(testTokenA, sid))
	if r.Status != http.StatusNotFound || !strings.Contains(string(r.Body), "initialize") {
		t.Errorf("session of a gone owner via r0: %d %s, want 404 asking for initialize", r.Status, r.Body)
	}
	if r := hs[2].post("t", fmt.Sprintf(initBody, "2025-11-25"), auth(testTokenA)); r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Mcp-Session-Id"), "r2.") {
		t.Errorf("initialize on r2: %d %s", r.Status, r.Body)
	}
}

// mustRequest is a POST of body to url with the MCP headers and hdr.
func mustRequest(t *testing.T, url, body string, hdr map[string]string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return req
}

// rawSessionAs initializes a session-era session as the holder of tok.
func (h *harness) rawSessionAs(tok string) string {
	h.t.Helper()
	r := h.post("t", fmt.Sprintf(initBody, "2025-11-25"), map[string]string{"Authorization": "Bearer " + tok})
	if r.Status != http.StatusOK {
		h.t.Fatalf("initialize: %d %s", r.Status, r.Body)
	}
	return r.Header.Get("Mcp-Session-Id")
}
