package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/enginetest"
	"github.com/mcpgw/mcpgw/internal/sandbox"
	"github.com/mcpgw/mcpgw/internal/testserver"
)

// Workspaces through the gateway with a real MCP client: the
// policy is enforced by the kernel (Landlock natively, mounts in a
// container), so the test server's plain file calls are what is checked.

// workspaceDirs returns real (symlink-free) directories: a ro workspace
// holding ro.txt, a rw workspace, and an outside directory holding
// secret.txt.
func workspaceDirs(t testing.TB) (ro, rw, outside string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ro, rw, outside = filepath.Join(base, "ro"), filepath.Join(base, "rw"), filepath.Join(base, "outside")
	for _, d := range []string{ro, rw, outside} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		// The container runs as 65534: let it write the rw workspace.
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ro, "ro.txt"), []byte("read me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	return ro, rw, outside
}

func TestWorkspacesNative(t *testing.T) {
	if err := sandbox.Check(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ro, rw, outside := workspaceDirs(t)
	h := newHarness(t, "workspaces: {docs: "+ro+", out: "+rw+"}\nservers:\n"+serverYAML("ws", `    workspaces:
      - {name: docs}
      - {name: out, mode: rw}
`))
	resp, err := http.Get(h.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var rd struct {
		Servers map[string]struct {
			Ready   bool   `json:"ready"`
			Sandbox string `json:"sandbox"`
		} `json:"servers"`
	}
	err = json.NewDecoder(resp.Body).Decode(&rd)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s := rd.Servers["ws"]; !s.Ready || !strings.HasPrefix(s.Sandbox, "landlock (landlock ABI ") {
		t.Errorf("readyz for ws = %+v, want ready with sandbox \"landlock (landlock ABI N)\"", s)
	}
	cs := h.connect("ws", nil)
	checkWorkspaces(t, cs, ro, rw, outside, ro, rw)
	if got := probe[testserver.ProbeResult](t, cs, "getwd", nil); got.Text != ro {
		t.Errorf("working directory = %q, want the first workspace %q", got.Text, ro)
	}
	for name, want := range map[string]string{"MCPGW_WORKSPACE_DOCS": ro, "MCPGW_WORKSPACE_OUT": rw, sandbox.EnvVar: ""} {
		if got := probe[testserver.ProbeResult](t, cs, "getenv", map[string]any{"name": name}); got.Text != want {
			t.Errorf("$%s = %q, want %q", name, got.Text, want)
		}
	}
	// The private temporary directory is writable, and removed with the
	// process.
	tmp := probe[testserver.ProbeResult](t, cs, "getenv", map[string]any{"name": "TMPDIR"}).Text
	if got := probe[testserver.ProbeResult](t, cs, "write_file", map[string]any{"path": tmp + "/t"}); tmp == "" || !got.OK {
		t.Errorf("writing the private TMPDIR %q: %+v", tmp, got)
	}
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the sandbox's TMPDIR removed", func() bool {
		_, err := os.Stat(tmp)
		return os.IsNotExist(err)
	})
}

// TestWorkspaceRecheckedAtSpawn: a workspace reached through a symlink is
// resolved at load; if the symlink is later pointed elsewhere, the next
// start is refused (503) instead of following it.
func TestWorkspaceRecheckedAtSpawn(t *testing.T) {
	if err := sandbox.Check(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	ro, _, outside := workspaceDirs(t)
	link := filepath.Join(filepath.Dir(ro), "link")
	if err := os.Symlink(ro, link); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, "workspaces: {docs: "+link+"}\nservers:\n"+serverYAML("ws", "    workspaces: [{name: docs}]\n"))
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	r := h.post("ws", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "symlink changed") {
		t.Errorf("initialize after the symlink moved: %d %s, want 503 naming the changed symlink", r.Status, r.Body)
	}
}

