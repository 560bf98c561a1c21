package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/auth"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/proctest"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// execute runs the program as main does, run then report of its error,
// with stdin as its standard input (none if not given).
func execute(args []string, env func(string) (string, bool), stdin ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(strings.Join(stdin, "")), &out, &errOut, env)
	report(&errOut, err)
	return exitCode(err), out.String(), errOut.String()
}

func TestRunCommands(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(good, []byte("servers:\n  fs:\n    command: [\"/bin/cat\"]\n"), 0o600)
	os.WriteFile(bad, []byte("servers:\n  fs:\n    comand: [\"/bin/cat\"]\n    max_concurrent: -1\n"), 0o600)
	// Workspaces are checked at load: a sensitive host path and a subpath
	// whose symlink leads out of its workspace.
	badWS := filepath.Join(dir, "badws.yaml")
	os.Mkdir(filepath.Join(dir, "ws"), 0o755)
	os.Symlink(dir, filepath.Join(dir, "ws", "up"))
	os.WriteFile(badWS, []byte("workspaces: {sys: /etc, ws: "+filepath.Join(dir, "ws")+"}\nservers:\n  fs:\n    command: [\"/bin/cat\"]\n    workspaces: [{name: ws, subpath: up}]\n"), 0o600)
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"version", []string{"version"}, 0, "mcpgw ", ""},
		{"no command", nil, 2, "", "Usage"},
		{"unknown command", []string{"frobnicate"}, 2, "", `mcpgw: unknown command "frobnicate"; "mcpgw help" lists the commands`},
		{"check ok", []string{"check", "--config", good}, 0, "ok (1 server(s): fs)", ""},
		{"check lists every problem", []string{"check", "--config", bad}, 1, "", bad + ": servers.fs.comand"},
		{"check without file", []string{"check"}, 2, "", "mcpgw: check: no config file given"},
		{"check refuses a sensitive workspace", []string{"check", "--config", badWS}, 1, "", "workspaces.sys: must not be /etc"},
		{"check refuses a subpath leading out", []string{"check", "--config", badWS}, 1, "", "servers.fs.workspaces[0].subpath: subpath up leads to"},
		{"check missing file", []string{"check", "--config", filepath.Join(dir, "none.yaml")}, 1, "", "none.yaml does not exist"},
		{"serve bad listen", []string{"serve", "--listen", "nonsense"}, 2, "", `mcpgw: --listen "nonsense": missing port in address`},
		{"serve public listen without auth", []string{"serve", "--listen", "0.0.0.0:0"}, 2, "", "no auth is configured"},
		{"token", []string{"token", "laptop"}, 0, "- {name: laptop, sha256: ", ""},
		{"token bad name", []string{"token", "a@b"}, 2, "", `mcpgw: token name "a@b": use 1 to 64 characters`},
		{"token too many args", []string{"token", "a", "b"}, 2, "", `mcpgw: token: unexpected argument "b"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := execute(c.args, noEnv)
			if code != c.code {
				t.Errorf("exit code %d, want %d (stderr %s)", code, c.code, stderr)
			}
			if !strings.Contains(stdout, c.stdout) {
				t.Errorf("stdout %q lacks %q", stdout, c.stdout)
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, c.stderr)
			}
		})
	}
	if _, _, stderr := execute([]string{"check", "--config", bad}, noEnv); !strings.Contains(stderr, "max_concurrent") {
		t.Errorf("check stopped at the first problem: %s", stderr)
	}
}

// TestToken: the printed token is strong, printed once, and the config
// line's digest authenticates it.
func TestToken(t *testing.T) {
	code, stdout, stderr := execute([]string{"token", "ci"}, noEnv)
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got:\n%s", stdout)
	}
	token, line := lines[1], lines[3]
	if len(token) != 43 || strings.Count(stdout, token) != 1 {
		t.Errorf("token %q: want 43 base64url characters, printed once", token)
	}
	cfg, err := config.Parse([]byte("auth:\n  tokens:\n    "+line+"\nservers: {a: {command: [x]}}\n"), nil)
	if err != nil {
		t.Fatalf("config line %q: %v", line, err)
	}
	id, err := auth.New(&cfg.Auth, nil).Authenticate(context.Background(), http.Header{"Authorization": {"Bearer " + token}})
	if err != nil || id.Name != "ci" {
		t.Errorf("the token does not authenticate as ci: %v %v", id, err)
	}
}

// TestMain removes the binary that buildBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// buildBinary builds mcpgw once per test process for the tests that run
// it as a person would, and returns its path.
func buildBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "mcpgw-cmd-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "mcpgw")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var listenLine = regexp.MustCompile(`listening on http://([0-9.:]+) `)

// startServe runs "mcpgw serve" with the embedded default config and
// returns the process and its base URL.
func startServe(t *testing.T, bin string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	line, base, _ := awaitServe(t, cmd)
	if !strings.Contains(line, "/mcp/demo") {
		t.Fatalf("startup line %q does not say where to connect", line)
	}
	return cmd, base
}

// awaitServe starts cmd (an "mcpgw serve"), stopped at the end of the test,
// and waits for its startup line; it returns that line, the base URL it
// names, and the process's stderr (its log).
func awaitServe(t *testing.T, cmd *exec.Cmd) (line, base string, logs *testutil.Buffer) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs = &testutil.Buffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err = bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the startup line: %v (log: %s)", err, logs.String())
	}
	m := listenLine.FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("startup line %q does not say where to connect", line)
	}
	return line, "http://" + m[1], logs
}

