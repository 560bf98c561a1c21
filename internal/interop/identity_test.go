package interop

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/proctest"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// Launcher mode for 2026-07-28 clients: the unit of isolation is the
// identity. These tests count the server-everything processes in the
// process table (the gateway's children running it) next to the gateway's
// own start lines, with real clients: the Go SDK v1.8 client in both eras
// and the TypeScript SDK v2 client.

const (
	aliceToken = "alice-interop-token-0123456789abcdefghijklmnop"
	bobToken   = "bob-interop-token-0123456789abcdefghijklmnopqr"
)

func tokenSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// identityFixture is a gateway with tokens for alice and bob in front of a
// launcher-mode server-everything (ev), and one with isolation: request
// (evr).
func identityFixture(t *testing.T) *fixture {
	t.Helper()
	ne := requireNode(t)
	interopDir, err := filepath.EvalSymlinks(ne.dir)
	if err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`listen: 127.0.0.1:0
auth:
  tokens:
    - {name: alice, sha256: %s}
    - {name: bob, sha256: %s}
servers:
  ev:
    command: ["${NODE}", "${EVERYTHING}", "stdio"]
    read_paths: ["${INTEROP}"]
    max_concurrent: 8
  evr:
    command: ["${NODE}", "${EVERYTHING}", "stdio"]
    read_paths: ["${INTEROP}"]
    isolation: request
`, tokenSHA(aliceToken), tokenSHA(bobToken))
	return startFixture(t, ne, yaml, map[string]string{"NODE": ne.node, "EVERYTHING": ne.everything, "INTEROP": interopDir}, "")
}

// everythingChildren are the live children of the test process (the
// gateway runs in it) that run server-everything.
func everythingChildren(t *testing.T) []int {
	t.Helper()
	var out []int
	for _, pid := range proctest.ChildrenOf(os.Getpid()) {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(string(cmd), "server-everything") {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// bearer adds a token to every request of an SDK client.
type bearer struct {
	base  http.RoundTripper
	token string
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// goClient connects the Go SDK client as the token's identity; version ""
// is its default (2026-07-28).
func goClient(t *testing.T, f *fixture, server, token, version string) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: bearer{&http.Transport{}, token}}
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgw-interop-go", Version: "1"}, nil)
	var so *mcp.ClientSessionOptions
	if version != "" {
		so = &mcp.ClientSessionOptions{ProtocolVersion: version}
	}
	cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: f.url(server), HTTPClient: hc}, so)
	if err != nil {
		t.Fatalf("connect as %s: %v", token[:5], err)
	}
	t.Cleanup(func() {
		_ = cs.Close()
		hc.CloseIdleConnections()
	})
	return cs
}

func echoGo(t *testing.T, cs *mcp.ClientSession, text string) {
	t.Helper()
	if got := callTexts(t, cs, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": text}}); len(got) != 1 || got[0] != "Echo: "+text {
		t.Fatalf("echo %q = %q", text, got)
	}
}

// startsFor are the gateway's lines for the processes it started for an
// identity's 2026-07-28 requests on server, as process ids.
func startsFor(f *fixture, server, identity string) []string {
	var pids []string
	for _, l := range f.logs.JSONLines() {
		if l["msg"] == "started a process for an identity's 2026-07-28 requests" && l["tool"] == server && l["client"] == identity {
			pids = append(pids, fmt.Sprint(l["process"]))
		}
	}
	return pids
}

