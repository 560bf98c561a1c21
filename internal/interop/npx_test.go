package interop

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/sandbox"
)

// tinyServer is a stdio MCP server without dependencies, packed as an npm
// package so that npx can install it offline; whereami answers the
// directory npx installed it in.
const tinyServer = `#!/usr/bin/env node
const rl = require("readline").createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + "\n");
rl.on("line", (line) => {
  const m = JSON.parse(line);
  if (m.id === undefined) return;
  if (m.method === "initialize") {
    send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "tiny", version: "1" } } });
  } else if (m.method === "tools/list") {
    send({ jsonrpc: "2.0", id: m.id, result: { tools: [{ name: "whereami", inputSchema: { type: "object" } }] } });
  } else if (m.method === "tools/call") {
    send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: __dirname }] } });
  } else {
    send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "method not found" } });
  }
});
`

// packTiny writes the tiny server's package and packs it with npm
// (offline); it returns the tarball.
func packTiny(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("npm is not on PATH (%s=1)", requireEnv)
		}
		t.Skip("skipping: npm is not on PATH")
	}
	src, out := t.TempDir(), t.TempDir()
	writeTestFile(t, filepath.Join(src, "package.json"), `{"name": "mcpgw-tiny-server", "version": "1.0.0", "bin": {"mcpgw-tiny-server": "server.js"}}`)
	writeTestFile(t, filepath.Join(src, "server.js"), tinyServer)
	cmd := exec.Command(npm, "pack", "--offline", "--pack-destination", out)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "npm_config_cache="+t.TempDir())
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm pack: %v\n%s", err, b)
	}
	return filepath.Join(out, "mcpgw-tiny-server-1.0.0.tgz")
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestNpxUnderTheDefaultSandbox: a server launched through npx, which
// installs its package into npm's cache, runs under the default Landlock
// sandbox without sandbox: none: npm's cache is the server's private
// cache directory under state_dir (the user's ~/.npm is not writable to
// it, and under /root may not be made so).
func TestNpxUnderTheDefaultSandbox(t *testing.T) {
	ne := requireNode(t)
	if err := sandbox.Check(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	if _, err := exec.LookPath("npx"); err != nil {
		t.Skip("skipping: npx is not on PATH")
	}
	tgz := packTiny(t)
	state, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := startFixture(t, ne, `listen: 127.0.0.1:0
state_dir: "${STATE}"
servers:
  tiny:
    command: ["npx", "--offline", "-y", "--package=${TGZ}", "mcpgw-tiny-server"]
    read_paths: ["${PKGS}"]
    timeouts: {startup: 60s}
`, map[string]string{"STATE": state, "TGZ": tgz, "PKGS": filepath.Dir(tgz)}, "")
	cs := connectGo(t, f, "tiny", "streamable-2025-11-25", nil)
	got := callTexts(t, cs, &mcp.CallToolParams{Name: "whereami"})
	cache := filepath.Join(state, "cache", "tiny", "npm", "_npx")
	if len(got) != 1 || !strings.HasPrefix(got[0], cache) {
		t.Errorf("npx installed the server in %q, want it under its private cache %s", got, cache)
	}
}
