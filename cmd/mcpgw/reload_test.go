package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// reloadYAML is a config of demo servers, with extra top-level YAML; keys
// appended to it belong to the last server.
func reloadYAML(stateDir, extra string, servers ...string) string {
	y := fmt.Sprintf("listen: 127.0.0.1:0\nstate_dir: %s\nlimits: {shutdown_timeout: 2s}\n%sservers:\n", stateDir, extra)
	for _, s := range servers {
		y += fmt.Sprintf("  %s:\n    command: [\"${MCPGW_BIN}\", \"demo-server\"]\n", s)
	}
	return y
}

// connectTo opens a session-era client session to one server of base.
func connectTo(t *testing.T, base, server string) (*mcp.ClientSession, error) {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "cmd-test", Version: "1"}, nil)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: base + "/mcp/" + server, HTTPClient: hc, MaxRetries: -1},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err == nil {
		t.Cleanup(func() { _ = cs.Close() })
	}
	return cs, err
}

// echo calls the demo server's echo, bounded so that a hang fails the
// test instead of stalling it.
func echo(cs *mcp.ClientSession) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err == nil && res.IsError {
		err = fmt.Errorf("tool error")
	}
	return err
}

// TestReloadOfTheBinary: SIGHUP and "mcpgw reload" re-read the file under
// a live session with a call in flight, an invalid file is refused with
// each problem logged once and the old configuration serving, reload:
// watch picks up a saved file, and SIGTERM afterwards leaves nothing.
func TestReloadOfTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	path := filepath.Join(dir, "mcpgw.yaml")
	writeFile(t, path, reloadYAML(state, "", "a"))
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	_, base, logs := awaitServe(t, cmd)
	gw := cmd.Process.Pid

	a, err := connectTo(t, base, "a")
	if err != nil {
		t.Fatal(err)
	}
	kids := childrenOf(gw)
	if len(kids) != 1 {
		t.Fatalf("children %v, want a's one process", kids)
	}
	aPID := kids[0]
	inflight := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := a.CallTool(ctx, &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"seconds": 3}})
		inflight <- err
	}()

	// An invalid file: refused, each problem once, a keeps serving.
	writeFile(t, path, reloadYAML(state, "reload: sometimes\n", "a")+"    mode: sometimes\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.WaitFor(t, "still serving the previous configuration", 10*time.Second)
	for _, p := range []string{`reload: must be one of signal, watch (got \"sometimes\")`, `servers.a.mode: must be launcher or daemon`} {
		if n := strings.Count(logs.String(), p); n != 1 {
			t.Errorf("problem %q logged %d times, want once", p, n)
		}
	}
	if err := echo(a); err != nil {
		t.Errorf("a after a refused reload: %v", err)
	}

	// SIGHUP with a valid file: a is unchanged (same process, same
	// session, the call in flight finishes), b is added.
	writeFile(t, path, reloadYAML(state, "", "a", "b"))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.WaitFor(t, `"msg":"configuration reloaded","trigger":"SIGHUP"`, 10*time.Second)
	if err := <-inflight; err != nil {
		t.Errorf("call in flight across SIGHUP: %v", err)
	}
	if err := echo(a); err != nil {
		t.Errorf("a after SIGHUP: %v", err)
	}
	if !alive(aPID) {
		t.Errorf("a's process %d is gone after a reload that did not change a", aPID)
	}
	b, err := connectTo(t, base, "b")
	if err != nil {
		t.Fatalf("added server b: %v", err)
	}
	if err := echo(b); err != nil {
		t.Errorf("b: %v", err)
	}

	// mcpgw reload, refused: exit 1, the problems on stderr.
	writeFile(t, path, reloadYAML(state, "", "b")+"    enviroment: {X: y}\n")
	run := func(args ...string) (int, string, string) {
		t.Helper()
		c := exec.Command(bin, args...)
		c.Env = cmd.Env
		var stdout, stderr strings.Builder
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, stdout.String(), stderr.String()
	}
	code, stdout, stderr := run("reload", "--state-dir", state)
	if code != 1 || !strings.Contains(stderr, "servers.b.enviroment: unknown key; did you mean env?") || !strings.Contains(stderr, "still serving the previous configuration") {
		t.Errorf("mcpgw reload of an invalid file: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}

	// mcpgw reload: a removed (its session ends by the drain deadline and
	// its process stops), and reload: watch turned on.
	writeFile(t, path, reloadYAML(state, "reload: watch\n", "b"))
	code, stdout, stderr = run("reload", "--config", path)
	if code != 0 || !strings.Contains(stdout, "reloaded; unchanged: b; removed: a;") {
		t.Errorf("mcpgw reload: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	waitGone(t, []int{aPID}, 10*time.Second)
	if err := echo(a); err == nil {
		t.Error("a's session still works after its server was removed and drained")
	}

	// reload: watch: saving the file is enough.
	logs.WaitFor(t, "watching the config file for changes", 5*time.Second)
	writeFile(t, path, reloadYAML(state, "reload: watch\n", "b", "c"))
	logs.WaitFor(t, `"msg":"configuration reloaded","trigger":"file changed"`, 10*time.Second)
	c, err := connectTo(t, base, "c")
	if err != nil {
		t.Fatalf("server c added by saving the file: %v", err)
	}
	if err := echo(c); err != nil {
		t.Errorf("c: %v", err)
	}

	kids = childrenOf(gw)
	if len(kids) != 2 || slices.Contains(kids, aPID) {
		t.Errorf("children %v, want b's and c's", kids)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("gateway exited with %v after SIGTERM, want status 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("gateway did not exit after SIGTERM")
	}
	waitGone(t, kids, 5*time.Second)
	if _, err := os.Lstat(filepath.Join(state, "mcpgw.sock")); !os.IsNotExist(err) {
		t.Errorf("control socket left after exit: %v", err)
	}
	if strings.Contains(logs.String(), `"level":"ERROR"`) && !strings.Contains(logs.String(), "reload refused") {
		t.Errorf("unexpected errors in the log:\n%s", logs.String())
	}
}

// TestSIGHUPWithoutConfigFile: SIGHUP to a gateway serving the built-in
// configuration does not kill it (it used to exit 129): it says there is
// no file to re-read and goes on serving.
func TestSIGHUPWithoutConfigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cmd := exec.Command(buildBinary(t), "serve", "--listen", "127.0.0.1:0")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	_, base, logs := awaitServe(t, cmd)
	cs := connectDemo(t, base)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs.WaitFor(t, "there is no file to re-read", 10*time.Second)
	if err := echo(cs); err != nil {
		t.Errorf("after SIGHUP: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGHUP then SIGTERM: %v, want status 0", err)
	}
}
