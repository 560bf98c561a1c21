package interop

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/sandbox"
)

// TestFilesystemReadOnlyWorkspace: the real server-filesystem from npm,
// served natively on a ro workspace. It believes it may write
// (its command line allows the directory), but Landlock refuses: listing
// and reading work, its write tool returns an error, and nothing appears on
// the host.
func TestFilesystemReadOnlyWorkspace(t *testing.T) {
	ne := requireNode(t)
	if err := sandbox.Check(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello workspace\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	interopDir, err := filepath.EvalSymlinks(ne.dir)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"NODE": ne.node, "FILESYSTEM": ne.filesystem, "FSDIR": dir, "INTEROP": interopDir}
	f := startFixture(t, ne, `listen: 127.0.0.1:0
workspaces: {docs: "${FSDIR}"}
servers:
  fsro:
    command: ["${NODE}", "${FILESYSTEM}", "${FSDIR}"]
    workspaces: [{name: docs, mode: ro}]
    read_paths: ["${INTEROP}"]
`, vars, dir)
	cs := connectGo(t, f, "fsro", "streamable", nil)

	if got := callTexts(t, cs, &mcp.CallToolParams{Name: "list_directory", Arguments: map[string]any{"path": dir}}); !slices.Equal(got, []string{"[FILE] hello.txt"}) {
		t.Errorf("list_directory = %q", got)
	}
	if got := callTexts(t, cs, &mcp.CallToolParams{Name: "read_text_file", Arguments: map[string]any{"path": filepath.Join(dir, "hello.txt")}}); !slices.Equal(got, []string{"hello workspace\n"}) {
		t.Errorf("read_text_file = %q", got)
	}
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "write_file", Arguments: map[string]any{"path": filepath.Join(dir, "new.txt"), "content": "x"}})
	if err != nil {
		t.Fatalf("write_file: %v", err)
	}
	if !res.IsError {
		t.Errorf("write_file on a ro workspace = %q, want a tool error", texts(res))
	} else if got := strings.Join(texts(res), ""); !strings.Contains(got, "EACCES") {
		t.Errorf("write_file error = %q, want the kernel's EACCES (Landlock), not the server's own check", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "new.txt")); err == nil {
		t.Error("new.txt appeared in the ro workspace on the host")
	}
}
