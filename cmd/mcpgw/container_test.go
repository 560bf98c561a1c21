package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/enginetest"
	"github.com/mcpgw/mcpgw/internal/runtime"
)

// serveContainer runs "mcpgw serve" with one container server named
// server and returns the process, its base URL and its log (stderr).
func serveContainer(t *testing.T, bin, server, image string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "mcpgw.yaml")
	yaml := "listen: 127.0.0.1:0\nservers:\n  " + server + ":\n    runtime: container\n    timeouts: {kill_grace: 1s}\n    container: {image: " + image + "}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfg)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if v, ok := os.LookupEnv("DOCKER_HOST"); ok {
		cmd.Env = append(cmd.Env, "DOCKER_HOST="+v)
	}
	_, base, logs := awaitServe(t, cmd)
	return cmd, base, logs
}

func connectServer(t *testing.T, base, server string) {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "cmd-test", Version: "1"}, nil)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	cs, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: base + "/mcp/" + server, HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}}); err != nil || res.IsError {
		t.Fatalf("echo: %v %v", err, res)
	}
}

func containersOf(t *testing.T, cli *client.Client, server string) int {
	t.Helper()
	return len(enginetest.Containers(t, cli, runtime.LabelServer+"="+server))
}

func waitContainers(t *testing.T, cli *client.Client, server string, want int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for containersOf(t, cli, server) != want {
		if time.Now().After(deadline) {
			t.Fatalf("containers of %s: %d, want %d after %s", server, containersOf(t, cli, server), want, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// After SIGTERM of the gateway no container of it exists; after SIGKILL the
// leftovers are removed when the gateway starts again.
func TestContainerSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	image := enginetest.TestImage(t)
	cli := enginetest.Client(t)
	bin := buildBinary(t)

	t.Run("SIGTERM", func(t *testing.T) {
		const server = "csigterm"
		cmd, base, logs := serveContainer(t, bin, server, image)
		connectServer(t, base, server)
		connectServer(t, base, server)
		waitContainers(t, cli, server, 2, 5*time.Second)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("gateway exited with %v after SIGTERM (log: %s)", err, logs.String())
		}
		if n := containersOf(t, cli, server); n != 0 {
			t.Errorf("%d containers left after SIGTERM", n)
		}
	})

	t.Run("SIGKILL then restart", func(t *testing.T) {
		const server = "csigkill"
		cmd, base, _ := serveContainer(t, bin, server, image)
		connectServer(t, base, server)
		waitContainers(t, cli, server, 1, 5*time.Second)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if n := containersOf(t, cli, server); n != 1 {
			t.Fatalf("%d containers after SIGKILL, want the 1 leftover", n)
		}
		cmd2, _, logs := serveContainer(t, bin, server, image)
		if n := containersOf(t, cli, server); n != 0 {
			t.Errorf("%d containers left after restart, want the sweep to remove them", n)
		}
		if !strings.Contains(logs.String(), "removed a container left by an earlier gateway instance") {
			t.Errorf("the sweep was not logged: %s", logs.String())
		}
		_ = cmd2.Process.Signal(syscall.SIGTERM)
		_ = cmd2.Wait()
	})
}
