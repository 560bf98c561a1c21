package session

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLayering holds the session layer to its boundary: it knows neither
// HTTP nor how processes are started (the Launcher does), so that it can be
// tested with in-memory processes.
func TestLayering(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to list the package's dependencies")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"net/http", "github.com/mcpgw/mcpgw/internal/spawn", "github.com/mcpgw/mcpgw/internal/sandbox",
		"github.com/mcpgw/mcpgw/internal/launch", "github.com/moby/moby/client"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f {
				t.Errorf("internal/session depends on %s", dep)
			}
		}
	}
}
