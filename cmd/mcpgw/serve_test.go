package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgw/mcpgw/internal/config"
)

const testToken = "0123456789abcdef0123456789abcdef-test"

// TestStartupLine: the line names the URL of every server, under
// public_url when set, and says when a client needs credentials.
func TestStartupLine(t *testing.T) {
	tests := []struct {
		name, yaml, addr, want string
	}{
		{"one server", "servers: {demo: {command: [x]}}", "127.0.0.1:8080",
			"mcpgw v1 listening on http://127.0.0.1:8080 — connect an MCP client to http://127.0.0.1:8080/mcp/demo"},
		{"every server", "servers: {github: {command: [x]}, fs: {command: [x]}}", "127.0.0.1:9000",
			"mcpgw v1 listening on http://127.0.0.1:9000 — connect MCP clients to http://127.0.0.1:9000/mcp/fs, http://127.0.0.1:9000/mcp/github"},
		{"public url and tokens", "public_url: https://mcp.example.com\nallowed_hosts: [mcp.example.com]\nauth: {tokens: [{name: ci, value_env: TOKEN}]}\nservers: {fs: {command: [x]}, github: {command: [x]}}", "127.0.0.1:8080",
			`mcpgw v1 listening on http://127.0.0.1:8080 — connect MCP clients to https://mcp.example.com/mcp/fs, https://mcp.example.com/mcp/github (needs a token: "Authorization: Bearer <token>", see auth.tokens)`},
		{"a JWT", "auth: {jwt: {issuer: https://team.cloudflareaccess.com, audiences: [x]}}\nservers: {fs: {command: [x]}}", "127.0.0.1:8080",
			"mcpgw v1 listening on http://127.0.0.1:8080 — connect an MCP client to http://127.0.0.1:8080/mcp/fs (needs a JWT from https://team.cloudflareaccess.com)"},
		{"a token or a JWT", "auth: {tokens: [{name: ci, value_env: TOKEN}], jwt: {issuer: https://team.cloudflareaccess.com, audiences: [x]}}\nservers: {fs: {command: [x]}}", "127.0.0.1:8080",
			"mcpgw v1 listening on http://127.0.0.1:8080 — connect an MCP client to http://127.0.0.1:8080/mcp/fs (needs a token: a bearer token from auth.tokens or a JWT from https://team.cloudflareaccess.com)"},
		{"every interface", "listen: 0.0.0.0:8080\nauth: {mode: none}\nservers: {fs: {command: [x]}}", "0.0.0.0:8080",
			"mcpgw v1 listening on http://0.0.0.0:8080 — connect an MCP client to http://127.0.0.1:8080/mcp/fs"},
		{"every IPv6 interface", "listen: \"[::]:8080\"\nauth: {mode: none}\nservers: {fs: {command: [x]}}", "[::]:8080",
			"mcpgw v1 listening on http://[::]:8080 — connect an MCP client to http://[::1]:8080/mcp/fs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte(tt.yaml), func(string) (string, bool) { return testToken, true })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, startupLine(cfg, tt.addr, "v1")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestStartupLineOfTheBinary: what "mcpgw serve" prints for a config with
// two servers, a public URL and tokens.
func TestStartupLineOfTheBinary(t *testing.T) {
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
  b: {command: ["${MCPGW_BIN}", "demo-server"]}
  a: {command: ["${MCPGW_BIN}", "demo-server"]}
`)
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "MCPGW_TEST_TOKEN=" + testToken}
	line, base, _ := awaitServe(t, cmd)
	want := "— connect MCP clients to https://mcp.example.com/mcp/a, https://mcp.example.com/mcp/b (needs a token: \"Authorization: Bearer <token>\", see auth.tokens)\n"
	if !strings.HasSuffix(line, want) || !strings.Contains(line, "listening on "+base+" ") {
		t.Errorf("startup line %q, want it to end with %q", line, want)
	}
}
