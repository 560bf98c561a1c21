package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/sandbox"
)

// requireNodeEnv turns a missing npm set-up into a failure (CI sets it).
const requireNodeEnv = "MCPGW_REQUIRE_NODE"

// skipWithoutNpm skips the test (fails it under MCPGW_REQUIRE_NODE=1) when
// npx or the npm registry is missing.
func skipWithoutNpm(t *testing.T) {
	t.Helper()
	miss := func(why string) {
		t.Helper()
		if os.Getenv(requireNodeEnv) == "1" {
			t.Fatalf("%s (%s=1)", why, requireNodeEnv)
		}
		t.Skipf("skipping: %s (set %s=1 to make this a failure)", why, requireNodeEnv)
	}
	if _, err := exec.LookPath("npx"); err != nil {
		miss("npx is not on PATH")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ping := exec.CommandContext(ctx, "npm", "ping")
	ping.Env = append(os.Environ(), "npm_config_cache="+t.TempDir())
	if out, err := ping.CombinedOutput(); err != nil {
		miss("the npm registry does not answer: " + strings.TrimSpace(string(out)))
	}
}

// TestReadmeNpxExampleServes serves the README's first config as written
// (its directories made in a temporary directory) with the built binary
// and a HOME npm may not write to under the sandbox: npx fetches
// server-filesystem from the registry into the server's private cache,
// under the default Landlock sandbox, and a real client lists the
// workspace through it.
func TestReadmeNpxExampleServes(t *testing.T) {
	if testing.Short() {
		t.Skip("fetches an npm package")
	}
	if err := sandbox.Check(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	skipWithoutNpm(t)
	bin := buildBinary(t)
	path, env := readmeExample(t, "first-config")
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`workspaces: \{projects: (\S+)\}`).FindSubmatch(text)
	if m == nil {
		t.Fatalf("the first config has no projects workspace:\n%s", text)
	}
	projects := string(m[1])
	writeFile(t, filepath.Join(projects, "notes.txt"), "hello\n")
	home := t.TempDir()
	cmd := exec.Command(bin, "serve", "--config", path, "--listen", "127.0.0.1:0")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	_, base, logs := awaitServe(t, cmd)
	client := mcp.NewClient(&mcp.Implementation{Name: "readme-test", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "/mcp/fs"}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatalf("connect to the npx example: %v\nlog:\n%s", err, logs.String())
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "list_directory", Arguments: map[string]any{"path": projects}})
	if err != nil || res.IsError {
		t.Fatalf("list_directory: %v %+v\nlog:\n%s", err, res, logs.String())
	}
	if got := res.Content[0].(*mcp.TextContent).Text; !strings.Contains(got, "notes.txt") {
		t.Errorf("list_directory = %q, want notes.txt", got)
	}
	cache := filepath.Join(home, ".local", "state", "mcpgw", "cache", "fs", "npm", "_npx")
	if _, err := os.Stat(cache); err != nil {
		t.Errorf("npx did not use the server's private cache: %v", err)
	}
}
