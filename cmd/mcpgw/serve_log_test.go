package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeLogsEachServer: at start, serve logs one line per server with
// its URL (under public_url), runtime and mode, and, as a warning, what
// /readyz will report about a server that cannot start here.
func TestServeLogsEachServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	cfg := filepath.Join(t.TempDir(), "mcpgw.yaml")
	writeFile(t, cfg, `listen: 127.0.0.1:0
public_url: https://mcp.example.com
allowed_hosts: [mcp.example.com]
auth: {tokens: [{name: ci, value_env: MCPGW_TEST_TOKEN}]}
servers:
  demo: {command: ["${MCPGW_BIN}", "demo-server"], mode: daemon}
  github: {command: [mcpgw-no-such-server, stdio]}
`)
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "MCPGW_TEST_TOKEN=" + testToken}
	_, _, logs := awaitServe(t, cmd)
	lines := map[string]map[string]any{}
	deadline := time.Now().Add(5 * time.Second)
	for len(lines) < 2 && time.Now().Before(deadline) {
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && (m["msg"] == "serving" || m["msg"] == "server not ready") {
				lines[m["tool"].(string)] = m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := lines["demo"]; d == nil || d["msg"] != "serving" || d["level"] != "INFO" || d["url"] != "https://mcp.example.com/mcp/demo" ||
		d["runtime"] != "native" || d["mode"] != "daemon" || d["problem"] != nil {
		t.Errorf("the demo server's line: %v", d)
	}
	if g := lines["github"]; g == nil || g["msg"] != "server not ready" || g["level"] != "WARN" || g["url"] != "https://mcp.example.com/mcp/github" ||
		!strings.Contains(fmt.Sprint(g["problem"]), `command "mcpgw-no-such-server": executable file not found`) {
		t.Errorf("the github server's line: %v", g)
	}
}
