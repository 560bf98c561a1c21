package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The YAML examples of README.md and docs/config.md are checked as a
// person would use them: each is written to a file and given to
// "mcpgw check", with every environment variable it names set to a dummy
// value. An example that is not a whole configuration says so in an HTML
// comment on the line before its fence, which this test reads:
//
//	<!-- example: fragment -->              top-level keys only: checked with a server added
//	<!-- example: other=cloudflared -->     not an mcpgw config: only parsed as YAML
//	<!-- example: dirs=/srv/a,/srv/a/b -->  host directories it expects: created in a temporary
//	                                        directory, and the example's paths rewritten to them;
//	                                        ${VAR}/a makes VAR a temporary directory holding a
//	<!-- example: name=first-config -->     a name by which other tests find it (readmeExample)
//
// Words may be combined in one comment. An unmarked example must pass as
// it is.

// example is one YAML example of a document.
type example struct {
	file, name string
	line       int // of the opening fence
	yaml       string
	fragment   bool
	other      string
	dirs       []string
}

var (
	fence      = regexp.MustCompile("^( *)```yaml\\s*$")
	annotation = regexp.MustCompile(`^\s*<!--\s*example:(.*?)-->\s*$`)
)

// examples reads the YAML examples of the Markdown file at path.
func examples(t testing.TB, path string) []example {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var out []example
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		ex := example{file: filepath.Base(path), line: i + 1}
		// The annotation is the nearest non-blank line above the fence.
		for j := i - 1; j >= 0; j-- {
			if strings.TrimSpace(lines[j]) == "" {
				continue
			}
			if a := annotation.FindStringSubmatch(lines[j]); a != nil {
				for _, word := range strings.Fields(a[1]) {
					key, value, _ := strings.Cut(word, "=")
					switch key {
					case "fragment":
						ex.fragment = true
					case "other":
						ex.other = value
					case "dirs":
						ex.dirs = strings.Split(value, ",")
					case "name":
						ex.name = value
					default:
						t.Fatalf("%s:%d: unknown word %q in the example annotation", path, j+1, word)
					}
				}
			}
			break
		}
		indent := m[1]
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: the example is not closed", path, ex.line)
		}
		ex.yaml = strings.Join(body, "\n") + "\n"
		out = append(out, ex)
	}
	return out
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|[a-z_]*_env: *([A-Za-z_][A-Za-z0-9_]*)`)

// prepare writes ex as a config file in dir, with the directories it
// expects created, and returns the file and the environment to check it
// with.
func prepare(t testing.TB, ex example, dir string) (path string, env map[string]string) {
	t.Helper()
	env = map[string]string{}
	text := ex.yaml
	root := filepath.Join(dir, "root")
	dirs := slices.Clone(ex.dirs)
	// Longest first, so that /srv/a/b is rewritten before /srv/a.
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, d := range dirs {
		var host string
		if m := regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}(.*)$`).FindStringSubmatch(d); m != nil {
			if _, ok := env[m[1]]; !ok {
				env[m[1]] = filepath.Join(dir, "var-"+m[1])
			}
			host = filepath.Join(env[m[1]], m[2])
		} else {
			if !filepath.IsAbs(d) {
				t.Fatalf("%s:%d: dirs entry %q is neither absolute nor ${VAR}/…", ex.file, ex.line, d)
			}
			host = filepath.Join(root, d)
			text = strings.ReplaceAll(text, d, host)
		}
		if err := os.MkdirAll(host, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		name := m[1] + m[2]
		if _, ok := env[name]; !ok {
			env[name] = "dummy-value-of-" + name + "-0123456789abcdef0123456789"
			if strings.HasSuffix(name, "REDIS_URL") {
				env[name] = "redis://:dummy-password@redis.example:6379/0" // a URL is checked as one
			}
		}
	}
	if ex.fragment {
		if strings.Contains(text, "\nservers:") || strings.HasPrefix(text, "servers:") {
			t.Fatalf("%s:%d: the example is marked fragment but has servers:; mark it only if it is not a whole configuration", ex.file, ex.line)
		}
		text += "servers: {example: {command: [\"mcp-server-example\"]}}\n"
	}
	path = filepath.Join(dir, "example.yaml")
	writeFile(t, path, text)
	return path, env
}

// TestDocumentedExamples runs "mcpgw check" on every YAML example of
// README.md and docs/config.md.
func TestDocumentedExamples(t *testing.T) {
	for _, doc := range []string{"../../README.md", "../../docs/config.md"} {
		all := examples(t, doc)
		if len(all) < 5 {
			t.Fatalf("%s: found %d YAML examples; is the fence syntax still ```yaml?", doc, len(all))
		}
		for _, ex := range all {
			t.Run(fmt.Sprintf("%s:%d", ex.file, ex.line), func(t *testing.T) {
				if ex.other != "" {
					var v any
					if err := yaml.Unmarshal([]byte(ex.yaml), &v); err != nil {
						t.Errorf("the %s example is not valid YAML: %v", ex.other, err)
					}
					return
				}
				path, env := prepare(t, ex, t.TempDir())
				// check also resolves each server's command on PATH: the
				// programs an example names stand in as placeholders, and
				// the container engine is left out (--offline).
				text, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				env["PATH"] = placeholders(t, string(text)) + ":" + os.Getenv("PATH")
				if self, err := os.Executable(); err == nil {
					env["MCPGW_BIN"] = self
				}
				code, stdout, stderr := execute([]string{"check", "--offline", "--config", path}, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
				if code != 0 {
					t.Errorf("mcpgw check of the example at %s:%d: exit %d\n%s\nexample:\n%s", ex.file, ex.line, code, stderr, ex.yaml)
				}
				if !strings.Contains(stdout, ": ok (") {
					t.Errorf("check printed %q", stdout)
				}
			})
		}
	}
}

var commandName = regexp.MustCompile(`command: *\[ *"?([A-Za-z0-9_.-]+)"?`)

// placeholders makes a directory holding an executable placeholder for
// each program an example's commands name that is not on this machine's
// PATH (github-mcp-server, say), and returns it. They are never run.
func placeholders(t testing.TB, text string) string {
	t.Helper()
	dir := t.TempDir()
	for _, m := range commandName.FindAllStringSubmatch(text, -1) {
		if _, err := exec.LookPath(m[1]); err == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, m[1]), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// readmeExample returns the README.md example annotated name=NAME,
// written to a config file in a temporary directory as TestDocumentedExamples
// writes it, and the environment it needs. Tests that serve an example
// use it, so that they serve what the README shows.
func readmeExample(t testing.TB, name string) (path string, env map[string]string) {
	t.Helper()
	for _, ex := range examples(t, "../../README.md") {
		if ex.name == name {
			return prepare(t, ex, t.TempDir())
		}
	}
	t.Fatalf("README.md has no example annotated name=%s", name)
	return "", nil
}

// TestReadmeFirstConfig: the README's first config is found by name (so
// that a test serving it can use readmeExample) and is the npx example
// the README promises to work under the default sandbox.
func TestReadmeFirstConfig(t *testing.T) {
	path, env := readmeExample(t, "first-config")
	cfg, err := loadConfig(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	fs := cfg.Servers["fs"]
	if fs == nil || fs.Command[0] != "npx" || fs.Sandbox != "landlock" {
		t.Fatalf("the first config's fs server is %+v; want npx under the default landlock sandbox", fs)
	}
}
