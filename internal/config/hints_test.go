package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestForeignKeyHints: keys written the way MCP clients' files (Claude
// Desktop, Claude Code, Cursor, VS Code) or Docker Compose write them get
// a message that shows the mcpgw way.
func TestForeignKeyHints(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string // a problem of Parse's error, in full
	}{
		{
			name: "args",
			yaml: "servers:\n  fs:\n    command: [npx]\n    args: [\"-y\", \"@modelcontextprotocol/server-filesystem\"]\n",
			want: `servers.fs.args: unknown key; mcpgw takes the whole argv in command: ["npx", "-y", …]: put the program first and its arguments after it in that one list (line 4)`,
		},
		{
			name: "environment",
			yaml: "servers:\n  fs:\n    command: [x]\n    environment: {A: b}\n",
			want: `servers.fs.environment: unknown key; did you mean env? mcpgw passes variables as env: {NAME: value}, e.g. env: {GITHUB_TOKEN: "${GITHUB_TOKEN}"} (line 4)`,
		},
		{
			name: "enviroment misspelt",
			yaml: "servers:\n  fs:\n    command: [x]\n    enviroment: {A: b}\n",
			want: `servers.fs.enviroment: unknown key; did you mean env? mcpgw passes variables as env: {NAME: value}, e.g. env: {GITHUB_TOKEN: "${GITHUB_TOKEN}"} (line 4)`,
		},
		{
			name: "startup_timeout",
			yaml: "servers:\n  fs:\n    command: [x]\n    startup_timeout: 30\n",
			want: "servers.fs.startup_timeout: unknown key; did you mean timeouts: {startup: 30s}? (durations carry their unit) (line 4)",
		},
		{
			name: "startupTimeout in camel case",
			yaml: "servers: {fs: {command: [x], startupTimeout: 30}}\n",
			want: "servers.fs.startupTimeout: unknown key; did you mean timeouts: {startup: 30s}? (durations carry their unit) (line 1)",
		},
		{
			name: "timeout",
			yaml: "servers: {fs: {command: [x], timeout: 60000}}\n",
			want: "servers.fs.timeout: unknown key; did you mean timeouts: {request: 60s}? (timeouts also holds startup, idle, max_lifetime and kill_grace; durations carry their unit) (line 1)",
		},
		{
			name: "cwd",
			yaml: "servers: {fs: {command: [x], cwd: /srv}}\n",
			want: "servers.fs.cwd: unknown key; did you mean workdir? (an absolute path; workspaces: gives the server access to directories) (line 1)",
		},
		{
			name: "type",
			yaml: "servers: {fs: {command: [x], type: stdio}}\n",
			want: "servers.fs.type: unknown key; mcpgw serves stdio servers only, so there is no type: remove it (runtime: native or container says how the server runs) (line 1)",
		},
		{
			name: "url",
			yaml: "servers: {fs: {command: [x], url: \"https://example.com/mcp\"}}\n",
			want: "servers.fs.url: unknown key; " + remoteHint[2:] + " (line 1)",
		},
		{
			name: "transport",
			yaml: "servers: {fs: {command: [x], transport: stdio}}\n",
			want: "servers.fs.transport: unknown key; mcpgw serves stdio servers only, so there is no transport: remove it (every server is published over Streamable HTTP and SSE at /mcp/NAME) (line 1)",
		},
		{
			name: "envFile",
			yaml: "servers: {fs: {command: [x], envFile: .env}}\n",
			want: `servers.fs.envFile: unknown key; mcpgw reads no env files: list each variable under env: as NAME: "${NAME}" and export it in the gateway's environment (line 1)`,
		},
		{
			name: "mcpServers at the top",
			yaml: "mcpServers:\n  fs: {command: npx}\nservers: {a: {command: [x]}}\n",
			want: `mcpServers: unknown key; did you mean servers:? mcpgw's servers mapping holds each server's command as one list; "mcpgw import FILE" converts a Claude Desktop, Claude Code, Cursor or VS Code file (line 1)`,
		},
		{
			name: "VS Code inputs at the top",
			yaml: "inputs: []\nservers: {a: {command: [x]}}\n",
			want: `inputs: unknown key; mcpgw does not prompt for values: write "${NAME}" where a secret goes and export NAME in the gateway's environment ("mcpgw import FILE" converts a Claude Desktop, Claude Code, Cursor or VS Code file) (line 1)`,
		},
		{
			name: "port at the top",
			yaml: "port: 8080\nservers: {a: {command: [x]}}\n",
			want: "port: unknown key; did you mean listen:? write host:port, e.g. listen: 127.0.0.1:8080 (line 1)",
		},
		{
			name: "env in the container block",
			yaml: "servers: {a: {runtime: container, container: {image: x, env: {A: b}}}}\n",
			want: "servers.a.container.env: unknown key; env belongs to the server (servers.NAME.env), not to its container block (line 1)",
		},
		{
			name: "a timeout named as elsewhere",
			yaml: "servers: {a: {command: [x], timeouts: {init: 5s}}}\n",
			want: "servers.a.timeouts.init: unknown key; did you mean startup? (line 1)",
		},
		{
			name: "a mount with a path",
			yaml: "servers: {a: {command: [x], workspaces: [{path: /srv}]}}\n",
			want: "servers.a.workspaces[0].path: unknown key; a mount names a top-level workspace ({name: NAME}); the host directory is set under workspaces: at the top level (line 1)",
		},
		{
			name: "a token written in the file",
			yaml: "auth: {tokens: [{name: a, token: abc}]}\nservers: {a: {command: [x]}}\n",
			want: `auth.tokens[0].token: unknown key; a token is never written in the file: give its digest (sha256: "…", which "mcpgw token NAME" prints) or the variable that holds it (value_env: NAME) (line 1)`,
		},
		{
			name: "a quoted server name",
			yaml: "servers: {\"my.server\": {command: [x], args: [y]}}\n",
			want: `servers."my.server".args: unknown key` + argvHint + " (line 1)",
		},
		{
			name: "near miss still suggested",
			yaml: "servers: {fs: {comand: [x]}}\n",
			want: "servers.fs.comand: unknown key; did you mean command? (line 1)",
		},
		{
			name: "a foreign key elsewhere is a near miss or nothing",
			yaml: "log: {args: x}\nservers: {fs: {command: [x]}}\n",
			want: "log.args: unknown key (line 1)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil)
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.yaml)
			}
			got := problemsOf(t, err)
			for _, p := range got {
				if p == tt.want {
					return
				}
			}
			t.Errorf("no problem is\n  %s\ngot:\n  %s", tt.want, strings.Join(got, "\n  "))
		})
	}
}

