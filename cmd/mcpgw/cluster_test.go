package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/clustertest"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// replica is one "mcpgw serve" of a cluster.
type replica struct {
	id   string
	addr string
	cmd  *exec.Cmd
	logs *testutil.Buffer
}

// TestClusterBehindHAProxy: three real gateway processes behind Debian's
// haproxy in round-robin without affinity. A Go SDK client's session
// works with its requests on every replica; kill -9 of a replica makes its
// sessions 404 (the client re-initialises elsewhere), leaves no process of
// it behind, and does not touch the other replicas' sessions.
func TestClusterBehindHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, starts haproxy")
	}
	bin := buildBinary(t)
	addrs := []string{freePort(t), freePort(t), freePort(t)}
	var peers []string
	for _, a := range addrs {
		peers = append(peers, `"http://`+a+`"`)
	}
	dir := t.TempDir()
	reps := map[string]*replica{}
	for i, a := range addrs {
		id := fmt.Sprintf("r%d", i)
		cfg := fmt.Sprintf(`listen: %s
cluster:
  replica_id: %s
  key_env: MCPGW_CLUSTER_KEY
  peers: [%s]
  refresh: 500ms
servers:
  demo:
    command: [%q, demo-server]
    max_processes: 16
`, a, id, strings.Join(peers, ", "), bin)
		path := filepath.Join(dir, id+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", "--config", path)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "MCPGW_CLUSTER_KEY=" + strings.Repeat("k3y", 12)}
		_, _, logs := awaitServe(t, cmd)
		reps[id] = &replica{id: id, addr: a, cmd: cmd, logs: logs}
	}
	lb := clustertest.StartHAProxy(t, addrs)

	connect := func() *mcp.ClientSession {
		t.Helper()
		client := mcp.NewClient(&mcp.Implementation{Name: "cluster-test", Version: "1"}, nil)
		hc := &http.Client{Transport: &http.Transport{}}
		cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: lb.URL() + "/mcp/demo", HTTPClient: hc},
			&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatalf("connect through haproxy: %v", err)
		}
		t.Cleanup(func() { _ = cs.Close(); hc.CloseIdleConnections() })
		return cs
	}
	echo := func(cs *mcp.ClientSession, text string) error {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
		if err != nil {
			return err
		}
		if got := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(got, text) || res.IsError {
			return fmt.Errorf("echo %q answered %q", text, got)
		}
		return nil
	}
	owner := func(cs *mcp.ClientSession) *replica {
		id, _, _ := strings.Cut(cs.ID(), ".")
		r := reps[id]
		if r == nil {
			t.Fatalf("session id %q names no replica", cs.ID())
		}
		return r
	}

	// A full session: every request may land anywhere.
	cs := connect()
	if _, err := cs.ListTools(context.Background(), nil); err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	for i := range 6 {
		if err := echo(cs, fmt.Sprintf("hello %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	p := &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"seconds": 0.2}}
	p.SetProgressToken("t1")
	if res, err := cs.CallTool(context.Background(), p); err != nil || res.IsError {
		t.Fatalf("sleep: %v %v", err, res)
	}
	own := owner(cs)
	forwarded := 0
	for _, r := range reps {
		if r != own {
			forwarded += strings.Count(r.logs.String(), cs.ID())
		}
	}
	if forwarded == 0 {
		t.Errorf("no request of session %s reached a replica other than its owner %s: forwarding untested", cs.ID(), own.id)
	}
	if err := cs.Close(); err != nil {
		t.Errorf("close: %v", err)
	}

	// Sessions on two different replicas; then the first one's owner dies.
	victim := connect()
	dead := owner(victim)
	var other *mcp.ClientSession
	for range 6 {
		if c := connect(); owner(c) != dead {
			other = c
			break
		}
		// A connect is a fixed number of requests: one more moves the
		// next initialize to another replica.
		if resp, err := http.Get(lb.URL() + "/healthz"); err == nil {
			resp.Body.Close()
		}
	}
	if other == nil {
		t.Fatal("six sessions all started on one replica: haproxy is not round-robin")
	}
	kids := childrenOf(dead.cmd.Process.Pid)
	if len(kids) == 0 {
		t.Fatalf("replica %s has no demo-server child for session %s", dead.id, victim.ID())
	}
	if err := dead.cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = dead.cmd.Wait()
	waitGone(t, kids, 5*time.Second)

	err := echo(victim, "after the kill")
	if !errors.Is(err, mcp.ErrSessionMissing) {
		t.Errorf("the dead replica's session: err = %v, want a 404 (ErrSessionMissing)", err)
	}
	again := connect() // the client re-initialises: on a live replica
	if owner(again) == dead {
		t.Errorf("a new session started on the dead replica %s", dead.id)
	}
	for i := range 4 {
		if err := echo(again, fmt.Sprintf("again %d", i)); err != nil {
			t.Errorf("the new session: %v", err)
		}
		if err := echo(other, fmt.Sprintf("other %d", i)); err != nil {
			t.Errorf("another replica's session after the kill: %v", err)
		}
	}
}