func TestWorkspacesContainer(t *testing.T) {
	image := enginetest.TestImage(t)
	ro, rw, outside := workspaceDirs(t)
	h := newHarness(t, "workspaces: {docs: "+ro+", out: "+rw+"}\nservers:\n"+containerYAML("cws", image, "", `    workspaces:
      - {name: docs}
      - {name: out, mode: rw, target: /data/out}
`))
	cs := h.connect("cws", nil)
	checkWorkspaces(t, cs, "/workspace/docs", "/data/out", outside, ro, rw)
	if got := probe[testserver.ProbeResult](t, cs, "getwd", nil); got.Text != "/workspace/docs" {
		t.Errorf("working directory = %q, want /workspace/docs", got.Text)
	}
	for name, want := range map[string]string{"MCPGW_WORKSPACE_DOCS": "/workspace/docs", "MCPGW_WORKSPACE_OUT": "/data/out"} {
		if got := probe[testserver.ProbeResult](t, cs, "getenv", map[string]any{"name": name}); got.Text != want {
			t.Errorf("$%s = %q, want %q", name, got.Text, want)
		}
	}
}

// checkWorkspaces: roSeen and rwSeen are the workspaces as the server sees
// them, roHost and rwHost on the host.
func checkWorkspaces(t *testing.T, c *mcp.ClientSession, roSeen, rwSeen, outside, roHost, rwHost string) {
	t.Helper()
	if got := probe[testserver.ProbeResult](t, c, "read_file", map[string]any{"path": roSeen + "/ro.txt"}); !got.OK || got.Text != "read me" {
		t.Errorf("reading the ro workspace: %+v, want its text", got)
	}
	if got := probe[testserver.ProbeResult](t, c, "write_file", map[string]any{"path": roSeen + "/new.txt"}); got.OK {
		t.Error("writing the ro workspace worked, want an error")
	}
	if _, err := os.Stat(filepath.Join(roHost, "new.txt")); err == nil {
		t.Error("a file appeared in the ro workspace on the host")
	}
	if got := probe[testserver.ProbeResult](t, c, "write_file", map[string]any{"path": rwSeen + "/new.txt"}); !got.OK {
		t.Errorf("writing the rw workspace: %+v, want ok", got)
	}
	if b, err := os.ReadFile(filepath.Join(rwHost, "new.txt")); err != nil || string(b) != "x" {
		t.Errorf("the file written in the rw workspace on the host: %q, %v", b, err)
	}
	if got := probe[testserver.ProbeResult](t, c, "read_file", map[string]any{"path": outside + "/secret.txt"}); got.OK || strings.Contains(got.Text, "secret") {
		t.Errorf("reading a host file outside every workspace: %+v, want an error", got)
	}
}

// Where the kernel lacks Landlock, a server that needs it refuses to start
// (503) and readiness says why, unless it accepts sandbox: best_effort.
// This kernel has Landlock: its absence is simulated in the gateway process
// (sandbox.SimulateUnavailable, a named test seam).
func TestLandlockUnavailable(t *testing.T) {
	restore := sandbox.SimulateUnavailable("landlock unavailable: simulated by the test")
	defer restore()
	h := newHarness(t, baseYAML+serverYAML("strict", "")+serverYAML("lenient", "    sandbox: best_effort\n"))
	r := h.post("strict", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "landlock unavailable") {
		t.Errorf("sandbox: landlock without Landlock: %d %s, want 503 saying why", r.Status, r.Body)
	}
	if r := h.post("lenient", fmt.Sprintf(initBody, "2025-06-18"), nil); r.Status != http.StatusOK {
		t.Errorf("sandbox: best_effort without Landlock: %d %s, want 200", r.Status, r.Body)
	}
	rr := h.do(mustReq(t, http.MethodGet, h.base+"/readyz"))
	if rr.Status != http.StatusServiceUnavailable || !strings.Contains(string(rr.Body), "landlock unavailable") {
		t.Errorf("readyz: %d %s, want 503 naming the reason", rr.Status, rr.Body)
	}
}
