package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/clustertest"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/pins"
	"github.com/mcpgw/mcpgw/internal/pins/redispins"
	"github.com/mcpgw/mcpgw/internal/redisconn"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// TestToolsCommandRedis: with --config naming a config with
// cluster.redis, "mcpgw tools" lists and approves the pins in Redis that
// the replicas share; with Redis down it fails at once with an error that
// names Redis and not its password.
func TestToolsCommandRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const password = "tools-command-redis-password"
	rds := clustertest.StartRedisWith(t, clustertest.RedisOptions{Password: password})
	conn, err := redisconn.New(&config.Redis{URL: rds.URL(), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := redispins.New(conn, nil) // a replica
	defer st.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "mcpgw.yaml")
	cfgYAML := `state_dir: ` + filepath.Join(dir, "state") + `
cluster:
  replica_id: r0
  key_env: MCPGW_CLUSTER_KEY
  peers: ["http://127.0.0.1:9"]
  redis: {url_env: REDIS_URL, timeout: 300ms}
servers:
  gh: {command: [gh-mcp], pin_tools: enforce}
`
	if err := os.WriteFile(cfgPath, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"MCPGW_CLUSTER_KEY=" + strings.Repeat("k", 40), "REDIS_URL=" + rds.URL()}
	st.Record(redispinsPin("gh", "create_issue", "bbbbbbbbbbbbbbbb22", "cccccccccccccccc33"))
	if err := st.SetModes(t.Context(), map[string]string{"gh": "enforce"}); err != nil {
		t.Fatal(err)
	}
	// Record writes in the background.
	if !testutil.WaitUntil(time.Second, func() bool {
		p, _ := st.Load(t.Context(), "gh")
		return p["create_issue"] != nil
	}) {
		t.Fatal("the pin was never written")
	}
	code, out, errOut := runBinary(t, dir, env, "tools", "list", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "pending: hidden until approved") {
		t.Fatalf("tools list: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	code, out, errOut = runBinary(t, dir, env, "tools", "approve", "--config", cfgPath, "gh", "create_issue")
	if code != 0 || !strings.Contains(out, "approved create_issue of server gh") {
		t.Fatalf("tools approve: exit %d, stderr %q, stdout %q", code, errOut, out)
	}
	if p, err := st.Load(t.Context(), "gh"); err != nil || p["create_issue"] == nil || p["create_issue"].Pending() {
		t.Fatalf("the replica's view after the approval: %+v, %v; want it approved", p["create_issue"], err)
	}
	rds.Stop()
	start := time.Now()
	code, out, errOut = runBinary(t, dir, env, "tools", "approve", "--config", cfgPath, "gh", "create_issue")
	if code != 1 || !strings.Contains(errOut, "cluster.redis") || strings.Contains(errOut+out, password) {
		t.Errorf("tools approve with Redis down: exit %d, stderr %q; want 1, naming cluster.redis, without the password", code, errOut)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("tools approve with Redis down took %s", d)
	}
}

func redispinsPin(server, tool, approved, seen string) pins.Pin {
	return pins.Pin{Server: server, Tool: tool, Approved: approved, ApprovedDef: []byte("{}"), Seen: seen, SeenDef: []byte(`{"x":1}`)}
}
