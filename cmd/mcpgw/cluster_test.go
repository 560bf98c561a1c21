package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/mcpgw/internal/cluster"
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
//
// It runs twice: with the peers listed, and with the replicas finding
// each other in the directory in a real redis-server (peers: redis), where
// the killed replica's heartbeat expires.
func TestClusterBehindHAProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, starts haproxy")
	}
	t.Run("static peers", func(t *testing.T) { testClusterBehindHAProxy(t, false) })
	t.Run("redis directory", func(t *testing.T) { testClusterBehindHAProxy(t, true) })
}

func testClusterBehindHAProxy(t *testing.T, directory bool) {
	bin := buildBinary(t)
	addrs := []string{freePort(t), freePort(t), freePort(t)}
	var peers []string
	for _, a := range addrs {
		peers = append(peers, `"http://`+a+`"`)
	}
	var rds *clustertest.Redis
	if directory {
		rds = clustertest.StartRedis(t)
	}
	dir := t.TempDir()
	reps := map[string]*replica{}
	for i, a := range addrs {
		id := fmt.Sprintf("r%d", i)
		discovery := fmt.Sprintf("peers: [%s]", strings.Join(peers, ", "))
		if directory {
			discovery = "peers: redis\n  advertise_url: http://" + a + "\n  redis: {url_env: REDIS_URL}"
		}
		cfg := fmt.Sprintf(`listen: %s
cluster:
  replica_id: %s
  key_env: MCPGW_CLUSTER_KEY
  %s
  refresh: 500ms
servers:
  demo:
    command: [%q, demo-server]
    max_processes: 16
`, a, id, discovery, bin)
		path := filepath.Join(dir, id+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "serve", "--config", path)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "MCPGW_CLUSTER_KEY=" + strings.Repeat("k3y", 12)}
		if directory {
			cmd.Env = append(cmd.Env, "REDIS_URL="+rds.URL())
		}
		_, _, logs := awaitServe(t, cmd)
		reps[id] = &replica{id: id, addr: a, cmd: cmd, logs: logs}
	}
	lb := clustertest.StartHAProxy(t, addrs)

	if directory {
		// Every replica knows the two others before the first request.
		for _, r := range reps {
			for _, other := range reps {
				if other != r {
					r.logs.WaitFor(t, `"peer":"`+other.id+`"`, 10*time.Second)
				}
			}
		}
	}
	connectVersion := func(version string) *mcp.ClientSession {
		t.Helper()
		client := mcp.NewClient(&mcp.Implementation{Name: "cluster-test", Version: "1"}, nil)
		hc := &http.Client{Transport: &http.Transport{}}
		var so *mcp.ClientSessionOptions
		if version != "" {
			so = &mcp.ClientSessionOptions{ProtocolVersion: version}
		}
		cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: lb.URL() + "/mcp/demo", HTTPClient: hc}, so)
		if err != nil {
			t.Fatalf("connect through haproxy: %v", err)
		}
		t.Cleanup(func() { _ = cs.Close(); hc.CloseIdleConnections() })
		return cs
	}
	connect := func() *mcp.ClientSession { t.Helper(); return connectVersion("2025-11-25") }
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

	// The Go SDK's default era (2026-07-28): no session, every request
	// stateless, each on the next replica.
	modern := connectVersion("")
	if v := modern.InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Errorf("the Go SDK's default negotiated %s through haproxy, want 2026-07-28", v)
	}
	if _, err := modern.ListTools(context.Background(), nil); err != nil {
		t.Errorf("2026-07-28 tools/list: %v", err)
	}
	for i := range 4 {
		if err := echo(modern, fmt.Sprintf("modern %d", i)); err != nil {
			t.Errorf("2026-07-28: %v", err)
		}
	}
	mp := &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"seconds": 0.2}}
	mp.SetProgressToken("t2")
	if res, err := modern.CallTool(context.Background(), mp); err != nil || res.IsError {
		t.Errorf("2026-07-28 sleep: %v %v", err, res)
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
	if directory {
		// Nobody removed the killed replica's heartbeat: it expires (three
		// refreshes), and the others drop it.
		rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(rds.Port)})
		defer rc.Close()
		testutil.Eventually(t, 10*time.Second, "the dead replica's entry to expire in Redis", func() bool {
			return rc.Exists(context.Background(), cluster.DirectoryPrefix+dead.id).Val() == 0
		})
		for _, r := range reps {
			if r == dead {
				continue
			}
			// Dropped at a refresh (left), or at a failed hop (unreachable).
			testutil.Eventually(t, 10*time.Second, r.id+" to drop "+dead.id, func() bool {
				for _, l := range r.logs.JSONLines() {
					msg, _ := l["msg"].(string)
					if l["peer"] == dead.id && (msg == "cluster: peer left" || strings.HasPrefix(msg, "cluster: peer unreachable")) {
						return true
					}
				}
				return false
			})
		}
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
