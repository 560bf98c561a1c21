//go:build unix

package demo

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadFileFIFO checks that read_file refuses a named pipe instead of
// blocking until a writer appears.
func TestReadFileFIFO(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "pipe"), 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	cs := connect(t, &Options{Root: root}, nil)
	res := callTool(t, cs, "read_file", map[string]any{"path": "pipe"})
	if !res.IsError || !strings.Contains(text(res), "not a regular file") {
		t.Errorf("read_file(pipe) = %q (isError %v), want a tool error saying it is not a regular file", text(res), res.IsError)
	}

	var got listFilesResult
	decode(t, callTool(t, cs, "list_files", nil), &got)
	if len(got.Entries) != 1 || got.Entries[0].Type != "other" {
		t.Errorf("list_files = %+v, want the pipe listed with type other", got.Entries)
	}
}
