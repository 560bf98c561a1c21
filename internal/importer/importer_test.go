package importer

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgw/mcpgw/internal/config"
)

var update = flag.Bool("update", false, "rewrite the .golden.yaml files of TestFixtures")

// fixtures are real-shaped files of each supported tool, modelled on the
// tools' documented formats, with the secrets each one holds (fake, but of
// the real shapes) and the notes Convert must give.
var fixtures = []struct {
	name, path, tool string
	servers          []string
	secrets          []string // literal values that must not reach the output
	notes            []string // each must be one of the notes, in full
}{
	{
		name:    "claude-desktop",
		path:    "testdata/claude-desktop/claude_desktop_config.json",
		tool:    "Claude Desktop",
		servers: []string{"filesystem", "github", "brave-search", "google-maps", "sqlite", "postgres", "memory"},
		secrets: []string{"ghp_EXAMPLEexample000000000000000000000", "YOUR_API_KEY_HERE", "AIzaEXAMPLE_example_00000000000000000000", "s3cr3t-pw"},
		notes: []string{
			`server "github": env GITHUB_PERSONAL_ACCESS_TOKEN held a literal secret; it is written as ${GITHUB_PERSONAL_ACCESS_TOKEN}: export GITHUB_PERSONAL_ACCESS_TOKEN before starting mcpgw`,
			`server "postgres": argument 3 held a literal secret; it is written as ${POSTGRES_URL}: export POSTGRES_URL before starting mcpgw`,
		},
	},
	{
		name:    "claude-code",
		path:    "testdata/claude-code/.mcp.json",
		tool:    "Claude Code",
		servers: []string{"airtable", "project-tools"},
		secrets: []string{"abc123", "Bearer"},
		notes: []string{
			`server "sentry" (line 19): not imported: it is a remote server (http, "https://mcp.sentry.dev"); mcpgw publishes stdio servers, and a client can connect to a remote one directly`,
			`server "asana" (line 26): not imported: it is a remote server (sse, "https://mcp.asana.com"); mcpgw publishes stdio servers, and a client can connect to a remote one directly`,
		},
	},
	{
		name:    "cursor",
		path:    "testdata/cursor/.cursor/mcp.json",
		tool:    "Cursor",
		servers: []string{"linear", "notes", "stripe"},
		secrets: []string{"sk-proj-EXAMPLEexample0000000000000", "sk_test_EXAMPLE0000000000000000", "ctx7_0123456789abcdef"},
		notes: []string{
			`server "stripe": argument 4 (--api-key) held a literal secret; it is written as ${STRIPE_API_KEY}: export STRIPE_API_KEY before starting mcpgw`,
			`server "context7" (line 19): not imported: it is a remote server ("https://mcp.context7.com"); mcpgw publishes stdio servers, and a client can connect to a remote one directly`,
		},
	},
	{
		name:    "vscode",
		path:    "testdata/vscode/.vscode/mcp.json",
		tool:    "VS Code",
		servers: []string{"github", "perplexity", "fetch", "my-server"},
		secrets: []string{"pt_5e6f7a8b9c0d", "ModelContextProtocol/1.0"},
		notes: []string{
			`server "docs" (line 49): not imported: it is a remote server (http, "https://api.githubcopilot.com"); mcpgw publishes stdio servers, and a client can connect to a remote one directly`,
		},
	},
	{
		name:    "vscode-settings",
		path:    "testdata/vscode-settings/settings.json",
		tool:    "VS Code settings",
		servers: []string{"time-server"},
	},
}

