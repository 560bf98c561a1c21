package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var importFixtures = []string{
	"claude-desktop/claude_desktop_config.json",
	"claude-code/.mcp.json",
	"cursor/.cursor/mcp.json",
	"vscode/.vscode/mcp.json",
	"vscode-settings/settings.json",
}

var referenced = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// TestImportThenCheck: "mcpgw import" of each tool's file prints a config
// on stdout that "mcpgw check" accepts once the variables it references
// are set, and says on stderr which ones those are.
func TestImportThenCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	testdata, err := filepath.Abs("../../internal/importer/testdata")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range importFixtures {
		t.Run(f, func(t *testing.T) {
			dir := t.TempDir()
			code, stdout, stderr := runBinary(t, dir, nil, "import", filepath.Join(testdata, f))
			if code != 0 {
				t.Fatalf("import: exit code %d: %s", code, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			summary := lines[len(lines)-1]
			if !strings.HasPrefix(summary, "mcpgw import: ") || !strings.HasSuffix(summary, `read its "review:" comments, then run mcpgw check --config FILE`) {
				t.Errorf("the last stderr line is not the summary: %q", summary)
			}
			var env []string
			for _, m := range referenced.FindAllStringSubmatch(withoutComments(stdout), -1) {
				env = append(env, m[1]+"=dummy-value-of-"+m[1])
				if !strings.Contains(summary, m[1]) {
					t.Errorf("the summary does not name %s: %q", m[1], summary)
				}
			}
			writeFile(t, filepath.Join(dir, "mcpgw.yaml"), stdout)
			// The imported config must be valid; whether its servers'
			// programs are installed here (check's readiness lines) is
			// about this machine, not the import.
			code, out, errOut := runBinary(t, dir, env, "check", "--offline", "--config", "mcpgw.yaml")
			if code != 0 && !onlyReadiness(errOut) {
				t.Fatalf("check of the imported config: exit code %d\n%s\nconfig:\n%s", code, errOut, stdout)
			}
			if code == 0 && !strings.HasPrefix(out, "mcpgw.yaml: ok (") {
				t.Errorf("check: %q", out)
			}
		})
	}
	t.Run("standard input", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(testdata, importFixtures[0]))
		if err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := execute([]string{"import", "-"}, noEnv, string(data))
		if code != 0 || !strings.Contains(stdout, `imported by "mcpgw import" from standard input (an mcpServers file)`) {
			t.Errorf("exit code %d, stdout:\n%s\nstderr: %s", code, stdout, stderr)
		}
	})
}

// withoutComments drops the comment lines of a YAML text.
func withoutComments(yaml string) string {
	var b strings.Builder
	for _, l := range strings.Split(yaml, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// onlyReadiness reports whether check's stderr holds readiness problems
// only ("FILE: servers.NAME: not ready: …" and their count), no config
// error.
func onlyReadiness(stderr string) bool {
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	for _, l := range lines[:len(lines)-1] {
		if !strings.Contains(l, ": not ready: ") {
			return false
		}
	}
	return strings.Contains(lines[len(lines)-1], "would not be ready")
}