// TestTabIndentation: a tab in the indentation is named as such, with its
// line, wherever it is; a tab elsewhere (after a colon) is fine.
func TestTabIndentation(t *testing.T) {
	const msg = "invalid YAML: this line is indented with a tab (column %d); YAML indentation must be spaces: replace the tabs with spaces (line %d)"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"server key", "servers:\n\tfs:\n\t\tcommand: [x]\n", []string{fmt.Sprintf(msg, 1, 2)}},
		{"a deeper key", "servers:\n  fs:\n\tcommand: [x]\n", []string{fmt.Sprintf(msg, 1, 3)}},
		{"after spaces", "servers:\n  fs:\n    command:\n    \t- x\n", []string{fmt.Sprintf(msg, 5, 4)}},
		{"last key", "servers:\n  fs:\n    command: [x]\n\tmode: daemon\n", []string{fmt.Sprintf(msg, 1, 4)}},
		{"a tab after the colon is a separator", "listen:\t127.0.0.1:1\nservers: {a: {command: [x]}}\n", nil},
		{"a tab in a quoted value", "servers: {a: {command: [\"x\ty\"]}}\n", nil},
		{"other syntax errors keep the parser's message", "servers:\n  fs: {command: [x]\n", []string{"invalid YAML: did not find expected ',' or '}' (line 1)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), nil)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMappingKind(t *testing.T) {
	tests := map[string]string{
		"":                                 "top",
		"servers":                          "",
		"servers.fs":                       "server",
		`servers."a.b c"`:                  "server",
		`servers."a.b c".container`:        "container",
		"servers.fs.container":             "container",
		"servers.fs.timeouts":              "timeouts",
		"servers.fs.workspaces[2]":         "mount",
		"servers.fs.workspaces[2].x":       "",
		"servers.fs.env":                   "",
		"servers.fs.rate":                  "",
		"auth.tokens[0]":                   "token",
		"auth.jwt":                         "",
		"log":                              "",
		`servers."unterminated`:            "",
		`servers."a\".timeouts".timeouts`:  "timeouts",
		"servers.fs.container.cap_add[0]":  "",
		"servers.fs.workspaces[0].subpath": "",
	}
	for path, want := range tests {
		if got := mappingKind(path); got != want {
			t.Errorf("mappingKind(%q) = %q, want %q", path, got, want)
		}
	}
}