// TestFixtures converts each fixture and compares the YAML with its
// golden file (go test -run TestFixtures -update rewrites them), and
// checks what must hold whatever the wording: the servers, the notes, no
// secret in the output, and a configuration that mcpgw accepts once the
// variables it names are set.
func TestFixtures(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.name, func(t *testing.T) {
			data, err := os.ReadFile(f.path)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Convert(data, &Options{Path: f.path})
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if res.Tool != f.tool {
				t.Errorf("Tool = %q, want %q", res.Tool, f.tool)
			}
			if diff := cmp.Diff(f.servers, res.Servers); diff != "" {
				t.Errorf("servers mismatch (-want +got):\n%s", diff)
			}
			for _, n := range f.notes {
				if !slices.Contains(res.Notes, n) {
					t.Errorf("no note is\n  %s\nnotes:\n  %s", n, strings.Join(res.Notes, "\n  "))
				}
			}
			out := string(res.YAML)
			for _, s := range f.secrets {
				if strings.Contains(out, s) || strings.Contains(strings.Join(res.Notes, "\n"), s) {
					t.Errorf("the output shows the secret %q", s)
				}
			}
			mustParse(t, res)
			golden(t, filepath.Join("testdata", f.name+".golden.yaml"), out)
		})
	}
}

// mustParse checks that mcpgw accepts res.YAML with res.Variables set,
// and that the YAML references no other variable.
func mustParse(t testing.TB, res *Result) *config.Config {
	t.Helper()
	cfg, err := config.Parse(res.YAML, func(name string) (string, bool) {
		return "value-of-" + name, slices.Contains(res.Variables, name)
	})
	if err != nil {
		t.Fatalf("mcpgw refuses the output: %v\n%s", err, res.YAML)
	}
	if diff := cmp.Diff(len(res.Servers), len(cfg.Servers)); diff != "" {
		t.Errorf("servers in the config (-want +got):\n%s", diff)
	}
	return cfg
}

