package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionUnderGOFLAGS builds mcpgw from a git clone of this source
// with different GOFLAGS and checks that "mcpgw version" says the module
// version and revision when the build recorded them, the revision given
// with -ldflags, and plainly that it is unknown otherwise. (GOFLAGS may
// well hold -buildvcs=false: a go env default some machines set.)
func TestVersionUnderGOFLAGS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary several times")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("skipping: git is not installed")
	}
	src := t.TempDir()
	copySource(t, "../..", src)
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "-m", "snapshot")
	rev := git("rev-parse", "HEAD")

	build := func(t *testing.T, goflags string) string {
		t.Helper()
		bin := filepath.Join(t.TempDir(), "mcpgw")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/mcpgw")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOFLAGS="+goflags)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("GOFLAGS=%q go build: %v\n%s", goflags, err, out)
		}
		out, err := exec.Command(bin, "version").Output()
		if err != nil {
			t.Fatalf("mcpgw version: %v", err)
		}
		return string(out)
	}
	pseudo := regexp.MustCompile(`^mcpgw v0\.0\.0-[0-9]{14}-` + rev[:12] + `\n`)
	tests := []struct {
		name, goflags string
		want          []string
		version       *regexp.Regexp
	}{
		{"VCS stamping on", "-buildvcs=true", []string{"\nrevision " + rev + " (", "\nmodule github.com/mcpgw/mcpgw v0.0.0-"}, pseudo},
		{"-trimpath", "-buildvcs=true -trimpath", []string{"\nrevision " + rev + " (", ", -trimpath"}, pseudo},
		{"VCS stamping off", "-buildvcs=false", []string{
			"mcpgw dev\n",
			"\nmodule github.com/mcpgw/mcpgw (devel): built from a source tree, not from a released module version\n",
			"\nrevision unknown: this build recorded no VCS information (go build -buildvcs=false, maybe in GOFLAGS, or a source tree that is not a git clone)",
		}, nil},
		{"revision given with -ldflags", "-buildvcs=false -ldflags=-X=main.revision=" + rev, []string{"\nrevision " + rev + " (set at build time)\n"}, nil},
		{"version given with -ldflags", "-buildvcs=false -ldflags=-X=main.version=v9.8.7", []string{"mcpgw v9.8.7\n", "\nrevision unknown"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := build(t, tt.goflags)
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("GOFLAGS=%q: mcpgw version lacks %q:\n%s", tt.goflags, w, out)
				}
			}
			if tt.version != nil && !tt.version.MatchString(out) {
				t.Errorf("GOFLAGS=%q: the first line does not match %s:\n%s", tt.goflags, tt.version, out)
			}
		})
	}
	t.Run("uncommitted changes", func(t *testing.T) {
		writeFile(t, filepath.Join(src, "cmd", "mcpgw", "zz_changed.go"), "package main\n")
		out := build(t, "-buildvcs=true")
		if !strings.Contains(out, "\nrevision "+rev+" (") || !strings.Contains(out, ", with uncommitted changes)\n") || !strings.Contains(out, "+dirty\n") {
			t.Errorf("mcpgw version does not say that the tree was modified:\n%s", out)
		}
	})
}

// copySource copies the module's sources (go.mod, go.sum, cmd/,
// internal/, without test data) from root to dst.
func copySource(t *testing.T, root, dst string) {
	t.Helper()
	for _, f := range []string{"go.mod", "go.sum"} {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dst, f), string(data))
	}
	for _, dir := range []string{"cmd", "internal"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			if d.IsDir() {
				if d.Name() == "testdata" {
					return filepath.SkipDir
				}
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			if !d.Type().IsRegular() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
