//lint:file-ignore SA1019 session-era clients still use sampling (deprecated in 2026-07-28); the gateway must route it across a reload.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/session"
)

// markedServer is a test-server entry whose environment carries MARK, so
// that whoami tells which definition a process was started from.
func markedServer(name, mark, extra string) string {
	return fmt.Sprintf(`  %s:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1", MARK: %q}
    max_concurrent: 8
%s`, name, mark, extra)
}

// reload reloads h's gateway with cfgYAML and fails the test on an error.
func (h *harness) reload(cfgYAML string) *ReloadResult {
	h.t.Helper()
	res, err := h.g.Reload(context.Background(), testConfig(h.t, cfgYAML))
	if err != nil {
		h.t.Fatalf("reload: %v", err)
	}
	return res
}

func pidOf(t testing.TB, cs *mcp.ClientSession) int {
	t.Helper()
	return int(whoami(t, cs)["pid"].(float64))
}

func markOf(t testing.TB, cs *mcp.ClientSession) string {
	t.Helper()
	env, _ := whoami(t, cs)["env"].(map[string]any)
	return fmt.Sprint(env["MARK"])
}

// connectErr is connect that returns the error instead of failing.
func (h *harness) connectErr(server string) (*mcp.ClientSession, error) {
	client := mcp.NewClient(&mcp.Implementation{Name: "gateway-test", Version: "1"}, nil)
	hc := &http.Client{Transport: &http.Transport{}}
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.url(server), HTTPClient: hc, MaxRetries: -1}, sessionEra)
	if err == nil {
		h.t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

// TestReloadServers reloads a gateway under live sessions with calls in
// flight: an unchanged server keeps its process, a changed one keeps
// serving its sessions on the old definition while new sessions get the
// new one, a removed one keeps its sessions until the drain deadline, an
// added one serves at once; no call is dropped, and after the deadline
// the old processes are gone and nothing else is left.
func TestReloadServers(t *testing.T) {
	const drain = 3 * time.Second
	limits := fmt.Sprintf("limits: {shutdown_timeout: %s}\n", drain)
	v1 := "listen: 127.0.0.1:0\n" + limits + "servers:\n" +
		markedServer("keep", "k", "") + markedServer("change", "v1", "") + markedServer("remove", "r", "") +
		markedServer("pool", "v1", "    mode: daemon\n")
	v2 := "listen: 127.0.0.1:0\n" + limits + "servers:\n" +
		markedServer("keep", "k", "    allow: []\n") + markedServer("change", "v2", "") + markedServer("added", "a", "") +
		markedServer("pool", "v2", "    mode: daemon\n")
	h := newHarness(t, v1)

	keep, change, remove, pool := h.connect("keep", nil), h.connect("change", nil), h.connect("remove", nil), h.connect("pool", nil)
	keepPID, changePID, removePID, poolPID := pidOf(t, keep), pidOf(t, change), pidOf(t, remove), pidOf(t, pool)

	// Calls in flight across the reload, one on every server.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for name, cs := range map[string]*mcp.ClientSession{"keep": keep, "change": change, "remove": remove, "pool": pool} {
		wg.Go(func() {
			res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 1500}})
			if err == nil && res.IsError {
				err = errors.New("tool error")
			}
			if err != nil {
				errs <- fmt.Errorf("%s: call in flight across the reload: %v", name, err)
			}
		})
	}
	eventually(t, 5*time.Second, "four calls in flight", func() bool { return h.g.mgr.Stats("").InFlight == 4 })

	res := h.reload(v2)
	want := session.ReloadResult{Unchanged: []string{"keep"}, Changed: []string{"change", "pool"}, Added: []string{"added"}, Removed: []string{"remove"}}
	got := res.ReloadResult
	got.DrainBy = time.Time{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reload result (-want +got):\n%s", diff)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Before the deadline: old sessions keep their processes and definition.
	if got := pidOf(t, keep); got != keepPID {
		t.Errorf("unchanged server: pid %d after the reload, want %d (same process)", got, keepPID)
	}
	if got, mark := pidOf(t, change), markOf(t, change); got != changePID || mark != "v1" {
		t.Errorf("changed server, old session: pid %d mark %q, want pid %d mark v1", got, mark, changePID)
	}
	if got := pidOf(t, remove); got != removePID {
		t.Errorf("removed server, old session: pid %d, want %d until the drain deadline", got, removePID)
	}
	if got, mark := pidOf(t, pool), markOf(t, pool); got != poolPID || mark != "v1" {
		t.Errorf("changed daemon server, old session: pid %d mark %q, want pid %d mark v1", got, mark, poolPID)
	}
	// New sessions get the new definitions.
	change2, pool2, added := h.connect("change", nil), h.connect("pool", nil), h.connect("added", nil)
	if mark := markOf(t, change2); mark != "v2" {
		t.Errorf("changed server, new session: mark %q, want v2", mark)
	}
	if mark := markOf(t, pool2); mark != "v2" {
		t.Errorf("changed daemon server, new session: mark %q, want v2", mark)
	}
	if mark := markOf(t, added); mark != "a" {
		t.Errorf("added server: mark %q, want a", mark)
	}
	if _, err := h.connectErr("remove"); err == nil {
		t.Error("a new session of a removed server was accepted")
	}

	// After the deadline: the old definitions' processes are gone, their
	// sessions are told to re-initialise, and only the current ones live.
	eventually(t, drain+10*time.Second, "the old definitions' processes gone", func() bool {
		return !processAlive(changePID) && !processAlive(removePID) && !processAlive(poolPID)
	})
	if _, err := change.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "x"}}); err == nil {
		t.Error("the old session of a changed server still works after the drain deadline")
	}
	live := []int{keepPID, pidOf(t, change2), pidOf(t, pool2), pidOf(t, added)}
	slices.Sort(live)
	eventually(t, 10*time.Second, "only the current definitions' processes alive", func() bool {
		kids := childrenOf(osGetpid())
		slices.Sort(kids)
		return slices.Equal(kids, live)
	})
	if kids := childrenOf(osGetpid()); len(kids) != len(live) {
		t.Errorf("processes after the drain: %v, want %v", kids, live)
	}
	eventually(t, 5*time.Second, "three drained generations logged", func() bool {
		return len(h.logs.find("replaced server definition drained: its processes are gone", nil)) == 3
	})
	if got := pidOf(t, keep); got != keepPID {
		t.Errorf("unchanged server: pid %d after the drain, want %d", got, keepPID)
	}
}

