package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// envOf returns a lookupEnv that serves m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// problemsOf returns the problems of err, which must be an *Error.
func problemsOf(tb testing.TB, err error) []string {
	tb.Helper()
	if err == nil {
		tb.Fatal("got no error, want an *Error")
	}
	e, ok := errors.AsType[*Error](err)
	if !ok {
		tb.Fatalf("got error %T %q, want an *Error", err, err)
	}
	return e.Problems
}

// mustParse parses yaml that must be valid.
func mustParse(tb testing.TB, yaml string, env map[string]string) *Config {
	tb.Helper()
	c, err := Parse([]byte(yaml), envOf(env))
	if err != nil {
		tb.Fatalf("Parse: %v", err)
	}
	return c
}

const ciToken = "0123456789abcdefghijklmnopqrstuvwxyz"

func sha(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// defaultServer returns the settings of a server that sets only its command.
func defaultServer(name string, command ...string) *Server {
	s := newServer(name)
	s.Command = command
	applyModeDefaults(s)
	applyWorkspaceDefaults(s)
	return s
}

// withServers returns the default Config holding servers.
func withServers(servers ...*Server) *Config {
	c := newConfig()
	for _, s := range servers {
		c.Servers[s.Name] = s
	}
	return c
}

const fullYAML = `# every key this version knows, none at its default
listen: 0.0.0.0:9090
reload: watch
public_url: https://MCP.example.com/
allowed_hosts: [mcp.example.com, "Other.Example.com:8443", "[::1]:9090"]
allowed_origins: ["https://claude.ai", "HTTP://LOCALHOST:6274/", "https://app.example.com:443"]
log: {level: debug, format: text}
limits:
  max_processes: 64
  max_body_bytes: 8MiB
  max_message_bytes: 32m
  shutdown_timeout: 45s
  sse_keepalive: 20s
  hold_messages: 2m
  max_held_messages: 512
  replay_events: 10
  replay_bytes: 64KiB
  replay_age: 30s
  sse_retry: 2s
  sse_close_after_priming: true
  read_timeout: 10s
  max_sessions: 100
auth:
  tokens:
    - {name: laptop, sha256: "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"}
    - {name: ci.bot, value_env: CI_TOKEN}
  jwt:
    issuer: https://team.cloudflareaccess.com
    audiences: [aud-tag]
    headers: [cf-access-jwt-assertion]
    algorithms: [ES256]
    clock_skew: 10s
trusted_proxies: [127.0.0.1, "10.1.2.3/8", "::1/128"]
rate: {requests_per_second: 0.5, per: ip}
session_rate: {requests_per_second: 2, burst: 5, per: global}
servers:
  fs:
    runtime: native
    mode: launcher
    command: ["mcp-server-filesystem", "/srv/projects"]
    env:
      GITHUB_TOKEN: "${GITHUB_TOKEN}"
      DEBUG: 1
      EMPTY: ""
    workdir: /srv/tools
    timeouts: {startup: 10s, request: 2m, idle: 30m, max_lifetime: 12h, kill_grace: 3s, reclaim_idle: 0s, reclaim_unattended: 1s}
    max_concurrent: 8
    max_processes: 16
    queue_timeout: 1.5s
    isolation: request
    allow: ["*@Example.com", laptop, Bob@Example.com]
    rate: {requests_per_second: 5}
    session_rate: {requests_per_second: 1, burst: 3, per: identity}
  git_2:
    command:
      - mcp-server-git
`

func TestParseFull(t *testing.T) {
	got := mustParse(t, fullYAML, map[string]string{"GITHUB_TOKEN": "ghp_x", "CI_TOKEN": ciToken})
	want := &Config{
		Listen:         "0.0.0.0:9090",
		Reload:         "watch",
		PublicURL:      "https://mcp.example.com",
		AllowedHosts:   []string{"mcp.example.com", "other.example.com:8443", "[::1]:9090"},
		AllowedOrigins: []string{"https://claude.ai", "http://localhost:6274", "https://app.example.com"},
		Log:            Log{Level: "debug", Format: "text"},
		Limits: Limits{
			MaxProcesses:         64,
			MaxBodyBytes:         8 << 20,
			MaxMessageBytes:      32 << 20,
			ShutdownTimeout:      45 * time.Second,
			SSEKeepAlive:         20 * time.Second,
			HoldMessages:         2 * time.Minute,
			MaxHeldMessages:      512,
			ReplayEvents:         10,
			ReplayBytes:          64 << 10,
			ReplayAge:            30 * time.Second,
			SSERetry:             2 * time.Second,
			SSECloseAfterPriming: true,
			ReadTimeout:          10 * time.Second,
			MaxSessions:          100,
		},
		Servers: map[string]*Server{
			"fs": {
				Name:    "fs",
				Runtime: "native",
				Mode:    "launcher",
				Command: []string{"mcp-server-filesystem", "/srv/projects"},
				Env:     map[string]string{"GITHUB_TOKEN": "ghp_x", "DEBUG": "1", "EMPTY": ""},
				Workdir: "/srv/tools",
				Timeouts: Timeouts{
					Startup:           10 * time.Second,
					Request:           2 * time.Minute,
					Idle:              30 * time.Minute,
					MaxLifetime:       12 * time.Hour,
					KillGrace:         3 * time.Second,
					ReclaimIdle:       0,
					ReclaimUnattended: time.Second,
				},
				MaxConcurrent: 8,
				MaxProcesses:  16,
				QueueTimeout:  1500 * time.Millisecond,
				Isolation:     "request",

				MaxInflightPerProcess: 16,
				PinTools:              "off",
				Allow:                 []string{"*@example.com", "laptop", "bob@example.com"},
				Rate:                  &Rate{RequestsPerSecond: 5, Burst: 5, Per: "identity"},
				SessionRate:           &Rate{RequestsPerSecond: 1, Burst: 3, Per: "identity"},
				Sandbox:               SandboxLandlock,
			},
			"git_2": defaultServer("git_2", "mcp-server-git"),
		},
		Auth: Auth{
			Mode: AuthRequired, Advertise: true,
			Tokens: []Token{
				{Name: "laptop", SHA256: mustHex("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")},
				{Name: "ci.bot", SHA256: sha(ciToken)},
			},
			JWT: &JWT{
				Issuer:     "https://team.cloudflareaccess.com",
				Audiences:  []string{"aud-tag"},
				JWKSURL:    "https://team.cloudflareaccess.com/cdn-cgi/access/certs",
				Headers:    []string{"Cf-Access-Jwt-Assertion"},
				Algorithms: []string{"ES256"},
				ClockSkew:  10 * time.Second,
			},
		},
		TrustedProxies: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.1/32"),
			netip.MustParsePrefix("10.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
		},
		Rate:        &Rate{RequestsPerSecond: 0.5, Burst: 1, Per: "ip"},
		SessionRate: &Rate{RequestsPerSecond: 2, Burst: 5, Per: "global"},
		Tracing:     Tracing{SampleRatio: -1},
		Status:      Status{RecentErrors: 50},
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("Parse mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate of a parsed config: %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want *Config
	}{
		{
			name: "only a server",
			yaml: "servers: {fs: {command: [mcp-server-filesystem]}}",
			want: withServers(defaultServer("fs", "mcp-server-filesystem")),
		},
		{
			name: "null values keep defaults",
			yaml: `
listen:
public_url: ~
allowed_hosts:
allowed_origins: null
log:
limits: {max_processes: ~, sse_keepalive: }
servers:
  fs:
    command: [x]
    runtime:
    timeouts: ~
    env:
`,
			want: withServers(defaultServer("fs", "x")),
		},
		{
			name: "empty lists",
			yaml: "allowed_hosts: []\nallowed_origins: []\nservers: {fs: {command: [x], env: {}}}",
			want: func() *Config {
				s := defaultServer("fs", "x")
				s.Env = map[string]string{}
				return withServers(s)
			}(),
		},
		{
			name: "document start marker and comments",
			yaml: "---\n# comment\nservers: # servers\n  a: {command: [x]} # a\n...\n",
			want: withServers(defaultServer("a", "x")),
		},
		{
			name: "standard tags and an empty second document",
			yaml: "servers: !!map {a: {command: !!seq [!!str x], max_processes: !!int 4}}\n---\n",
			want: withServers(defaultServer("a", "x")),
		},
		{
			name: "numbers and durations written as quoted strings",
			yaml: `servers: {a: {command: [x], max_concurrent: "3", queue_timeout: "0"}}`,
			want: func() *Config {
				s := defaultServer("a", "x")
				s.MaxConcurrent = 3
				return withServers(s)
			}(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustParse(t, tt.yaml, nil)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDefaultsDocumented pins the defaults that types.go and docs/config.md
// promise, so that changing one without the other fails.
func TestDefaultsDocumented(t *testing.T) {
	want := &Config{
		Listen: "127.0.0.1:8080",
		Reload: "signal",
		Log:    Log{Level: "info", Format: "json"},
		Limits: Limits{
			MaxProcesses:    32,
			MaxBodyBytes:    4 << 20,
			MaxMessageBytes: 16 << 20,
			ShutdownTimeout: 30 * time.Second,
			SSEKeepAlive:    15 * time.Second,
			HoldMessages:    60 * time.Second,
			MaxHeldMessages: 256,
			ReplayEvents:    256,
			ReplayBytes:     1 << 20,
			ReplayAge:       5 * time.Minute,
			SSERetry:        time.Second,
			ReadTimeout:     30 * time.Second,
			MaxSessions:     4096,
		},
		Auth: Auth{Mode: AuthLocal, Advertise: true},
		Servers: map[string]*Server{"s": {
			Name:    "s",
			Runtime: "native",
			Mode:    "launcher",
			Command: []string{"x"},
			Timeouts: Timeouts{
				Startup:           30 * time.Second,
				Request:           60 * time.Second,
				Idle:              15 * time.Minute,
				MaxLifetime:       24 * time.Hour,
				KillGrace:         5 * time.Second,
				ReclaimIdle:       60 * time.Second,
				ReclaimUnattended: 2 * time.Second,
			},
			MaxConcurrent: 2,
			MaxProcesses:  4,
			QueueTimeout:  0,
			Isolation:     "session",

			MinProcesses:          0,
			MaxInflightPerProcess: 16,
			PinTools:              "off",
			Sandbox:               SandboxLandlock,
		}},
		Tracing: Tracing{SampleRatio: -1},
		Status:  Status{RecentErrors: 50},
	}
	got := mustParse(t, "servers: {s: {command: [x]}}", nil)
	if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
		t.Errorf("defaults mismatch (-want +got):\n%s", diff)
	}
}

func TestParseProblems(t *testing.T) {
	type test struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}
	tests := []test{
		// The file as a whole.
		{
			name: "empty file",
			yaml: "",
			want: []string{`servers: at least one server is required, e.g. servers: {fs: {command: ["mcp-server-filesystem", "/srv"]}}`},
		},
		{
			name: "invalid YAML",
			yaml: "servers:\n  fs: {command: [x]\n",
			want: []string{"invalid YAML: did not find expected ',' or '}' (line 1)"},
		},
		{
			name: "tab indentation",
			yaml: "servers:\n\tfs: {}\n",
			want: []string{"invalid YAML: this line is indented with a tab (column 1); YAML indentation must be spaces: replace the tabs with spaces (line 2)"},
		},
		{
			name: "two documents",
			yaml: "servers: {a: {command: [x]}}\n---\nlisten: :1\n",
			want: []string{`the file holds more than one YAML document (separated by "---"); put the whole configuration in one (line 3)`},
		},
		{
			name: "YAML tags",
			yaml: "servers:\n  a:\n    command: [!!binary eA==]\n    env: !env {A: x}\n    workdir: !path /srv\n",
			want: []string{
				"servers.a.command[0]: the YAML tag !!binary is not supported; write the plain value (and ${NAME} for an environment variable) (line 3)",
				"servers.a.env: the YAML tag !env is not supported; write the plain value (and ${NAME} for an environment variable) (line 4)",
				"servers.a.workdir: the YAML tag !path is not supported; write the plain value (and ${NAME} for an environment variable) (line 5)",
			},
		},
		{
			name: "list at top level",
			yaml: "- servers\n",
			want: []string{"the configuration must be a mapping of keys such as listen: and servers:, not a list (line 1)"},
		},
		{
			name: "problems in file order",
			yaml: "log: {level: loud}\nservers:\n  a: {command: []}\nlisten: nope\n",
			want: []string{
				"log.level: must be one of debug, info, warn, error (got \"loud\") (line 1)",
				`servers.a.command: must name the program to run and its arguments as a list, e.g. ["mcp-server-filesystem", "/srv"] (line 3)`,
				`listen: must be host:port, e.g. 127.0.0.1:8080 or :8080 (got "nope") (line 4)`,
			},
		},

		// Authentication, allow lists and rate limits.
		{
			name: "public listen without auth",
			yaml: "listen: :8080\nallowed_hosts: [localhost, mcp.example.com]\nservers: {a: {command: [x]}}\n",
			want: []string{
				"listen: is not a loopback address, but no auth is configured: add auth.tokens or auth.jwt, or write auth: {mode: none} to serve everyone without authentication (line 1)",
				"allowed_hosts[1]: names a host other than this machine but no auth is configured: add auth.tokens or auth.jwt, or write auth: {mode: none} to serve everyone without authentication (line 2)",
			},
		},
		{
			name: "explicit mode none on a public listener",
			yaml: "listen: 0.0.0.0:8080\nallowed_hosts: [mcp.example.com]\nauth: {mode: none}\nservers: {a: {command: [x]}}\n",
		},
		{
			name: "loopback listeners need no auth",
			yaml: "listen: localhost:8080\nallowed_hosts: [\"[::1]:8080\", 127.0.0.2]\nservers: {a: {command: [x]}}\n",
		},
		{
			name: "auth without a method",
			yaml: "auth: {}\nservers: {a: {command: [x]}}\n",
			want: []string{"auth: set tokens or jwt, or write mode: none to turn authentication off explicitly (line 1)"},
		},
		{
			name: "auth mode conflicts",
			yaml: "auth:\n  mode: none\n  tokens: [{name: a, sha256: " + strings.Repeat("ab", 32) + "}]\nservers: {a: {command: [x]}}\n",
			want: []string{"auth.mode: none turns authentication off, but tokens, jwt or oauth are set: remove mode: none to require them (line 2)"},
		},
		{
			name: "auth mode unknown",
			yaml: "auth: {mode: open}\nservers: {a: {command: [x]}}\n",
			want: []string{`auth.mode: must be none or required (got "open") (line 1)`},
		},
		{
			name: "tokens",
			yaml: `auth:
  tokens:
    - {name: a, sha256: "12"}
    - {name: a@b, sha256: ` + strings.Repeat("ab", 32) + `}
    - {name: c, value_env: UNSET}
    - {name: d, value_env: SHORT}
    - {name: e, sha256: ` + strings.Repeat("ab", 32) + `, value_env: LONG}
    - {name: f}
    - {sha256: ` + strings.Repeat("ab", 32) + `}
    - {name: g, value_env: LONG}
    - {name: g, value_env: LONG}
servers: {a: {command: [x]}}
`,
			env: map[string]string{"SHORT": "secret-value", "LONG": strings.Repeat("s", 32)},
			want: []string{
				"auth.tokens[0].sha256: must be 64 hexadecimal digits, the SHA-256 of the token (mcpgw token prints it) (line 3)",
				`auth.tokens[1].name: must be 1 to 64 characters A-Z, a-z, 0-9, _, . and -, starting with a letter or digit (got "a@b") (line 4)`,
				"auth.tokens[2].value_env: environment variable UNSET is not set (line 5)",
				"auth.tokens[3].value_env: the token in SHORT is shorter than 32 characters; generate one with mcpgw token (line 6)",
				"auth.tokens[4]: set either sha256 or value_env, not both (line 7)",
				"auth.tokens[5]: needs sha256 (the token's SHA-256 in hex, printed by mcpgw token) or value_env (a variable holding the token) (line 8)",
				"auth.tokens[6].name: is required: the identity that logs, allow lists and rate limits use for this token (line 9)",
				`auth.tokens[8].name: duplicate token name (got "g") (line 11)`,
			},
		},
		{
			name: "jwt",
			yaml: `auth:
  jwt:
    issuer: http://team.example.com
    jwks_url: ftp://keys
    headers: ["bad header"]
    algorithms: [HS256, none]
    clock_skew: 1h
servers: {a: {command: [x]}}
`,
			want: []string{
				"auth.jwt.audiences: at least one audience is required (for Cloudflare Access: the application's AUD tag); without it any token of the issuer would do (line 2)",
				`auth.jwt.issuer: must be https (http is accepted only for loopback addresses) (got "http://team.example.com") (line 3)`,
				`auth.jwt.jwks_url: must be an absolute https URL, e.g. https://team.cloudflareaccess.com (got "ftp://keys") (line 4)`,
				`auth.jwt.headers[0]: must be an HTTP header name, e.g. Cf-Access-Jwt-Assertion (got "bad header") (line 5)`,
				`auth.jwt.algorithms[0]: must be RS256 or ES256 (none and HMAC algorithms are never accepted) (got "HS256") (line 6)`,
				`auth.jwt.algorithms[1]: must be RS256 or ES256 (none and HMAC algorithms are never accepted) (got "none") (line 6)`,
				"auth.jwt.clock_skew: must be between 0s and 5m (line 7)",
			},
		},
		{
			name: "jwt on loopback over http",
			yaml: "auth: {jwt: {issuer: \"http://127.0.0.1:5556\", audiences: [x]}}\nservers: {a: {command: [x]}}\n",
		},
		{
			name: "allow and rate",
			yaml: `trusted_proxies: [10.0.0.0/33, nope]
rate: {requests_per_second: 0, burst: 0, per: user}
servers:
  a:
    command: [x]
    allow: ["*", "*@", "a*b", ""]
    session_rate: {requests_per_second: fast}
`,
			want: []string{
				`trusted_proxies[0]: must be an IP address or a CIDR prefix, e.g. 127.0.0.1/32 or 10.0.0.0/8 (got "10.0.0.0/33") (line 1)`,
				`trusted_proxies[1]: must be an IP address or a CIDR prefix, e.g. 127.0.0.1/32 or 10.0.0.0/8 (got "nope") (line 1)`,
				"rate.requests_per_second: must be between 0.001 and 1e+06 (line 2)",
				"rate.burst: must be between 1 and 1000000 (line 2)",
				`rate.per: must be one of global, identity, ip (got "user") (line 2)`,
				`servers.a.allow[0]: "*" is not a pattern: leave allow out to let every authenticated identity in (line 6)`,
				`servers.a.allow[1]: must be *@ followed by a domain, e.g. *@example.com (got "*@") (line 6)`,
				`servers.a.allow[2]: the only pattern is *@domain; list other identities exactly (got "a*b") (line 6)`,
				"servers.a.allow[3]: must not be empty (line 6)",
				"servers.a.allow: needs authentication (auth.tokens or auth.jwt): without it every caller is anonymous (line 6)",
				`servers.a.session_rate.requests_per_second: must be a number, e.g. 5 or 0.5 (got "fast") (line 7)`,
			},
		},

		// Keys.
		{
			name: "unknown top-level key with suggestion",
			yaml: "listn: :80\nservers: {a: {command: [x]}}",
			want: []string{"listn: unknown key; did you mean listen? (line 1)"},
		},
		{
			name: "unknown server key with suggestion",
			yaml: "servers:\n  fs:\n    comand: [x]\n    command: [x]\n",
			want: []string{"servers.fs.comand: unknown key; did you mean command? (line 3)"},
		},
		{
			name: "camel case key",
			yaml: "servers: {fs: {command: [x], maxConcurrent: 3}}",
			want: []string{"servers.fs.maxConcurrent: unknown key; did you mean max_concurrent? (line 1)"},
		},
		{
			name: "unknown key without suggestion",
			yaml: "servers: {fs: {command: [x], picture: alpine}}\nlog: {colour: true}",
			want: []string{
				"servers.fs.picture: unknown key (line 1)",
				"log.colour: unknown key (line 2)",
			},
		},
		{
			name: "unknown key in timeouts",
			yaml: "servers: {fs: {command: [x], timeouts: {requets: 5s}}}",
			want: []string{"servers.fs.timeouts.requets: unknown key; did you mean request? (line 1)"},
		},
		{
			name: "odd key is quoted in the path",
			yaml: "servers: {fs: {command: [x], \"a.b c\": 1}}",
			want: []string{`servers.fs."a.b c": unknown key (line 1)`},
		},
		{
			name: "duplicate keys",
			yaml: "listen: 127.0.0.1:1\nservers:\n  fs:\n    command: [x]\n    command: [y]\nlisten: :2\n",
			want: []string{
				"servers.fs.command: duplicate key: it is already set on line 4 (line 5)",
				"listen: duplicate key: it is already set on line 1 (line 6)",
			},
		},
		{
			name: "list as key",
			yaml: "[a]: 1\n",
			want: []string{
				`servers: at least one server is required, e.g. servers: {fs: {command: ["mcp-server-filesystem", "/srv"]}}`,
				"keys must be plain strings, not a list (line 1)",
			},
		},

		// Kinds of values.
		{
			name: "wrong kinds",
			yaml: "listen: [a]\nlog: info\nlimits: [1]\nallowed_hosts: x\nservers: {fs: {command: [x], env: [A=1], timeouts: 5s, max_concurrent: {a: 1}}}",
			want: []string{
				"listen: must be a string, not a list (line 1)",
				"log: must be a mapping (key: value), not a single value (line 2)",
				"limits: must be a mapping (key: value), not a list (line 3)",
				"allowed_hosts: must be a list, not a single value (line 4)",
				"servers.fs.env: must be a mapping of variable name to value, not a list (line 5)",
				"servers.fs.timeouts: must be a mapping (key: value), not a single value (line 5)",
				"servers.fs.max_concurrent: must be a whole number, not a mapping (line 5)",
			},
		},
		{
			name: "servers is a list",
			yaml: "servers:\n  - command: [x]\n",
			want: []string{"servers: must be a mapping of server name to settings, not a list (line 2)"},
		},
		{
			name: "servers is empty",
			yaml: "servers: {}\n",
			want: []string{`servers: at least one server is required, e.g. servers: {fs: {command: ["mcp-server-filesystem", "/srv"]}} (line 1)`},
		},

		// Servers.
		{
			name: "invalid server names",
			yaml: "servers:\n  Fs: {command: [x]}\n  -x: {command: [x]}\n  a.b: {command: [x]}\n  " + strings.Repeat("a", 65) + ": {command: [x]}\n  ok-1_2: {command: [x]}\n",
			want: []string{
				"servers.Fs: invalid server name: use 1 to 64 characters a-z, 0-9, _ and -, starting with a letter or digit (the name is the URL path /mcp/NAME) (line 2)",
				"servers.-x: invalid server name: use 1 to 64 characters a-z, 0-9, _ and -, starting with a letter or digit (the name is the URL path /mcp/NAME) (line 3)",
				`servers."a.b": invalid server name: use 1 to 64 characters a-z, 0-9, _ and -, starting with a letter or digit (the name is the URL path /mcp/NAME) (line 4)`,
				"servers." + strings.Repeat("a", 65) + ": invalid server name: use 1 to 64 characters a-z, 0-9, _ and -, starting with a letter or digit (the name is the URL path /mcp/NAME) (line 5)",
			},
		},
		{
			name: "server without settings",
			yaml: "servers:\n  fs:\n",
			want: []string{`servers.fs.command: must name the program to run and its arguments as a list, e.g. ["mcp-server-filesystem", "/srv"] (line 2)`},
		},
		{
			name: "server is not a mapping",
			yaml: "servers:\n  fs: mcp-server-filesystem\n",
			want: []string{"servers.fs: must be a mapping (key: value), not a single value (line 2)"},
		},
		{
			name: "runtime container without block",
			yaml: "servers: {fs: {command: [x], runtime: container}}",
			want: []string{"servers.fs.container: is required for runtime: container and must name the image, e.g. container: {image: mcp/filesystem} (line 1)"},
		},
		{
			name: "runtime unknown",
			yaml: "servers: {fs: {command: [x], runtime: podman}}",
			want: []string{`servers.fs.runtime: must be native or container (got "podman") (line 1)`},
		},
		{
			name: "container block on a native server",
			yaml: "servers:\n  fs:\n    command: [x]\n    container: {image: a}\n",
			want: []string{"servers.fs.container: is only for runtime: container; set runtime: container or remove the block (line 4)"},
		},
		{
			name: "container workdir",
			yaml: "servers:\n  fs:\n    runtime: container\n    workdir: /srv\n    container: {image: a}\n",
			want: []string{"servers.fs.workdir: is for runtime: native only; a container runs in its image's working directory (line 4)"},
		},
		{
			name: "container values",
			yaml: `servers:
  fs:
    runtime: container
    container:
      image: "Bad Image"
      network: host
      read_only: yes
      user: "root user"
      memory: 1m
      cpus: 0
      pids_limit: 2
      nofile: 1
      cap_add: [SYS_ADMIN, net_bind_service]
      pull: always
      tmp_size: 1k
`,
			want: []string{
				`servers.fs.container.image: must be an image reference such as mcp/filesystem, mcp/filesystem:1.0 or registry.example.com/team/server@sha256:… (got "Bad Image") (line 5)`,
				"servers.fs.container.network: host networking is not allowed: it gives the container the gateway's loopback and interfaces; use none, bridge or a named network (line 6)",
				`servers.fs.container.read_only: must be true or false (got "yes") (line 7)`,
				`servers.fs.container.user: must be uid[:gid] or name[:group], e.g. "65534:65534" (got "root user") (line 8)`,
				"servers.fs.container.memory: must be between 16MiB and 1024GiB (line 9)",
				"servers.fs.container.cpus: must be between 0.01 and 1024 (line 10)",
				"servers.fs.container.pids_limit: must be between 8 and 4194304 (line 11)",
				"servers.fs.container.nofile: must be between 16 and 1048576 (line 12)",
				`servers.fs.container.cap_add[0]: is not in the allowlist CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID (got "SYS_ADMIN") (line 13)`,
				"servers.fs.container.cap_add[1]: must be written in upper case without CAP_, e.g. NET_BIND_SERVICE (line 13)",
				`servers.fs.container.pull: must be one of never, missing (got "always") (line 14)`,
				"servers.fs.container.tmp_size: must be between 1MiB and 16GiB (line 15)",
			},
		},
		{
			name: "container image missing and network container",
			yaml: "servers:\n  fs:\n    runtime: container\n    container: {network: \"container:x\"}\n",
			want: []string{
				"servers.fs.container.image: is required: the image to run, e.g. mcp/filesystem or ghcr.io/org/server:1.2 (line 4)",
				"servers.fs.container.network: sharing another container's network is not allowed; use none, bridge or a named network (line 4)",
			},
		},
		{
			name: "min_processes in launcher mode",
			yaml: "servers: {fs: {command: [x], min_processes: 1}}",
			want: []string{"servers.fs.min_processes: applies to mode: daemon only; a launcher starts one process per session (line 1)"},
		},
		{
			name: "min_processes over the pool size",
			yaml: "servers: {fs: {command: [x], mode: daemon, min_processes: 2}}",
			want: []string{"servers.fs.min_processes: must not exceed max_processes (1) (line 1)"},
		},
		{
			name: "mode unknown",
			yaml: "servers: {fs: {command: [x], mode: Launcher}}",
			want: []string{`servers.fs.mode: must be launcher or daemon (got "Launcher") (line 1)`},
		},
		{
			name: "command is a string",
			yaml: "servers: {fs: {command: npx -y server}}",
			want: []string{`servers.fs.command: must be a list, not a single value; write the program and its arguments as a list, e.g. ["npx", "-y", "some-server"] (it never runs through a shell) (line 1)`},
		},
		{
			name: "command items",
			yaml: "servers:\n  fs:\n    command:\n      - x\n      - \"\"\n      - \"a\\0b\"\n      - [y]\n      - ~\n      - z\n",
			want: []string{
				"servers.fs.command[1]: must not be empty (line 5)",
				"servers.fs.command[2]: must not contain a NUL byte (line 6)",
				"servers.fs.command[3]: must be a string, not a list (line 7)",
				"servers.fs.command[4]: must be a string, not empty (YAML reads a bare ~ as no value) (line 8)",
			},
		},
		{
			name: "env",
			yaml: "servers:\n  fs:\n    command: [x]\n    env:\n      1X: a\n      A-B: b\n      NUL: \"a\\0b\"\n      NONE:\n      OK_1: c\n",
			want: []string{
				"servers.fs.env.1X: is not a valid environment variable name: use letters, digits and _, not starting with a digit (line 5)",
				"servers.fs.env.A-B: is not a valid environment variable name: use letters, digits and _, not starting with a digit (line 6)",
				"servers.fs.env.NUL: value must not contain a NUL byte (line 7)",
				"servers.fs.env.NONE: has no value; write \"\" for an empty one (line 8)",
			},
		},
		{
			name: "workdir",
			yaml: "servers:\n  a: {command: [x], workdir: srv/tools}\n  b: {command: [x], workdir: /srv/tools}\n",
			want: []string{`servers.a.workdir: must be an absolute path (got "srv/tools") (line 2)`},
		},

		// Gateway-wide values.
		{
			name: "listen",
			yaml: "listen: 8080\nservers: {a: {command: [x]}}",
			want: []string{`listen: must be host:port, e.g. 127.0.0.1:8080 or :8080 (got "8080") (line 1)`},
		},
		{
			name: "listen named port",
			yaml: "listen: localhost:http\nservers: {a: {command: [x]}}",
			want: []string{`listen: must end in a numeric port from 0 to 65535, e.g. 127.0.0.1:8080 (got "localhost:http") (line 1)`},
		},
		{
			name: "listen port too large",
			yaml: "listen: 127.0.0.1:65536\nservers: {a: {command: [x]}}",
			want: []string{`listen: must end in a numeric port from 0 to 65535, e.g. 127.0.0.1:8080 (got "127.0.0.1:65536") (line 1)`},
		},
		{
			name: "listen bad host",
			yaml: "listen: 'local host:80'\nservers: {a: {command: [x]}}",
			want: []string{`listen: host must be an IP address or a host name, e.g. 127.0.0.1:8080 (got "local host:80") (line 1)`},
		},
		{
			name: "public_url",
			yaml: "public_url: mcp.example.com\nservers: {a: {command: [x]}}",
			want: []string{`public_url: must be an absolute URL, http(s)://host[:port], e.g. https://mcp.example.com (got "mcp.example.com") (line 1)`},
		},
		{
			name: "public_url scheme",
			yaml: "public_url: ftp://mcp.example.com\nservers: {a: {command: [x]}}",
			want: []string{`public_url: scheme must be http or https (got "ftp://mcp.example.com") (line 1)`},
		},
		{
			name: "public_url path",
			yaml: "public_url: https://example.com/mcp\nservers: {a: {command: [x]}}",
			want: []string{`public_url: must not have a path: must be an absolute URL, http(s)://host[:port], e.g. https://mcp.example.com (got "https://example.com/mcp") (line 1)`},
		},
		{
			name: "public_url query",
			yaml: "public_url: https://example.com/?a=b\nservers: {a: {command: [x]}}",
			want: []string{`public_url: must not have a query or fragment: must be an absolute URL, http(s)://host[:port], e.g. https://mcp.example.com (got "https://example.com/?a=b") (line 1)`},
		},
		{
			name: "public_url fragment",
			yaml: "public_url: 'https://example.com#x'\nservers: {a: {command: [x]}}",
			want: []string{`public_url: must not have a query or fragment: must be an absolute URL, http(s)://host[:port], e.g. https://mcp.example.com (got "https://example.com#x") (line 1)`},
		},
		{
			name: "public_url user info is not quoted",
			yaml: "public_url: https://user:pw@example.com\nservers: {a: {command: [x]}}",
			want: []string{`public_url: must not contain a user name or password (got "https://user:pw@example.com") (line 1)`},
		},
		{
			name: "allowed_hosts",
			yaml: "allowed_hosts:\n  - https://mcp.example.com\n  - mcp.example.com/mcp\n  - '*.example.com'\n  - ::1\n  - 'x:0'\n  - ''\n  - '[::1'\n  - '[fe80::1%eth0]'\n  - -bad-.example.com\n  - '[::1]:8080'\n  - 127.0.0.1:8080\nservers: {a: {command: [x]}}",
			want: []string{
				`allowed_hosts[0]: must be a host name or host:port, not a URL: drop the scheme (got "https://mcp.example.com") (line 2)`,
				`allowed_hosts[1]: must be a host name or host:port, without a path, user or spaces (got "mcp.example.com/mcp") (line 3)`,
				`allowed_hosts[2]: wildcards are not supported: list each host name (got "*.example.com") (line 4)`,
				`allowed_hosts[3]: IPv6 addresses must be in brackets, e.g. [::1] (got "::1") (line 5)`,
				`allowed_hosts[4]: port must be a number from 1 to 65535 (got "x:0") (line 6)`,
				`allowed_hosts[5]: must not be empty (got "") (line 7)`,
				`allowed_hosts[6]: IPv6 address is missing its closing "]" (got "[::1") (line 8)`,
				`allowed_hosts[7]: must be a valid IPv6 address in brackets, e.g. [::1]:8080 (got "[fe80::1%eth0]") (line 9)`,
				`allowed_hosts[8]: must be a host name or IP address, optionally with :port, e.g. mcp.example.com (got "-bad-.example.com") (line 10)`,
			},
		},
		{
			name: "allowed_origins",
			yaml: "allowed_origins:\n  - 'null'\n  - '*'\n  - https://*.example.com\n  - https://claude.ai/\n  - https://claude.ai/chat\n  - claude.ai\n  - null\n  - vscode-webview://abc\nservers: {a: {command: [x]}}",
			want: []string{
				`allowed_origins[0]: "null" cannot be allowed: it is the origin of sandboxed frames and local files, which any website can produce (got "null") (line 2)`,
				`allowed_origins[1]: "*" cannot be allowed: it would let every website call the gateway; list origins explicitly (got "*") (line 3)`,
				`allowed_origins[2]: wildcards are not supported: list each origin (got "https://*.example.com") (line 4)`,
				`allowed_origins[4]: must not have a path: must be an origin, http(s)://host[:port], e.g. https://claude.ai (got "https://claude.ai/chat") (line 6)`,
				`allowed_origins[5]: must be an origin, http(s)://host[:port], e.g. https://claude.ai (got "claude.ai") (line 7)`,
				`allowed_origins[6]: must be a string, not empty (YAML reads a bare null as no value) (line 8)`,
				`allowed_origins[7]: scheme must be http or https (got "vscode-webview://abc") (line 9)`,
			},
		},
		{
			name: "log",
			yaml: "log: {level: warning, format: JSON}\nservers: {a: {command: [x]}}",
			want: []string{
				`log.level: must be one of debug, info, warn, error (got "warning") (line 1)`,
				`log.format: must be one of json, text (got "JSON") (line 1)`,
			},
		},
		{
			name: "reload",
			yaml: "reload: inotify\nservers: {a: {command: [x]}}",
			want: []string{`reload: must be one of signal, watch (got "inotify") (line 1)`},
		},

		{
			name: "isolation",
			yaml: "servers:\n  a:\n    command: [x]\n    isolation: process\n  b:\n    command: [x]\n    mode: daemon\n    isolation: request\n",
			want: []string{
				`servers.a.isolation: must be one of session, request (got "process") (line 4)`,
				"servers.b.isolation: applies to mode: launcher only; daemon processes are shared by every client: remove it or use mode: launcher (line 8)",
			},
		},

		// Durations, sizes and numbers.
		{
			name: "duration syntax",
			yaml: "servers:\n  a:\n    command: [x]\n    timeouts:\n      startup: 30\n      idle: 1d\n      request: soon\n      kill_grace: -1s\n      max_lifetime: 0s\n",
			want: []string{
				`servers.a.timeouts.startup: must be a duration with a unit, e.g. 30s, 5m or 1h30m (got "30") (line 5)`,
				`servers.a.timeouts.idle: must be a Go duration, which has no days: use hours, e.g. 24h (got "1d") (line 6)`,
				`servers.a.timeouts.request: must be a duration such as 30s, 5m or 1h30m (got "soon") (line 7)`,
				"servers.a.timeouts.kill_grace: must be greater than 0 and at most 5m (line 8)",
				"servers.a.timeouts.max_lifetime: must be greater than 0 and at most 720h (line 9)",
			},
		},
		{
			name: "duration bounds",
			yaml: "limits:\n  sse_keepalive: 50ms\n  shutdown_timeout: 2h\nservers:\n  a:\n    command: [x]\n    queue_timeout: 11m\n    timeouts: {reclaim_idle: -1s, reclaim_unattended: 25h}\n  b:\n    command: [x]\n    queue_timeout: 0s\n    timeouts: {reclaim_idle: 0s}\n",
			want: []string{
				"limits.sse_keepalive: must be between 100ms and 10m (line 2)",
				"limits.shutdown_timeout: must be greater than 0 and at most 1h (line 3)",
				"servers.a.queue_timeout: must be between 0s and 10m (line 7)",
				"servers.a.timeouts.reclaim_idle: must be between 0s and 24h (line 8)",
				"servers.a.timeouts.reclaim_unattended: must be between 0s and 24h (line 8)",
			},
		},
		{
			name: "size syntax and bounds",
			yaml: "limits:\n  max_body_bytes: 512\n  max_message_bytes: 2GiB\nservers: {a: {command: [x]}}\n",
			want: []string{
				"limits.max_body_bytes: must be between 1KiB and 1GiB (line 2)",
				"limits.max_message_bytes: must be between 64KiB and 1GiB (line 3)",
			},
		},
		{
			name: "size units",
			yaml: "limits:\n  max_body_bytes: 4mb\n  max_message_bytes: 1.5MiB\nservers: {a: {command: [x]}}\n",
			want: []string{
				`limits.max_body_bytes: must be a size: a whole number of bytes, optionally followed by k, m, g (×1024), KiB, MiB, GiB (×1024) or kB, MB, GB (×1000), e.g. 4MiB (got "4mb") (line 2)`,
				`limits.max_message_bytes: must be a size: a whole number of bytes, optionally followed by k, m, g (×1024), KiB, MiB, GiB (×1024) or kB, MB, GB (×1000), e.g. 4MiB (got "1.5MiB") (line 3)`,
			},
		},
		{
			name: "size overflow",
			yaml: "limits: {max_body_bytes: 99999999999999999999}\nservers: {a: {command: [x]}}\n",
			want: []string{`limits.max_body_bytes: is too large (got "99999999999999999999") (line 1)`},
		},
		{
			name: "numbers",
			yaml: "limits:\n  max_processes: 0\n  max_held_messages: many\nservers:\n  a:\n    command: [x]\n    max_concurrent: 10001\n    max_processes: 1.5\n  b:\n    command: [x]\n    max_processes: 99999999999999999999999\n",
			want: []string{
				"limits.max_processes: must be between 1 and 10000 (line 2)",
				`limits.max_held_messages: must be a whole number (got "many") (line 3)`,
				"servers.a.max_concurrent: must be between 1 and 10000 (line 7)",
				`servers.a.max_processes: must be a whole number (got "1.5") (line 8)`,
				"servers.b.max_processes: must be between 1 and 10000 (line 11)",
			},
		},

		// Anchors, aliases and merge keys.
		{
			name: "merge key of a non-mapping",
			yaml: "servers:\n  a: &a {command: [x]}\n  b:\n    <<: [*a, 5]\n",
			want: []string{"servers.b.\"<<\": a merge key must refer to a mapping or a list of mappings, not a single value (line 4)"},
		},
	}
	// Keys that are planned but this version does not implement.
	for _, k := range reservedTopKeys {
		tests = append(tests, test{
			name: "reserved " + k,
			yaml: "servers: {a: {command: [x]}}\n" + k + ": {}\n",
			want: []string{k + ": not supported by this version of mcpgw yet (line 2)"},
		})
	}
	for _, k := range reservedServerKeys {
		tests = append(tests, test{
			name: "reserved servers.a." + k,
			yaml: "servers:\n  a:\n    command: [x]\n    " + k + ": 1\n",
			want: []string{"servers.a." + k + ": not supported by this version of mcpgw yet (line 4)"},
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), envOf(tt.env))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if c != nil {
				t.Errorf("Parse returned a Config with an error")
			}
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestContainerDefaults pins the container block's defaults
// (docs/config.md mirrors them).
func TestContainerDefaults(t *testing.T) {
	got := mustParse(t, "servers: {s: {runtime: container, container: {image: mcp/x}}}", nil)
	want := &Container{
		Image: "mcp/x", Network: "none", ReadOnly: true, TmpSize: 64 << 20, User: "65534:65534",
		Memory: 512 << 20, CPUs: 1, PidsLimit: 128, NoFile: 1024, Pull: "never",
	}
	if diff := cmp.Diff(want, got.Servers["s"].Container); diff != "" {
		t.Errorf("container defaults mismatch (-want +got):\n%s", diff)
	}
	if got.Servers["s"].Command != nil {
		t.Errorf("command = %q, want none (the image's CMD)", got.Servers["s"].Command)
	}
}

func TestCheckMountSource(t *testing.T) {
	tests := []struct {
		src  string
		ok   bool
		want string
	}{
		{src: "/srv/projects", ok: true},
		{src: "/home/me/work", ok: true},
		{src: "relative", want: "absolute"},
		{src: "/", want: "sensitive"},
		{src: "/etc", want: "sensitive"},
		{src: "/etc/ssl", want: "sensitive"},
		{src: "/proc/1", want: "sensitive"},
		{src: "/sys", want: "sensitive"},
		{src: "/dev", want: "sensitive"},
		{src: "/run", want: "sensitive"},
		{src: "/var/run", want: "sensitive"},
		{src: "/var/lib/docker/volumes", want: "sensitive"},
		{src: "/srv/docker.sock", want: "Docker socket"},
		{src: "/home/me/.ssh", want: "~/.ssh"},
		{src: "/home/me/.aws/x", want: "~/.aws"},
		{src: "/home/me/.docker", want: "~/.docker"},
		{src: "/home/me/.kube", want: "~/.kube"},
		{src: "/home/me/.gnupg", want: "~/.gnupg"},
		{src: "/home/me", want: "home directory"},
		{src: "/srv/other/.ssh", want: ".ssh"},
		{src: "/srv/../etc", want: "sensitive"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			err := CheckMountSource(tt.src, "/home/me")
			switch {
			case tt.ok && err != nil:
				t.Errorf("CheckMountSource(%q) = %v, want nil", tt.src, err)
			case !tt.ok && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("CheckMountSource(%q) = %v, want an error mentioning %q", tt.src, err, tt.want)
			}
		})
	}
}

func TestParseProblemsCapped(t *testing.T) {
	var b strings.Builder
	b.WriteString("servers: {a: {command: [x]}}\n")
	for i := range 150 {
		b.WriteString("unknown_" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "_" + string(rune('a'+i/26)) + ": 1\n")
	}
	got := problemsOf(t, func() error { _, err := Parse([]byte(b.String()), nil); return err }())
	if len(got) != maxProblems+1 {
		t.Fatalf("got %d problems, want %d", len(got), maxProblems+1)
	}
	if want := "… and 50 more problems"; got[maxProblems] != want {
		t.Errorf("last problem = %q, want %q", got[maxProblems], want)
	}
}

func TestParseEnv(t *testing.T) {
	env := map[string]string{
		"BIN":       "/usr/local/bin/server",
		"TOKEN":     "tok",
		"EMPTY":     "",
		"PORT":      "9000",
		"N":         "7",
		"TIMEOUT":   "90s",
		"SIZE":      "8MiB",
		"STRUCTURE": "x\nmode: daemon\n: {",
		"INDIRECT":  "${TOKEN}",
	}
	tests := []struct {
		name string
		yaml string
		want func(*Config)
	}{
		{
			name: "in strings, lists and env",
			yaml: "listen: 127.0.0.1:${PORT}\nservers:\n  a:\n    command: [\"${BIN}\", \"--token=${TOKEN}\"]\n    env: {TOKEN: \"${TOKEN}\", E: \"${EMPTY}\"}\n",
			want: func(c *Config) {
				c.Listen = "127.0.0.1:9000"
				s := c.Servers["a"]
				s.Command = []string{"/usr/local/bin/server", "--token=tok"}
				s.Env = map[string]string{"TOKEN": "tok", "E": ""}
			},
		},
		{
			name: "in numbers, durations and sizes",
			yaml: "limits: {max_body_bytes: \"${SIZE}\"}\nservers:\n  a:\n    command: [x]\n    max_concurrent: ${N}\n    queue_timeout: ${TIMEOUT}\n",
			want: func(c *Config) {
				c.Limits.MaxBodyBytes = 8 << 20
				c.Servers["a"].MaxConcurrent = 7
				c.Servers["a"].QueueTimeout = 90 * time.Second
			},
		},
		{
			name: "dollar dollar is a literal dollar",
			yaml: "servers:\n  a:\n    command: [x, \"price$$5\", \"$${TOKEN}\", \"$$$$\", \"a$$\"]\n",
			want: func(c *Config) {
				c.Servers["a"].Command = []string{"x", "price$5", "${TOKEN}", "$$", "a$"}
			},
		},
		{
			name: "a value cannot inject YAML",
			yaml: "servers:\n  a:\n    command: [x]\n    env: {S: \"${STRUCTURE}\"}\n",
			want: func(c *Config) {
				c.Servers["a"].Env = map[string]string{"S": "x\nmode: daemon\n: {"}
			},
		},
		{
			name: "an expanded value is not expanded again",
			yaml: "servers:\n  a:\n    command: [x, \"${INDIRECT}\"]\n",
			want: func(c *Config) {
				c.Servers["a"].Command = []string{"x", "${TOKEN}"}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := withServers(defaultServer("a", "x"))
			tt.want(want)
			got := mustParse(t, tt.yaml, env)
			if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseEnvProblems(t *testing.T) {
	const notSet = "environment variable GITHUB_TOKEN is not set"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "unset variable",
			yaml: "servers:\n  fs:\n    command: [x]\n    env:\n      GITHUB_TOKEN: ${GITHUB_TOKEN}\n",
			want: []string{"servers.fs.env.GITHUB_TOKEN: " + notSet + " (line 5)"},
		},
		{
			name: "unset variable in a list",
			yaml: "servers:\n  fs:\n    command: [x, \"--token=${GITHUB_TOKEN}\"]\n",
			want: []string{"servers.fs.command[1]: " + notSet + " (line 3)"},
		},
		{
			name: "unset variable in a number",
			yaml: "limits: {max_processes: \"${GITHUB_TOKEN}\"}\nservers: {a: {command: [x]}}",
			want: []string{"limits.max_processes: " + notSet + " (line 1)"},
		},
		{
			name: "keys are not expanded",
			yaml: "servers:\n  fs:\n    command: [x]\n    env: {\"${SET}\": x}\n",
			want: []string{`servers.fs.env."${SET}": is not a valid environment variable name: use letters, digits and _, not starting with a digit (line 4)`},
		},
		{
			name: "syntax",
			yaml: "servers:\n  fs:\n    command:\n      - $HOME\n      - ab$\n      - ${SET\n      - ${}\n      - ${SET:-x}\n      - ${1X}\n",
			want: []string{
				`servers.fs.command[0]: "$" must be followed by "{" or "$": write ${NAME} for an environment variable or $$ for a literal $ (line 4)`,
				`servers.fs.command[1]: "$" must be followed by "{" or "$": write ${NAME} for an environment variable or $$ for a literal $ (line 5)`,
				`servers.fs.command[2]: "${" without a closing "}"; write $$ for a literal $ (line 6)`,
				`servers.fs.command[3]: "${…}" must hold just a variable name (letters, digits and _, not starting with a digit; no defaults or other shell syntax); write $$ for a literal $ (line 7)`,
				`servers.fs.command[4]: "${…}" must hold just a variable name (letters, digits and _, not starting with a digit; no defaults or other shell syntax); write $$ for a literal $ (line 8)`,
				`servers.fs.command[5]: "${…}" must hold just a variable name (letters, digits and _, not starting with a digit; no defaults or other shell syntax); write $$ for a literal $ (line 9)`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), envOf(map[string]string{"SET": "1"}))
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSecretsNotInErrors puts a secret from the environment into every value
// that can be invalid and checks that no message contains it.
func TestSecretsNotInErrors(t *testing.T) {
	const secret = "S3cr3t-T0ken"
	env := map[string]string{
		"SECRET":     secret,
		"SECRET_NUL": secret + "\x00",
		"SECRET_URL": "https://user:" + secret + "@example.com/" + secret,
	}
	yaml := `
listen: ${SECRET}
public_url: ${SECRET_URL}
allowed_hosts: ["${SECRET}/", "${SECRET_URL}"]
allowed_origins: ["${SECRET}", "${SECRET_URL}"]
log: {level: "${SECRET}", format: "${SECRET}"}
limits:
  max_processes: ${SECRET}
  max_body_bytes: ${SECRET}
  max_message_bytes: ${SECRET}
  shutdown_timeout: ${SECRET}
  sse_keepalive: ${SECRET}
  hold_messages: ${SECRET}
  max_held_messages: ${SECRET}
  read_timeout: ${SECRET}
servers:
  fs:
    runtime: ${SECRET}
    mode: ${SECRET}
    command: ["${SECRET_NUL}", "--token=${SECRET_NUL}"]
    env: {TOKEN: "${SECRET_NUL}"}
    workdir: ${SECRET}
    timeouts:
      startup: ${SECRET}
      request: ${SECRET}
      idle: ${SECRET}
      max_lifetime: ${SECRET}
      kill_grace: ${SECRET}
      reclaim_idle: ${SECRET}
    max_concurrent: ${SECRET}
    max_processes: ${SECRET}
    queue_timeout: ${SECRET}
`
	_, err := Parse([]byte(yaml), envOf(env))
	problems := problemsOf(t, err)
	// One problem per value above: each was checked, and none shows.
	if got, want := len(problems), 31; got != want {
		t.Errorf("got %d problems, want %d:\n%s", got, want, err)
	}
	if strings.Contains(err.Error(), "S3cr3t") {
		t.Errorf("an error message contains the secret:\n%s", err)
	}

	// The same through Validate, after code changed a parsed config.
	c := mustParse(t, "servers: {fs: {command: [x]}}", nil)
	c.Listen = secret
	c.Servers["fs"].Runtime = secret
	c.Servers["fs"].Workdir = secret
	c.AllowedOrigins = []string{secret}
	err = c.Validate()
	if got, want := len(problemsOf(t, err)), 4; got != want {
		t.Errorf("Validate: got %d problems, want %d:\n%s", got, want, err)
	}
	if strings.Contains(err.Error(), "S3cr3t") {
		t.Errorf("a Validate message contains the secret:\n%s", err)
	}
}

func TestDefault(t *testing.T) {
	c, err := Default(envOf(map[string]string{"MCPGW_BIN": "/opt/mcpgw/bin/mcpgw"}))
	if err != nil {
		t.Fatalf("Default: %v", err)
	}
	want := withServers(defaultServer("demo", "/opt/mcpgw/bin/mcpgw", "demo-server"))
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("Default mismatch (-want +got):\n%s", diff)
	}
	if c.Listen != "127.0.0.1:8080" {
		t.Errorf("Default listens on %q, want loopback 127.0.0.1:8080", c.Listen)
	}

	_, err = Default(nil)
	wantProblems := []string{"servers.demo.command[0]: environment variable MCPGW_BIN is not set (line 14)"}
	if diff := cmp.Diff(wantProblems, problemsOf(t, err)); diff != "" {
		t.Errorf("Default(nil) problems mismatch (-want +got):\n%s", diff)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(tb testing.TB, name, content string) string {
		tb.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			tb.Fatal(err)
		}
		return p
	}

	t.Run("valid", func(t *testing.T) {
		p := write(t, "ok.yaml", "servers: {fs: {command: [\"${BIN}\"]}}\n")
		c, err := Load(p, envOf(map[string]string{"BIN": "/bin/fs"}))
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if diff := cmp.Diff(withServers(defaultServer("fs", "/bin/fs")), c); diff != "" {
			t.Errorf("Load mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("invalid contents", func(t *testing.T) {
		p := write(t, "bad.yaml", "listen: x\nservers: {fs: {comand: [x]}}\n")
		_, err := Load(p, nil)
		e, ok := errors.AsType[*Error](err)
		if !ok {
			t.Fatalf("Load error %T %v, want *Error", err, err)
		}
		if e.File != p {
			t.Errorf("Error.File = %q, want %q", e.File, p)
		}
		want := p + `: listen: must be host:port, e.g. 127.0.0.1:8080 or :8080 (got "x") (line 1)` + "\n" +
			p + ": servers.fs.comand: unknown key; did you mean command? (line 2)\n" +
			p + `: servers.fs.command: must name the program to run and its arguments as a list, e.g. ["mcp-server-filesystem", "/srv"] (line 2)`
		if diff := cmp.Diff(want, err.Error()); diff != "" {
			t.Errorf("Error() mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := Load(filepath.Join(dir, "missing.yaml"), nil)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Load error = %v, want fs.ErrNotExist", err)
		}
		if _, ok := errors.AsType[*Error](err); ok {
			t.Errorf("Load error is an *Error, want a file error: %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		_, err := Load(dir, nil)
		if err == nil || !strings.Contains(err.Error(), "is a directory") {
			t.Errorf("Load error = %v, want one saying it is a directory", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		big := "servers: {fs: {command: [x]}}\n" + strings.Repeat("#", maxFileBytes)
		_, err := Load(write(t, "big.yaml", big), nil)
		if err == nil || !strings.Contains(err.Error(), "larger than 1MiB") {
			t.Errorf("Load error = %v, want one saying the file is larger than 1MiB", err)
		}
	})
	t.Run("largest allowed", func(t *testing.T) {
		head := "servers: {fs: {command: [x]}}\n#"
		p := write(t, "max.yaml", head+strings.Repeat("#", maxFileBytes-len(head)))
		if _, err := Load(p, nil); err != nil {
			t.Errorf("Load of a file of exactly 1MiB: %v", err)
		}
	})
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{name: "unchanged", change: func(*Config) {}},
		{
			name:   "listen override",
			change: func(c *Config) { c.Listen = "localhost" },
			want:   []string{"listen: must be host:port, e.g. 127.0.0.1:8080 or :8080"},
		},
		{
			name: "not canonical",
			change: func(c *Config) {
				c.AllowedHosts = []string{"MCP.example.com"}
				c.AllowedOrigins = []string{"https://claude.ai/"}
				c.PublicURL = "https://example.com:443"
			},
			want: []string{
				"public_url: is not in canonical form: lower-case, without a trailing / or a default port",
				"allowed_hosts[0]: is not in canonical form: lower-case, without a trailing / or a default port",
				"allowed_origins[0]: is not in canonical form: lower-case, without a trailing / or a default port",
			},
		},
		{
			name: "servers built by code",
			change: func(c *Config) {
				c.Servers["nil"] = nil
				c.Servers["other"] = defaultServer("renamed", "x")
			},
			want: []string{
				"servers.nil: has no settings",
				"servers.other: the server's Name field does not match its key",
			},
		},
		{
			name:   "no servers",
			change: func(c *Config) { clear(c.Servers) },
			want:   []string{`servers: at least one server is required, e.g. servers: {fs: {command: ["mcp-server-filesystem", "/srv"]}}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, fullYAML, map[string]string{"GITHUB_TOKEN": "x", "CI_TOKEN": ciToken})
			tt.change(c)
			err := c.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if diff := cmp.Diff(tt.want, problemsOf(t, err)); diff != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if err := (*Config)(nil).Validate(); err == nil {
		t.Error("Validate of a nil Config returned nil")
	}
}

func TestAliasesAndMergeKeys(t *testing.T) {
	t.Run("merge", func(t *testing.T) {
		got := mustParse(t, `
servers:
  base: &base
    command: [x]
    env: &env {A: "1"}
    timeouts: {request: 5m}
  other:
    <<: *base
    command: [y]
    env:
      <<: *env
      B: "2"
  third:
    <<: [{max_concurrent: 3}, *base]
    max_processes: 1
`, nil)
		base := defaultServer("base", "x")
		base.Env = map[string]string{"A": "1"}
		base.Timeouts.Request = 5 * time.Minute
		other := defaultServer("other", "y")
		other.Env = map[string]string{"A": "1", "B": "2"}
		other.Timeouts.Request = 5 * time.Minute
		third := defaultServer("third", "x")
		third.Env = map[string]string{"A": "1"}
		third.Timeouts.Request = 5 * time.Minute
		third.MaxConcurrent = 3
		third.MaxProcesses = 1
		if diff := cmp.Diff(withServers(base, other, third), got); diff != "" {
			t.Errorf("Parse mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("merge bomb", func(t *testing.T) {
		// Server sN's env merges sN-1's twice: 2^15 keys in s15, which
		// forty more servers then reuse.
		y := "servers:\n  s0: {command: [x], env: &e0 {A: x}}\n"
		for i := 1; i <= 15; i++ {
			y += fmt.Sprintf("  s%d: {command: [x], env: &e%d {<<: [*e%d, *e%d]}}\n", i, i, i-1, i-1)
		}
		for i := range 40 {
			y += fmt.Sprintf("  t%d: {command: [x], env: *e15}\n", i)
		}
		_, err := Parse([]byte(y), nil)
		want := []string{"the configuration expands to more than 1048576 keys and list items (through YAML aliases?); simplify it"}
		if diff := cmp.Diff(want, problemsOf(t, err)); diff != "" {
			t.Errorf("problems mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("self merge", func(t *testing.T) {
		_, err := Parse([]byte("servers:\n  a: &a\n    command: [x]\n    <<: [*a, *a]\n"), nil)
		want := []string{`servers.a."<<": merge keys are nested more than 16 deep (line 4)`}
		if diff := cmp.Diff(want, problemsOf(t, err)); diff != "" {
			t.Errorf("problems mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("alias cycle", func(t *testing.T) {
		_, err := Parse([]byte("servers:\n  a: &a {command: [x], env: {E: *a}}\n"), nil)
		want := []string{"servers.a.env.E: must be a string, not a mapping (line 2)"}
		if diff := cmp.Diff(want, problemsOf(t, err)); diff != "" {
			t.Errorf("problems mismatch (-want +got):\n%s", diff)
		}
	})
}

// TestDocsExamples parses every YAML example in docs/config.md, so that the
// reference cannot drift from the parser. Fragments without servers get one.
func TestDocsExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	// The workspace examples name ${PROJECTS_DIR}: a real directory, since
	// workspaces are checked against the file system.
	projects := t.TempDir()
	if err := os.Mkdir(projects+"/book-b", 0o755); err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{"MCPGW_BIN": "/usr/bin/mcpgw", "GITHUB_TOKEN": "x",
		"MCPGW_CI_TOKEN": ciToken, "MCPGW_LAPTOP_TOKEN": ciToken, "PROJECTS_DIR": projects, "GOOGLE_SECRET": "s",
		"MCPGW_CLUSTER_KEY": "0123456789abcdef0123456789abcdef", "REDIS_URL": "redis://redis:6379/0"})
	blocks := strings.Split(string(doc), "```yaml\n")[1:]
	if len(blocks) < 5 {
		t.Fatalf("found %d YAML examples in docs/config.md, want at least 5", len(blocks))
	}
	for i, b := range blocks {
		y, _, ok := strings.Cut(b, "```")
		if !ok {
			t.Fatalf("example %d is not closed", i)
		}
		if !strings.Contains(y, "servers:") {
			y += "servers: {doc: {command: [x]}}\n"
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			if _, err := Parse([]byte(y), env); err != nil {
				t.Errorf("example:\n%s\nParse: %v", y, err)
			}
		})
	}
}