// golden compares got with the file at path, with this checkout's
// absolute testdata directory written as TESTDATA.
func golden(t *testing.T, path, got string) {
	t.Helper()
	abs, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	got = strings.ReplaceAll(got, abs, "TESTDATA")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestFixtures -update to create it)", err)
	}
	// Comments are wrapped after the absolute paths they name, which vary
	// with where the repository is: compare them unwrapped.
	if diff := cmp.Diff(unwrapComments(string(want)), unwrapComments(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// continuation is the start of a wrapped comment's next line.
var continuation = regexp.MustCompile(`\n[ \t]*#   +`)

func unwrapComments(s string) string { return continuation.ReplaceAllString(s, " ") }

// TestConvertedConfig reads the converted fixtures as mcpgw does and
// checks the values that matter: argv, env references, containers.
func TestConvertedConfig(t *testing.T) {
	convert := func(t *testing.T, path string) *config.Config {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Convert(data, &Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return mustParse(t, res)
	}
	t.Run("claude desktop", func(t *testing.T) {
		cfg := convert(t, fixtures[0].path)
		fs := cfg.Servers["filesystem"]
		if diff := cmp.Diff([]string{"npx", "-y", "@modelcontextprotocol/server-filesystem", "/Users/alice/Desktop", "/Users/alice/Downloads"}, fs.Command); diff != "" {
			t.Errorf("filesystem argv (-want +got):\n%s", diff)
		}
		gh := cfg.Servers["github"]
		if gh.Runtime != "container" || gh.Container.Image != "ghcr.io/github/github-mcp-server" || gh.Container.Network != "bridge" || len(gh.Command) != 0 {
			t.Errorf("github: runtime %s, container %+v, command %q; want the docker run as a container on bridge", gh.Runtime, gh.Container, gh.Command)
		}
		if diff := cmp.Diff(map[string]string{"GITHUB_PERSONAL_ACCESS_TOKEN": "value-of-GITHUB_PERSONAL_ACCESS_TOKEN"}, gh.Env); diff != "" {
			t.Errorf("github env (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"GOOGLE_MAPS_API_KEY": "value-of-GOOGLE_MAPS_API_KEY", "LANGUAGE": "en"}, cfg.Servers["google-maps"].Env); diff != "" {
			t.Errorf("google-maps env (-want +got):\n%s", diff)
		}
		if got := cfg.Servers["postgres"].Command[3]; got != "value-of-POSTGRES_URL" {
			t.Errorf("postgres connection string = %q, want it from ${POSTGRES_URL}", got)
		}
	})
	t.Run("claude code", func(t *testing.T) {
		cfg := convert(t, fixtures[1].path)
		abs, _ := filepath.Abs("testdata/claude-code")
		want := []string{abs + "/scripts/mcp-server.sh", "--config", "value-of-CONFIG_PATH", "--log-level", "$LOG_LEVEL"}
		if diff := cmp.Diff(want, cfg.Servers["project-tools"].Command); diff != "" {
			t.Errorf("project-tools argv (-want +got):\n%s", diff)
		}
	})
	t.Run("vscode", func(t *testing.T) {
		cfg := convert(t, fixtures[3].path)
		if got := cfg.Servers["perplexity"].Env["PERPLEXITY_API_KEY"]; got != "value-of-PERPLEXITY_KEY" {
			t.Errorf("an input became %q, want ${PERPLEXITY_KEY}", got)
		}
		abs, _ := filepath.Abs("testdata/vscode")
		if got := cfg.Servers["fetch"].Workdir; got != abs {
			t.Errorf("fetch workdir = %q, want the workspace folder %q", got, abs)
		}
		if diff := cmp.Diff(map[string]string{"FETCH_USER_AGENT": "value-of-FETCH_USER_AGENT", "FETCH_PROXY_TOKEN": "value-of-FETCH_PROXY_TOKEN"}, cfg.Servers["fetch"].Env); diff != "" {
			t.Errorf("fetch env from its envFile (-want +got):\n%s", diff)
		}
		if got := cfg.Servers["my-server"].Env["LOG_URL"]; got != "https://logs.example.com/in?x=$1" {
			t.Errorf("a literal $ became %q", got)
		}
	})
}

func TestConvertErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"not JSON", "servers:\n  a: {}\n", "line 1: invalid JSON: invalid character 's' looking for beginning of value"},
		{"syntax error names its line", "{\n  \"mcpServers\": {\n    \"a\": {\"command\": \"x\",,}\n  }\n}\n", "line 3: invalid JSON: invalid character ',' looking for beginning of object key string"},
		{"an array", "[]", `the file must hold a JSON object with "mcpServers" (Claude Desktop, Claude Code, Cursor) or "servers" (VS Code)`},
		{"no servers key", `{"globalShortcut": "x"}`, `the file has neither "mcpServers" (Claude Desktop, Claude Code, Cursor) nor "servers" (VS Code .vscode/mcp.json)`},
		{"servers not an object", `{"mcpServers": []}`, `"mcpServers": line 1: must be an object ({…}), not an array`},
		{"no server", `{"mcpServers": {}}`, `"mcpServers" lists no server`},
		{"only remote servers", `{"mcpServers": {"r": {"url": "https://example.com/mcp?token=abc"}}}`,
			`none of its 1 server(s) can be published by mcpgw: server "r" (line 1): not imported: it is a remote server ("https://example.com"); mcpgw publishes stdio servers, and a client can connect to a remote one directly`},
		{"unterminated comment", "{\n/* no end\n", "line 2: a /* comment is not closed"},
		{"args not strings", `{"mcpServers": {"a": {"command": "x", "args": [{}]}}}`,
			`none of its 1 server(s) can be published by mcpgw: server "a" (line 1): not imported: line 1: "args" must be a list of strings`},
		{"unknown type", `{"servers": {"a": {"type": "carrier-pigeon", "command": "x"}}}`,
			`none of its 1 server(s) can be published by mcpgw: server "a" (line 1): not imported: its type "carrier-pigeon" is unknown`},
		{"too large", `{"mcpServers": {}}` + strings.Repeat(" ", MaxFileBytes), "the file is larger than 1 MiB; an MCP client's configuration is a few KiB, is this the right file?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Convert([]byte(tt.data), nil)
			if err == nil {
				t.Fatalf("Convert accepted it:\n%s", res.YAML)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestServerRefusedByMcpgw: a server that converts to something mcpgw
// refuses is written commented out with the reason, not dropped silently
// nor left to fail "mcpgw check".
func TestServerRefusedByMcpgw(t *testing.T) {
	data := `{"mcpServers": {
		"ok": {"command": "x"},
		"nul": {"command": "x", "args": ["a\u0000b"]}
	}}`
	res, err := Convert([]byte(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	mustParse(t, res)
	if diff := cmp.Diff([]string{"ok"}, res.Servers); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(res.YAML), `  # "nul" is commented out: mcpgw refuses it as converted:`) {
		t.Errorf("the refused server is not commented out with its reason:\n%s", res.YAML)
	}
	if len(res.Notes) != 1 || !strings.HasPrefix(res.Notes[0], `server "nul" (line 3): written commented out: mcpgw would refuse it: servers.nul.command[1]:`) {
		t.Errorf("notes = %q", res.Notes)
	}
}

// TestRepeatedSecret: a secret found in env is replaced wherever argv
// repeats it, also inside a longer argument.
func TestRepeatedSecret(t *testing.T) {
	const secret = "hunter2-is-not-a-password"
	data := `{"mcpServers": {"api": {"command": "api-server", "args": ["--header", "Authorization: Basic ` + secret + `", "` + secret + `"], "env": {"API_PASSWORD": "` + secret + `"}}}}`
	res, err := Convert([]byte(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.YAML), secret) {
		t.Fatalf("the secret is in the output:\n%s", res.YAML)
	}
	cfg := mustParse(t, res)
	want := []string{"api-server", "--header", "Authorization: Basic value-of-API_PASSWORD", "value-of-API_PASSWORD"}
	if diff := cmp.Diff(want, cfg.Servers["api"].Command); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
}

func TestServerNames(t *testing.T) {
	c := &converter{names: map[string]bool{}}
	tests := []struct{ in, want string }{
		{"filesystem", "filesystem"},
		{"GitHub", "github"},
		{"Google Maps", "google-maps"},
		{"my.server/v2", "my-server-v2"},
		{"  --weird__", "weird"},
		{"filesystem", "filesystem-2"},
		{"Filesystem", "filesystem-3"},
		{"日本語", "server"},
		{"日本語", "server-2"},
		{strings.Repeat("a", 100), strings.Repeat("a", 60)},
		{"_x", "x"},
		{"a\nb", "a-b"},
	}
	for _, tt := range tests {
		got := c.serverName(tt.in)
		if got != tt.want {
			t.Errorf("serverName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if !config.ValidServerName(got) {
			t.Errorf("serverName(%q) = %q, which is not a valid server name", tt.in, got)
		}
	}
}

func TestTranslate(t *testing.T) {
	c := &converter{project: "/home/a/proj", inputs: map[string]vscodeInput{"api-key": {ID: "api-key", Description: "The key"}}, inputNames: map[string]string{}}
	tests := []struct {
		in, want string
		refs     []string
	}{
		{"plain", "plain", nil},
		{"${TOKEN}", "${TOKEN}", []string{"TOKEN"}},
		{"Bearer ${TOKEN}", "Bearer ${TOKEN}", []string{"TOKEN"}},
		{"${TOKEN:-abc}", "${TOKEN}", []string{"TOKEN"}},
		{"${env:GITHUB_TOKEN}", "${GITHUB_TOKEN}", []string{"GITHUB_TOKEN"}},
		{"${input:api-key}", "${API_KEY}", []string{"API_KEY"}},
		{"${workspaceFolder}/src", "/home/a/proj/src", nil},
		{"${CLAUDE_PROJECT_DIR}/bin/x", "/home/a/proj/bin/x", nil},
		{"${workspaceFolderBasename}", "proj", nil},
		{"${userHome}/notes", "${HOME}/notes", []string{"HOME"}},
		{"a${pathSeparator}b${/}c", "a/b/c", nil},
		{"$HOME", "$$HOME", nil},
		{"price: 5$", "price: 5$$", nil},
		{"${command:pick}", "$${command:pick}", nil},
		{"${}", "$${}", nil},
	}
	for _, tt := range tests {
		got := c.translate(tt.in)
		if got.text != tt.want || !slices.Equal(got.refs, tt.refs) {
			t.Errorf("translate(%q) = %q %q, want %q %q", tt.in, got.text, got.refs, tt.want, tt.refs)
		}
		// What mcpgw makes of the translation is the original text with
		// the references expanded.
		if _, err := config.Parse([]byte("servers: {a: {command: ["+yamlString(got.text)+"]}}"), func(string) (string, bool) { return "v", true }); err != nil {
			t.Errorf("mcpgw refuses the translation of %q: %v", tt.in, err)
		}
	}
	unknownProject := &converter{inputs: map[string]vscodeInput{}, inputNames: map[string]string{}}
	if got := unknownProject.translate("${workspaceFolder}/x"); got.text != "${WORKSPACE_FOLDER}/x" || len(got.notes) != 1 {
		t.Errorf("without a project, ${workspaceFolder} = %q %q; want a WORKSPACE_FOLDER reference and a note", got.text, got.notes)
	}
}

func TestSecrets(t *testing.T) {
	env := []struct {
		name, value string
		secret      bool
	}{
		{"GITHUB_PERSONAL_ACCESS_TOKEN", "ghp_EXAMPLEexample000000000000000000000", true},
		{"BRAVE_API_KEY", "YOUR_API_KEY_HERE", true},
		{"API_KEY", "x", true},
		{"DB_PASSWORD", "hunter2", true},
		{"SLACK_BOT_TOKEN", "xoxb-0000-EXAMPLE", true},
		{"AWS_ACCESS_KEY_ID", "AKIAEXAMPLE000000000", true},
		{"DATABASE_URL", "postgres://u:p@h/db", true},
		{"WHATEVER", "postgres://u:p@h/db", true},
		{"WHATEVER", "aB3dE5gH7jK9mN1pQ3sT5vX7zA", true},
		{"AUTH_HEADER", "Bearer abcdefgh", true},
		{"GITHUB_TOKEN_FILE", "/run/secrets/gh", false},
		{"TOKEN_LIMIT", "1000", false},
		{"SECRET_SCANNING", "false", false},
		{"LANGUAGE", "en", false},
		{"NODE_ENV", "production", false},
		{"PWD", "/srv", false},
		{"KEYBOARD", "us", false},
		{"MEMORY_FILE_PATH", "/Users/alice/mcp/memory.json", false},
		{"ALLOWED_DIRECTORIES", "/srv/a,/srv/b", false},
		{"LOG_URL", "https://logs.example.com/in", false},
	}
	for _, tt := range env {
		if got := envIsSecret(tt.name, tt.value); got != tt.secret {
			t.Errorf("envIsSecret(%q, %q) = %v, want %v", tt.name, tt.value, got, tt.secret)
		}
	}
	args := []struct {
		prev, arg string
		secret    bool
	}{
		{"--api-key", "abc", true},
		{"--token", "abc", true},
		{"-y", "@modelcontextprotocol/server-filesystem", false},
		{"", "postgresql://alice:pw@localhost/db", true},
		{"", "postgresql://localhost/db", false},
		{"", "ghp_EXAMPLEexample000000000000000000000", true},
		{"", "mcp-server-fetch==2025.4.7", false},
		{"", "--local-timezone=America/New_York", false},
		{"", "/Users/alice/Desktop", false},
		{"--db-path", "/Users/alice/test.db", false},
		{"", "aB3dE5gH7jK9mN1pQ3sT5vX7zA0cE2gI", true},
	}
	for _, tt := range args {
		if got := argIsSecret(tt.prev, tt.arg); got != tt.secret {
			t.Errorf("argIsSecret(%q, %q) = %v, want %v", tt.prev, tt.arg, got, tt.secret)
		}
	}
}

func TestDockerRun(t *testing.T) {
	tests := []struct {
		name  string
		argv  []string
		ok    bool
		image string
		cmd   []string
		spec  containerSpec
	}{
		{"github", []string{"docker", "run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"}, true,
			"ghcr.io/github/github-mcp-server", nil, containerSpec{network: "bridge", envNames: []string{"GITHUB_PERSONAL_ACCESS_TOKEN"}}},
		{"with a command and values", []string{"/usr/bin/docker", "run", "-i", "--rm", "--network=none", "-u", "1000:1000", "-m", "256m", "--pull", "always", "-e", "A=b", "mcp/fs", "/workspace"}, true,
			"mcp/fs", []string{"/workspace"}, containerSpec{network: "none", networkAsked: true, user: "1000:1000", memory: "256m", pull: "missing", envValues: [][2]string{{"A", "b"}}}},
		{"podman", []string{"podman", "run", "-i", "img"}, true, "img", nil, containerSpec{network: "bridge"}},
		{"image after --", []string{"docker", "run", "-i", "--", "img", "-x"}, true, "img", []string{"-x"}, containerSpec{network: "bridge"}},
		{"an unknown flag", []string{"docker", "run", "--gpus", "all", "img"}, false, "", nil, containerSpec{}},
		{"not run", []string{"docker", "exec", "-i", "c", "x"}, false, "", nil, containerSpec{}},
		{"no image", []string{"docker", "run", "-i", "--rm"}, false, "", nil, containerSpec{}},
		{"a variable image", []string{"docker", "run", "-i", "${IMAGE}"}, false, "", nil, containerSpec{}},
		{"not docker", []string{"npx", "run", "x"}, false, "", nil, containerSpec{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, cmd, _, ok := dockerRun(tt.argv)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			tt.spec.image = tt.image
			if diff := cmp.Diff(&tt.spec, spec, cmp.AllowUnexported(containerSpec{})); diff != "" {
				t.Errorf("spec (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.cmd, cmd); diff != "" {
				t.Errorf("command (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStripJSONC(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"plain", `{"a": 1}`, `{"a": 1}`},
		{"line comment", "{\"a\": 1 // x\n}", "{\"a\": 1     \n}"},
		{"block comment", "{/* a\nb */\"a\": 1}", "{    \n    \"a\": 1}"},
		{"trailing commas", `{"a": [1, 2,], }`, `{"a": [1, 2 ]  }`},
		{"a comma before a comment", "{\"a\": 1, // x\n}", "{\"a\": 1      \n}"},
		{"slashes in strings", `{"u": "http://x/*y*/", "e": "a\"//b"}`, `{"u": "http://x/*y*/", "e": "a\"//b"}`},
		{"byte order mark", "\xef\xbb\xbf{}", "   {}"},
		{"a comma inside a string", `{"a": ",}"}`, `{"a": ",}"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stripJSONC([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	if _, err := stripJSONC([]byte("{/* open")); err == nil {
		t.Error("an unterminated block comment is accepted")
	}
}

// TestEnvFileUnreadable: a missing envFile is a review comment, not a
// failure, and no value is invented.
func TestEnvFileUnreadable(t *testing.T) {
	data := `{"servers": {"a": {"command": "x", "envFile": "/nonexistent/.env"}}}`
	res, err := Convert([]byte(data), &Options{ReadFile: func(string) ([]byte, error) { return nil, errors.New("gone") }})
	if err != nil {
		t.Fatal(err)
	}
	mustParse(t, res)
	if !strings.Contains(string(res.YAML), `# review: its envFile "/nonexistent/.env" cannot be read (gone)`) {
		t.Errorf("no review comment for the unreadable envFile:\n%s", res.YAML)
	}
}