// TestReloadFrontDoor: tokens, allowed hosts and allow lists change in
// place, for sessions that already exist too, without touching a process.
func TestReloadFrontDoor(t *testing.T) {
	const (
		aliceTok = "alice-token-0123456789abcdefghijklmnopqrstuvwxyz"
		bobTok   = "bob-token-0123456789abcdefghijklmnopqrstuvwxyz0"
		carolTok = "carol-token-0123456789abcdefghijklmnopqrstuvwxyz"
	)
	v1 := fmt.Sprintf("listen: 127.0.0.1:0\nauth:\n  tokens:\n    - {name: alice, sha256: %s}\n", sha(aliceTok)) +
		"servers:\n" + markedServer("t", "k", "")
	v2 := fmt.Sprintf("listen: 127.0.0.1:0\nallowed_hosts: [mcp.example.com]\nauth:\n  tokens:\n    - {name: bob, sha256: %s}\n    - {name: carol, sha256: %s}\n",
		sha(bobTok), sha(carolTok)) + "servers:\n" + markedServer("t", "k", "    allow: [carol]\n")
	h := newHarness(t, v1)
	initialize := fmt.Sprintf(initBody, "2025-11-25")
	post := func(tok, host, sid string) *rawResponse {
		t.Helper()
		body := initialize
		if sid != "" {
			body = `{"jsonrpc":"2.0","id":2,"method":"ping"}`
		}
		req, err := http.NewRequest(http.MethodPost, h.url("t"), strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
		}
		if host != "" {
			req.Host = host
		}
		return h.do(req)
	}
	r := post(aliceTok, "", "")
	if r.Status != http.StatusOK {
		t.Fatalf("alice before the reload: %d %s", r.Status, r.Body)
	}
	sid := r.Header.Get("Mcp-Session-Id")
	for _, c := range []struct {
		name, tok, host, sid string
		want                 int
	}{
		{"alice's session", aliceTok, "", sid, http.StatusOK},
		{"bob, not yet a token", bobTok, "", "", http.StatusUnauthorized},
		{"a Host not yet allowed", aliceTok, "mcp.example.com", "", http.StatusForbidden},
	} {
		if got := post(c.tok, c.host, c.sid).Status; got != c.want {
			t.Errorf("before the reload, %s: status %d, want %d", c.name, got, c.want)
		}
	}
	pids := childrenOf(osGetpid())

	res := h.reload(v2)
	if diff := cmp.Diff([]string{"t"}, res.Unchanged); diff != "" {
		t.Errorf("unchanged servers (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		name, tok, host, sid string
		want                 int
	}{
		{"alice's session, token removed", aliceTok, "", sid, http.StatusUnauthorized},
		{"alice, token removed", aliceTok, "", "", http.StatusUnauthorized},
		{"bob, not on the allow list", bobTok, "", "", http.StatusForbidden},
		{"carol", carolTok, "", "", http.StatusOK},
		{"carol through the allowed Host", carolTok, "mcp.example.com", "", http.StatusOK},
	} {
		if got := post(c.tok, c.host, c.sid).Status; got != c.want {
			t.Errorf("after the reload, %s: status %d, want %d", c.name, got, c.want)
		}
	}
	if !slices.ContainsFunc(pids, processAlive) {
		t.Errorf("alice's process %v was stopped by a reload that changed only the front door", pids)
	}
}

// TestReloadRefused: a reload that needs a restart changes nothing.
func TestReloadRefused(t *testing.T) {
	v1 := "listen: 127.0.0.1:0\nstate_dir: /var/lib/mcpgw-a\nservers:\n" + markedServer("t", "k", "")
	h := newHarness(t, v1)
	cs := h.connect("t", nil)
	pid := pidOf(t, cs)
	_, err := h.g.Reload(context.Background(), testConfig(t, "listen: 127.0.0.1:0\nstate_dir: /var/lib/mcpgw-b\nservers:\n"+markedServer("t", "changed", "")))
	if !errors.Is(err, ErrRestartNeeded) || !strings.Contains(err.Error(), "state_dir: changed from /var/lib/mcpgw-a to /var/lib/mcpgw-b") {
		t.Fatalf("reload changing state_dir: %v, want a refusal naming state_dir", err)
	}
	_, err = h.g.Reload(context.Background(), testConfig(t, "listen: 127.0.0.1:0\nstate_dir: /var/lib/mcpgw-a\nmetrics: {listen: 127.0.0.1:0}\nservers:\n"+markedServer("t", "changed", "")))
	if !errors.Is(err, ErrRestartNeeded) || !strings.Contains(err.Error(), "metrics: changed") {
		t.Fatalf("reload changing metrics: %v, want a refusal naming metrics", err)
	}
	if got := pidOf(t, cs); got != pid {
		t.Errorf("pid %d after a refused reload, want %d", got, pid)
	}
	if mark := markOf(t, h.connect("t", nil)); mark != "k" {
		t.Errorf("new session after a refused reload: mark %q, want the old definition's k", mark)
	}
}

// TestReloadMovesListener: a new listen address is served at once; the
// request in flight on the old one finishes; the old address is closed.
func TestReloadMovesListener(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nservers:\n"+markedServer("t", "k", ""))
	cs := h.connect("t", nil)
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 1000}})
		done <- err
	}()
	eventually(t, 5*time.Second, "a call in flight", func() bool { return h.g.mgr.Stats("").InFlight == 1 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // a free port, for the new configuration
	res := h.reload("listen: " + addr + "\nservers:\n" + markedServer("t", "k", ""))
	if res.Listen != addr {
		t.Errorf("result listen %q, want %q", res.Listen, addr)
	}
	if err := <-done; err != nil {
		t.Errorf("call in flight while the listener moved: %v", err)
	}
	old := h.base
	h.base = "http://" + addr
	if mark := markOf(t, h.connect("t", nil)); mark != "k" {
		t.Errorf("new address: mark %q", mark)
	}
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(old, "http://"), time.Second); err == nil {
		c.Close()
		t.Errorf("the old address %s still accepts connections", old)
	}
}

