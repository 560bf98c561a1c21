package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgw/mcpgw/internal/enginetest"
)

// TestCheckReportsReadiness: "mcpgw check" says, as /readyz would, what
// will fail when the servers start: a command not on PATH, a missing
// workdir, and (unless --offline) a container image the engine lacks.
// Each problem is one line on stderr, then one line counts them; exit 1.
func TestCheckReportsReadiness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mcpgw.yaml")
	gone := filepath.Join(dir, "gone")
	writeFile(t, cfg, `servers:
  github: {command: [mcpgw-no-such-server, stdio]}
  tools: {command: [sh], workdir: "`+gone+`", sandbox: none}
  fine: {command: [sh], sandbox: none}
  box:
    runtime: container
    container: {image: "mcpgw-no-such-image:1"}
`)
	run := func(args ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}
	code, stdout, stderr := run("check", "--offline", "--config", cfg)
	want := cfg + `: servers.github: not ready: command "mcpgw-no-such-server": executable file not found in $PATH: not in any directory of the server's PATH (/usr/bin:/bin); install it, or give its absolute path as the first item of servers.github.command
` + cfg + `: servers.tools: not ready: working directory ` + gone + ` does not exist; create it or change servers.tools.workdir
mcpgw: ` + cfg + ` is valid, but 2 servers would not be ready (serve's /readyz says the same): fix the problems above
`
	if code != 1 || stdout != "" {
		t.Errorf("check --offline: exit %d, stdout %q; want exit 1 and nothing on stdout", code, stdout)
	}
	if diff := cmp.Diff(want, stderr); diff != "" {
		t.Errorf("check --offline (-want +got):\n%s", diff)
	}

	// With the engine: the missing image is reported too.
	enginetest.Client(t)
	code, _, stderr = run("check", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, cfg+`: servers.box: not ready: image "mcpgw-no-such-image:1" is not present`) ||
		!strings.Contains(stderr, "3 servers would not be ready") {
		t.Errorf("check with the engine: exit %d\n%s\nwant the missing image reported", code, stderr)
	}
}