func TestLauncherProcessPerIdentity(t *testing.T) {
	f := identityFixture(t)
	if n := len(everythingChildren(t)); n != 0 {
		t.Fatalf("%d server-everything processes before any client", n)
	}

	// alice, Go SDK, 2026-07-28: discover, then five calls on one process.
	alice := goClient(t, f, "ev", aliceToken, "")
	if v := alice.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Fatalf("alice negotiated %s", v)
	}
	for i := range 5 {
		echoGo(t, alice, fmt.Sprintf("alice %d", i))
	}
	procs := everythingChildren(t)
	if len(procs) != 1 || len(startsFor(f, "ev", "alice")) != 1 {
		t.Fatalf("after alice's discover and 5 calls: processes %v, starts %v; want one process", procs, startsFor(f, "ev", "alice"))
	}

	// bob, Go SDK, 2026-07-28: a process of his own.
	bob := goClient(t, f, "ev", bobToken, "")
	for i := range 3 {
		echoGo(t, bob, fmt.Sprintf("bob %d", i))
	}
	procs = everythingChildren(t)
	aliceStarts, bobStarts := startsFor(f, "ev", "alice"), startsFor(f, "ev", "bob")
	if len(procs) != 2 || len(aliceStarts) != 1 || len(bobStarts) != 1 || aliceStarts[0] == bobStarts[0] {
		t.Fatalf("after bob's calls: processes %v, alice's %v, bob's %v; want one each, distinct", procs, aliceStarts, bobStarts)
	}

	// The TypeScript SDK v2 client as alice (2026-07-28, other clientInfo:
	// a session-era server was initialised with the Go client's, so she
	// gets a second process of her own), five calls on it.
	out := runNodeEnv(t, f, []string{"MCPGW_INTEROP_TOKEN=" + aliceToken}, f.node.client2, "auto", f.url("ev"), "echoes")
	if v := field[string](t, out, "protocolVersion"); v != "2026-07-28" {
		t.Fatalf("TypeScript client negotiated %q", v)
	}
	echoes := field[[][]string](t, out, "echoes")
	if len(echoes) != 5 || echoes[4][0] != "Echo: ts2 4" {
		t.Fatalf("TypeScript echoes = %q", echoes)
	}
	aliceStarts = startsFor(f, "ev", "alice")
	if len(aliceStarts) != 2 || len(everythingChildren(t)) != 3 {
		t.Fatalf("after the TypeScript client's discover and 5 calls as alice: alice's starts %v, processes %v; want one more",
			aliceStarts, everythingChildren(t))
	}
	// alice's Go client again: still her first process.
	echoGo(t, alice, "alice again")
	if n := len(startsFor(f, "ev", "alice")); n != 2 || len(everythingChildren(t)) != 3 {
		t.Errorf("alice's later call started a process (%d starts, %d processes)", n, len(everythingChildren(t)))
	}

	// The Go SDK pinned to 2025-11-25: a session is a process of its own,
	// reused by its calls, never one of the warm ones.
	sess := goClient(t, f, "ev", aliceToken, "2025-11-25")
	for i := range 3 {
		echoGo(t, sess, fmt.Sprintf("session %d", i))
	}
	if n := len(everythingChildren(t)); n != 4 {
		t.Errorf("after a 2025-11-25 session's calls: %d processes, want 4", n)
	}
	if n := len(startsFor(f, "ev", "alice")); n != 2 {
		t.Errorf("the 2025-11-25 session used a 2026-07-28 process (%d starts)", n)
	}
}

func TestLauncherIsolationRequest(t *testing.T) {
	// isolation: request: each of alice's requests starts a process, which
	// is stopped after it.
	f := identityFixture(t)
	alice := goClient(t, f, "evr", aliceToken, "")
	for i := range 3 {
		echoGo(t, alice, fmt.Sprintf("alice %d", i))
	}
	// discover and three calls: four processes, each stopped after its request
	testutil.Eventually(t, 10*time.Second, "a process per request, each stopped", func() bool {
		return strings.Count(f.logs.String(), "the request it was started for is over") == 4 && len(everythingChildren(t)) == 0
	})
	if n := len(startsFor(f, "evr", "alice")); n != 0 {
		t.Errorf("isolation: request kept %d processes for alice", n)
	}
}

// TestLauncherProcessPerIdentityTypeScript: the same rule with the
// TypeScript SDK v2 client alone (2026-07-28): alice's discover and five
// calls run on one process; bob's on another, never one of hers; alice's
// next client run (same clientInfo) reuses her warm process.
func TestLauncherProcessPerIdentityTypeScript(t *testing.T) {
	f := identityFixture(t)
	run := func(token, who string) {
		t.Helper()
		out := runNodeEnv(t, f, []string{"MCPGW_INTEROP_TOKEN=" + token}, f.node.client2, "auto", f.url("ev"), "echoes")
		if v := field[string](t, out, "protocolVersion"); v != "2026-07-28" {
			t.Fatalf("%s's TypeScript client negotiated %q", who, v)
		}
		if echoes := field[[][]string](t, out, "echoes"); len(echoes) != 5 || echoes[4][0] != "Echo: ts2 4" {
			t.Fatalf("%s's echoes = %q", who, echoes)
		}
	}
	run(aliceToken, "alice")
	procs := everythingChildren(t)
	alice := startsFor(f, "ev", "alice")
	if len(procs) != 1 || len(alice) != 1 {
		t.Fatalf("after alice's discover and 5 calls: processes %v, her starts %v; want one", procs, alice)
	}
	run(bobToken, "bob")
	procs = everythingChildren(t)
	bob := startsFor(f, "ev", "bob")
	if len(procs) != 2 || len(bob) != 1 || bob[0] == alice[0] {
		t.Fatalf("after bob's calls: processes %v, alice's %v, bob's %v; want one each, distinct", procs, alice, bob)
	}
	run(aliceToken, "alice")
	if got, n := startsFor(f, "ev", "alice"), len(everythingChildren(t)); len(got) != 1 || n != 2 {
		t.Errorf("alice's second client run: her starts %v, %d processes; want her first process reused", got, n)
	}
}