// TestReloadListenerTaken: a listen address that cannot be bound refuses
// the whole reload: the old listener and configuration keep serving.
func TestReloadListenerTaken(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nservers:\n"+markedServer("t", "k", ""))
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, err = h.g.Reload(context.Background(), testConfig(t, "listen: "+taken.Addr().String()+"\nservers:\n"+markedServer("t", "k", "")+markedServer("u", "u", "")))
	if err == nil || !strings.Contains(err.Error(), "cannot move the listener to "+taken.Addr().String()) || !strings.Contains(err.Error(), "still listening on the old address") {
		t.Fatalf("reload onto a taken port: %v", err)
	}
	if mark := markOf(t, h.connect("t", nil)); mark != "k" {
		t.Errorf("old address after the refused reload: mark %q", mark)
	}
	if _, err := h.connectErr("u"); err == nil {
		t.Error("a server of the refused configuration serves")
	}
}

// TestReloadRateLimits: a rate limit added by a reload applies to the next
// request, and one removed stops applying.
func TestReloadRateLimits(t *testing.T) {
	v1 := "listen: 127.0.0.1:0\nservers:\n" + markedServer("t", "k", "    max_processes: 16\n")
	v2 := "listen: 127.0.0.1:0\nservers:\n" + markedServer("t", "k", "    max_processes: 16\n    rate: {requests_per_second: 0.001, burst: 2, per: ip}\n")
	h := newHarness(t, v1)
	initialize := fmt.Sprintf(initBody, "2025-11-25")
	statuses := func() []int {
		var out []int
		for range 3 {
			out = append(out, h.post("t", initialize, nil).Status)
		}
		return out
	}
	if diff := cmp.Diff([]int{200, 200, 200}, statuses()); diff != "" {
		t.Errorf("before the reload (-want +got):\n%s", diff)
	}
	h.reload(v2)
	if diff := cmp.Diff([]int{200, 200, 429}, statuses()); diff != "" {
		t.Errorf("with a rate limit of burst 2 (-want +got):\n%s", diff)
	}
	h.reload(v1)
	if diff := cmp.Diff([]int{200, 200, 200}, statuses()); diff != "" {
		t.Errorf("rate limit removed (-want +got):\n%s", diff)
	}
}

