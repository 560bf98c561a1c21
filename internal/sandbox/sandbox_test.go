package sandbox

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain doubles as the shim: the tests start this binary with EnvVar.
func TestMain(m *testing.M) {
	if Requested() {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

// runShim runs prog with args through the shim confined to rules, and
// returns its combined output and error.
func runShim(t *testing.T, rules []Rule, prog string, args ...string) (string, error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rules = append(rules, Rule{Path: "/usr"}, Rule{Path: "/lib"}, Rule{Path: "/lib64"}, Rule{Path: "/bin"})
	b, err := json.Marshal(Spec{Path: prog, Args: append([]string{prog}, args...), Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{EnvVar + "=" + string(b), "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestShim(t *testing.T) {
	if err := Check(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	cat, err := exec.LookPath("cat")
	if err != nil {
		t.Skip("no cat")
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ro, rw, outside := filepath.Join(base, "ro"), filepath.Join(base, "rw"), filepath.Join(base, "outside")
	for _, d := range []string{ro, rw, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "f"), []byte("in "+filepath.Base(d)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(base, "link")); err != nil {
		t.Fatal(err)
	}
	rules := []Rule{{Path: ro, Exact: true}, {Path: rw, Write: true, Exact: true}}

	tests := []struct {
		name    string
		rules   []Rule
		prog    string
		args    []string
		wantOut string
		wantErr bool
	}{
		{"read ro", rules, cat, []string{ro + "/f"}, "in ro", false},
		{"read rw", rules, cat, []string{rw + "/f"}, "in rw", false},
		{"read outside", rules, cat, []string{outside + "/f"}, "Permission denied", true},
		{"write rw", rules, sh, []string{"-c", "echo x > " + rw + "/g && echo done"}, "done", false},
		{"write ro", rules, sh, []string{"-c", "echo x > " + ro + "/g"}, "Permission denied", true},
		{"truncate ro", rules, sh, []string{"-c", ": > " + ro + "/f"}, "Permission denied", true},
		{"exact path that is a symlink now", []Rule{{Path: filepath.Join(base, "link"), Exact: true}}, cat, []string{outside + "/f"}, "a symlink changed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runShim(t, tt.rules, tt.prog, tt.args...)
			if (err != nil) != tt.wantErr || !strings.Contains(out, tt.wantOut) {
				t.Errorf("output %q, error %v; want %q and error=%v", out, err, tt.wantOut, tt.wantErr)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(ro, "f")); err != nil || string(b) != "in ro" {
		t.Errorf("the ro file now holds %q (%v)", b, err)
	}
}
