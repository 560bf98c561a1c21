package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadCase is a configuration and the problem Parse must report ("" =
// none).
type loadCase struct{ name, yaml, want string }

// TestWorkspaceLoadChecks: problems with workspaces are config errors at
// load, naming the key.
func TestWorkspaceLoadChecks(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ws := filepath.Join(base, "ws")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{ws, outside, filepath.Join(ws, "sub"), filepath.Join(base, "home", ".ssh")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(ws, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(ws, "escape"), filepath.Join(ws, "chain")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(ws, "inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "home", ".ssh"), filepath.Join(base, "sshlink")); err != nil {
		t.Fatal(err)
	}
	old := homeDir
	homeDir = func() string { return filepath.Join(base, "home") }
	t.Cleanup(func() { homeDir = old })

	server := func(extra string) string {
		return "workspaces: {ws: " + ws + "}\nservers:\n  s:\n    command: [x]\n" + extra
	}
	tests := []loadCase{
		{"ro by default", server("    workspaces: [{name: ws}]\n"), ""},
		{"subpath through an inside symlink", server("    workspaces: [{name: ws, subpath: inside}]\n"), ""},
		{"subpath symlink pointing outside", server("    workspaces: [{name: ws, subpath: escape}]\n"), "servers.s.workspaces[0].subpath: subpath escape leads to " + outside + ", outside the workspace"},
		{"subpath symlink chain leading out", server("    workspaces: [{name: ws, subpath: chain}]\n"), "outside the workspace"},
		{"subpath with ..", server("    workspaces: [{name: ws, subpath: sub/../..}]\n"), "servers.s.workspaces[0].subpath: must be a relative path inside the workspace, without .."},
		{"absolute subpath", server("    workspaces: [{name: ws, subpath: /etc}]\n"), "must be a relative path"},
		{"subpath not a directory", server("    workspaces: [{name: ws, subpath: file}]\n"), "is not a directory"},
		{"missing host path", "workspaces: {ws: " + base + "/nope}\nservers: {s: {command: [x]}}\n", "workspaces.ws: must be an existing directory"},
		{"unknown workspace", server("    workspaces: [{name: other}]\n"), "servers.s.workspaces[0].name: is not a workspace"},
		{"bad mode", server("    workspaces: [{name: ws, mode: wr}]\n"), "servers.s.workspaces[0].mode: must be ro or rw"},
		{"sandbox none with workspaces", server("    sandbox: none\n    workspaces: [{name: ws}]\n"), "servers.s.sandbox: must be landlock or best_effort"},
		{"target on a native server", server("    workspaces: [{name: ws, target: /w}]\n"), "servers.s.workspaces[0].target: is for runtime: container only"},
		{"duplicate container target", "workspaces: {ws: " + ws + ", sub: " + ws + "/sub}\nservers:\n  s:\n    runtime: container\n    container: {image: x}\n    workspaces: [{name: ws, target: /w}, {name: sub, target: /w}]\n", "servers.s.workspaces[1].target: /w is already the target of workspaces[0]"},
		{"rw under a ro target", "workspaces: {ws: " + ws + ", sub: " + ws + "/sub}\nservers:\n  s:\n    runtime: container\n    container: {image: x}\n    workspaces: [{name: ws, target: /w}, {name: sub, target: /w/sub, mode: rw}]\n", "a rw mount must not be beneath the ro mount"},
		{"native modes nested", "workspaces: {ws: " + ws + ", sub: " + ws + "/sub}\nservers:\n  s:\n    command: [x]\n    workspaces: [{name: ws, mode: rw}, {name: sub}]\n", "Landlock grants the union"},
		{"symlink to a sensitive path", "workspaces: {k: " + base + "/sshlink}\nservers: {s: {command: [x]}}\n", "workspaces.k: resolves to " + filepath.Join(base, "home", ".ssh")},
	}
	for _, p := range []string{"/", "/etc", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run", "/var/lib/docker", "/var/run/docker.sock", base + "/home/.ssh", base + "/home/.aws", base + "/home/.docker", base + "/home/.kube", base + "/home/.gnupg"} {
		tests = append(tests, loadCase{"sensitive " + p, "workspaces: {w: \"" + p + "\"}\nservers: {s: {command: [x]}}\n", "workspaces.w: must not"})
	}
	// The same refusals for a container server.
	container := "    runtime: container\n    container: {image: x}\n"
	tests = append(tests,
		loadCase{"container: subpath symlink pointing outside", "workspaces: {ws: " + ws + "}\nservers:\n  s:\n" + container + "    workspaces: [{name: ws, subpath: escape}]\n", "outside the workspace"},
		loadCase{"container: sensitive path", "workspaces: {w: /var/lib/docker}\nservers:\n  s:\n" + container + "    workspaces: [{name: w}]\n", "workspaces.w: must not be /var/lib/docker"},
		loadCase{"container: sandbox is native only", "workspaces: {ws: " + ws + "}\nservers:\n  s:\n" + container + "    sandbox: landlock\n", "servers.s.sandbox: is for runtime: native only"},
	)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), nil)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got := c.Servers["s"].Workspaces[0].HostPath; !strings.HasPrefix(got, ws) {
					t.Errorf("HostPath = %q, want beneath %q", got, ws)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}