// TestReloadUnderLoad: reloads in quick succession while sessions of an
// unchanged and of a changed server call continuously: no call fails, and
// once the drain deadline of the last generation has passed only the
// unchanged server's processes and the newest definition's are left.
func TestReloadUnderLoad(t *testing.T) {
	// Long enough for the reloads and calls below: past the first
	// reload's deadline its sessions end by design (404, re-initialise).
	const drain = 8 * time.Second
	cfg := func(mark string) string {
		return fmt.Sprintf("listen: 127.0.0.1:0\nlimits: {shutdown_timeout: %s}\nservers:\n", drain) +
			markedServer("keep", "k", "    max_processes: 8\n") + markedServer("change", mark, "    max_processes: 8\n")
	}
	h := newHarness(t, cfg("v0"))
	const workers = 3
	var keep, change []*mcp.ClientSession
	for range workers {
		keep, change = append(keep, h.connect("keep", nil)), append(change, h.connect("change", nil))
	}
	keepPIDs := make([]int, workers)
	for i, cs := range keep {
		keepPIDs[i] = pidOf(t, cs)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	calls, failures := 0, []string{}
	for i := range workers {
		for name, cs := range map[string]*mcp.ClientSession{"keep": keep[i], "change": change[i]} {
			wg.Go(func() {
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 20 + n%40}})
					cancel()
					mu.Lock()
					calls++
					if err != nil || res.IsError {
						failures = append(failures, fmt.Sprintf("%s session %s, call %d at %s: %v %v", name, cs.ID(), n, time.Now().Format("15:04:05.000"), err, res))
						mu.Unlock()
						return // the client closes its session after such an error
					}
					mu.Unlock()
				}
			})
		}
	}
	var last *mcp.ClientSession // the newest definition's session
	first := time.Now()
	for i := 1; i <= 5; i++ {
		time.Sleep(150 * time.Millisecond) // calls in flight at every reload
		if res := h.reload(cfg(fmt.Sprintf("v%d", i))); !slices.Equal(res.Changed, []string{"change"}) || !slices.Equal(res.Unchanged, []string{"keep"}) {
			t.Fatalf("reload %d: %+v", i, res.ReloadResult)
		}
		last = h.connect("change", nil)
		if mark := markOf(t, last); mark != fmt.Sprintf("v%d", i) {
			t.Errorf("new session after reload %d: mark %q", i, mark)
		}
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	wg.Wait()
	if d := time.Since(first); d > drain-time.Second {
		t.Fatalf("the reloads and calls took %s, too close to the drain deadline (%s) for the test to mean anything; the machine is too busy", d, drain)
	}
	if len(failures) > 0 || calls < 2*workers*5 {
		t.Errorf("%d calls, %d failed: %v", calls, len(failures), failures[:min(len(failures), 5)])
	}
	want := append(slices.Clone(keepPIDs), pidOf(t, last))
	slices.Sort(want)
	eventually(t, drain+15*time.Second, "only the unchanged server's processes and the newest definition's left", func() bool {
		kids := childrenOf(osGetpid())
		slices.Sort(kids)
		return slices.Equal(kids, want)
	})
	for i, cs := range keep {
		if got := pidOf(t, cs); got != keepPIDs[i] {
			t.Errorf("unchanged server's session %d: pid %d, want %d", i, got, keepPIDs[i])
		}
	}
}

