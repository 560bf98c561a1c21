package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/demo"
	"github.com/mcpgw/mcpgw/internal/gateway"
	"github.com/mcpgw/mcpgw/internal/sandbox"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// TestMain doubles as mcpgw's demo server (a Go SDK server), which the
// gateway under test starts from this very binary.
func TestMain(m *testing.M) {
	if sandbox.Requested() {
		os.Exit(sandbox.Main())
	}
	if os.Getenv("MCPGW_TEST_DEMO") == "1" {
		if err := demo.Run(context.Background(), os.Stdin, os.Stdout, "test"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// requireEnv is the variable that turns a missing Node set-up from a skip
// into a failure; .ci/run sets it after `npm ci`.
const requireEnv = "MCPGW_REQUIRE_NODE"

// nodeEnv locates Node and the npm packages installed under interop/.
type nodeEnv struct {
	node       string // the node binary
	dir        string // the interop/ directory
	client     string // interop/client.mjs
	client2    string // interop/client2.mjs (TypeScript SDK v2)
	everything string // server-everything's entry point
	filesystem string // server-filesystem's entry point
}

var (
	nodeOnce sync.Once
	nodeVal  *nodeEnv
	nodeErr  error
)

// requireNode returns the Node set-up, or skips the test (fails it under
// MCPGW_REQUIRE_NODE=1) saying what is missing.
func requireNode(t testing.TB) *nodeEnv {
	t.Helper()
	nodeOnce.Do(func() { nodeVal, nodeErr = locateNode() })
	if nodeErr != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("interop set-up missing (%s=1): %v", requireEnv, nodeErr)
		}
		t.Skipf("skipping interop test: %v (install Node 18+, run `npm ci` in interop/, or set %s=1 to make this a failure)", nodeErr, requireEnv)
	}
	return nodeVal
}

func locateNode() (*nodeEnv, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not on PATH")
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(wd, "..", "..", "interop") // tests run in internal/interop
	e := &nodeEnv{node: node, dir: dir, client: filepath.Join(dir, "client.mjs"), client2: filepath.Join(dir, "client2.mjs")}
	for _, p := range []struct {
		pkg string
		dst *string
	}{
		{"@modelcontextprotocol/sdk", nil},
		{"@modelcontextprotocol/client", nil},
		{"@modelcontextprotocol/server-everything", &e.everything},
		{"@modelcontextprotocol/server-filesystem", &e.filesystem},
	} {
		entry, err := packageBin(dir, p.pkg)
		if err != nil {
			return nil, err
		}
		if p.dst != nil {
			*p.dst = entry
		}
	}
	return e, nil
}

// packageBin resolves the file that package pkg's single bin entry points
// to (dist/index.js for both servers), so that tests run `node FILE` rather
// than npx: no network, no npx start-up time. It returns "" for a package
// without a bin (the SDKs), which only has to be installed.
func packageBin(dir, pkg string) (string, error) {
	pkgDir := filepath.Join(dir, "node_modules", pkg)
	b, err := os.ReadFile(filepath.Join(pkgDir, "package.json"))
	if err != nil {
		return "", fmt.Errorf("npm package %s is not installed in %s/node_modules", pkg, dir)
	}
	var pj struct {
		Bin json.RawMessage `json:"bin"`
	}
	if err := json.Unmarshal(b, &pj); err != nil {
		return "", fmt.Errorf("npm package %s: reading package.json: %w", pkg, err)
	}
	var one string
	var many map[string]string
	switch {
	case len(pj.Bin) == 0:
		return "", nil
	case json.Unmarshal(pj.Bin, &one) == nil:
	case json.Unmarshal(pj.Bin, &many) == nil && len(many) == 1:
		for _, v := range many {
			one = v
		}
	default:
		return "", fmt.Errorf("npm package %s: cannot tell which of its bins to run", pkg)
	}
	entry := filepath.Join(pkgDir, one)
	if _, err := os.Stat(entry); err != nil {
		return "", fmt.Errorf("npm package %s: %w", pkg, err)
	}
	return entry, nil
}

// serversYAML publishes server-everything, server-filesystem (on fsDir)
// and mcpgw's demo server in both modes: ev/evd, fs/fsd and demo/demod (the
// d is for daemon).
//
// Every native server runs under the default Landlock sandbox: the npm
// packages are readable through read_paths, and server-filesystem's
// directory is a read-only workspace.
const serversYAML = `listen: 127.0.0.1:0
workspaces: {files: "${FSDIR}"}
servers:
  ev:
    command: ["${NODE}", "${EVERYTHING}", "stdio"]
    read_paths: ["${INTEROP}"]
    max_concurrent: 8
  evd:
    mode: daemon
    command: ["${NODE}", "${EVERYTHING}", "stdio"]
    read_paths: ["${INTEROP}"]
    max_concurrent: 8
  fs:
    command: ["${NODE}", "${FILESYSTEM}", "${FSDIR}"]
    read_paths: ["${INTEROP}"]
    workspaces: [{name: files, mode: ro}]
  fsd:
    mode: daemon
    command: ["${NODE}", "${FILESYSTEM}", "${FSDIR}"]
    read_paths: ["${INTEROP}"]
    workspaces: [{name: files, mode: ro}]
  demo:
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
  demod:
    mode: daemon
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
`

// fixture is a running gateway in front of the npm servers.
type fixture struct {
	node  *nodeEnv
	base  string // http://127.0.0.1:port
	fsDir string // the directory server-filesystem serves
	logs  *testutil.Buffer
}

func (f *fixture) url(server string) string { return f.base + "/mcp/" + server }

// newFixture starts a gateway with serversYAML and a served directory
// holding hello.txt and sub/.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	ne := requireNode(t)
	// The filesystem server resolves symlinks in its allowed directories;
	// resolve ours too so that paths in its answers compare equal.
	fsDir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fsDir, "hello.txt"), []byte("hello interop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(fsDir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	interopDir, err := filepath.EvalSymlinks(ne.dir)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"TESTBIN": self, "NODE": ne.node, "EVERYTHING": ne.everything, "FILESYSTEM": ne.filesystem, "FSDIR": fsDir, "INTEROP": interopDir}
	return startFixture(t, ne, serversYAML, vars, fsDir)
}

// startFixture parses yaml with vars (then the environment) for ${…} and
// starts a gateway with it on a loopback port, shut down at the end of the
// test; its last log lines are shown when the test fails.
func startFixture(t testing.TB, ne *nodeEnv, yaml string, vars map[string]string, fsDir string) *fixture {
	t.Helper()
	state := t.TempDir() // the default state_dir (servers' caches): not the user's
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) {
		if v, ok := vars[k]; ok {
			return v, true
		}
		if k == "XDG_STATE_HOME" {
			return state, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &testutil.Buffer{}
	g := gateway.New(cfg, &gateway.Options{
		Logger:  slog.New(slog.NewJSONHandler(logs, nil)),
		Getenv:  os.LookupEnv,
		Version: "interop-test",
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
		if t.Failed() {
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			for _, l := range lines[max(0, len(lines)-40):] {
				t.Logf("gateway log: %.400s", l)
			}
		}
	})
	return &fixture{node: ne, base: "http://" + ln.Addr().String(), fsDir: fsDir, logs: logs}
}