// connectDemo opens a session-based client session (one demo-server
// process each, in the default launcher mode) and calls echo.
func connectDemo(t *testing.T, base string) *mcp.ClientSession {
	t.Helper()
	return connectDemoVersion(t, base, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
}

// connectDemoVersion is connectDemo with session options so (nil: the
// client's default, 2026-07-28, which needs no session).
func connectDemoVersion(t *testing.T, base string, so *mcp.ClientSessionOptions) *mcp.ClientSession {
	t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "cmd-test", Version: "1"}, nil)
	hc := &http.Client{Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: base + "/mcp/demo", HTTPClient: hc}, so)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.IsError {
		t.Fatalf("echo: %v %v", err, res)
	}
	return cs
}

func childrenOf(pid int) []int { return proctest.ChildrenOf(pid) }

func alive(pid int) bool { return proctest.Alive(pid) }

func waitGone(t *testing.T, pids []int, within time.Duration) {
	t.Helper()
	for _, p := range pids {
		testutil.Eventually(t, within, fmt.Sprintf("process %d to exit", p), func() bool { return !alive(p) })
	}
}

// The README's first command with the embedded config: serves the demo
// server, and SIGTERM drains, stops every child and exits 0.
func TestServeDefaultConfigAndSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	cmd, base := startServe(t, bin)
	// The Go SDK client's default protocol (2026-07-28): its requests run
	// in the process of its identity (anonymous here), kept warm; each
	// session-era client gets a process of its own.
	if v := connectDemoVersion(t, base, nil).InitializeResult().ProtocolVersion; v != "2026-07-28" {
		t.Errorf("default client negotiated %s, want 2026-07-28", v)
	}
	connectDemo(t, base)
	connectDemo(t, base)
	kids := childrenOf(cmd.Process.Pid)
	if len(kids) != 3 {
		t.Fatalf("want 3 demo-server children (the 2026-07-28 client's and two sessions'), got %v", kids)
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
	waitGone(t, kids, 2*time.Second)
}

// After SIGKILL of the gateway, its children die with it (parent-death
// signal).
func TestSIGKILLTakesChildren(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	cmd, base := startServe(t, bin)
	connectDemo(t, base)
	kids := childrenOf(cmd.Process.Pid)
	if len(kids) != 1 {
		t.Fatalf("want 1 child, got %v", kids)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	waitGone(t, kids, 2*time.Second)
}