// TestReloadLegacySSE: a legacy HTTP+SSE session of a changed server keeps
// its stream and its old definition across a reload; one of a removed
// server keeps working until the drain deadline.
func TestReloadLegacySSE(t *testing.T) {
	v1 := "listen: 127.0.0.1:0\nservers:\n" + markedServer("change", "v1", "") + markedServer("remove", "r", "")
	v2 := "listen: 127.0.0.1:0\nservers:\n" + markedServer("change", "v2", "")
	h := newHarness(t, v1)
	change, remove := connectSSE(t, h, "change", nil), connectSSE(t, h, "remove", nil)
	changePID, removePID := pidOf(t, change), pidOf(t, remove)
	h.reload(v2)
	if got, mark := pidOf(t, change), markOf(t, change); got != changePID || mark != "v1" {
		t.Errorf("legacy session of a changed server: pid %d mark %q, want %d v1", got, mark, changePID)
	}
	if got := pidOf(t, remove); got != removePID {
		t.Errorf("legacy session of a removed server: pid %d, want %d", got, removePID)
	}
	if mark := markOf(t, connectSSE(t, h, "change", nil)); mark != "v2" {
		t.Errorf("new legacy session of the changed server: mark %q, want v2", mark)
	}
}

// TestReloadMRTR: a 2026-07-28 request waiting for its client's input when
// a reload replaces its server's definition is resumed by the client's
// retry on the process that asked (the old generation), not refused.
func TestReloadMRTR(t *testing.T) {
	v := func(mark string) string {
		return "listen: 127.0.0.1:0\nservers:\n" + markedServer("t", mark, "    mode: daemon\n")
	}
	h := newHarness(t, v("v1"))
	var mu sync.Mutex
	var results []*ReloadResult
	cs := h.connectVersion("t", &mcp.ClientOptions{
		CreateMessageHandler: func(context.Context, *mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			// Between the input_required result and the client's retry.
			res, err := h.g.Reload(context.Background(), testConfig(t, v("v2")))
			if err != nil {
				return nil, err
			}
			mu.Lock()
			results = append(results, res)
			mu.Unlock()
			return &mcp.CreateMessageResult{Model: "m", Role: "assistant", Content: &mcp.TextContent{Text: "sampled answer"}}, nil
		},
	}, &http.Transport{}, nil)
	got := callText(t, cs, "sample", map[string]any{"text": "question?"})
	if !strings.Contains(got, "sampled answer") {
		t.Errorf("sample across a reload = %q, want the client's answer", got)
	}
	if len(results) != 1 || !slices.Equal(results[0].Changed, []string{"t"}) {
		t.Fatalf("reloads during the round: %v", results)
	}
	if mark := markOf(t, h.connectVersion("t", nil, &http.Transport{}, nil)); mark != "v2" {
		t.Errorf("after the round: mark %q, want the new definition's v2", mark)
	}
}
