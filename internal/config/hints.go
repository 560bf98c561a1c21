package config

import (
	"bytes"
	"strconv"
	"strings"
)

// Hints for the keys people bring from other tools. The MCP clients'
// configuration files (Claude Desktop's claude_desktop_config.json,
// Claude Code's .mcp.json, Cursor's mcp.json, VS Code's .vscode/mcp.json,
// Cline, Windsurf) and Docker Compose spell a server differently: command
// plus args, env or environment, cwd, type and url, timeouts in
// milliseconds. An unknown key that one of them uses gets a message that
// shows how mcpgw writes it, rather than a bare "unknown key".
//
// Each table maps a key, lower-cased and without "_" and "-" (so that
// startupTimeout, startup_timeout and STARTUP-TIMEOUT are one entry), to
// the text that follows "unknown key".

// importHint points at the command that converts a whole file.
const importHint = `"mcpgw import FILE" converts a Claude Desktop, Claude Code, Cursor or VS Code file`

var topKeyHints = map[string]string{
	"mcpservers": "; did you mean servers:? mcpgw's servers mapping holds each server's command as one list; " + importHint,
	"mcp":        "; did you mean servers:? " + importHint,
	"inputs":     `; mcpgw does not prompt for values: write "${NAME}" where a secret goes and export NAME in the gateway's environment (` + importHint + `)`,
	"services":   "; did you mean servers:? (mcpgw is not Docker Compose: each server is a stdio command or an image under servers:)",
	"version":    "; an mcpgw config has no version key: remove it",
	"port":       "; did you mean listen:? write host:port, e.g. listen: 127.0.0.1:8080",
	"host":       "; did you mean listen:? write host:port, e.g. listen: 127.0.0.1:8080 (allowed_hosts lists the Host headers accepted)",
	"address":    "; did you mean listen:? write host:port, e.g. listen: 127.0.0.1:8080",
	"addr":       "; did you mean listen:? write host:port, e.g. listen: 127.0.0.1:8080",
	"bind":       "; did you mean listen:? write host:port, e.g. listen: 127.0.0.1:8080",
	"loglevel":   "; did you mean log: {level: debug}?",
	"logging":    "; did you mean log: {level: info, format: json}?",
	"debug":      "; did you mean log: {level: debug}?",
	"tokens":     `; did you mean auth: {tokens: [{name: laptop, sha256: "…"}]}? "mcpgw token NAME" prints such a line`,
	"token":      `; did you mean auth: {tokens: [{name: laptop, sha256: "…"}]}? "mcpgw token NAME" prints such a line`,
	"apikey":     `; did you mean auth: {tokens: [{name: laptop, sha256: "…"}]}? "mcpgw token NAME" prints such a line`,
	"cors":       `; did you mean allowed_origins: ["https://claude.ai"]?`,
	"origins":    `; did you mean allowed_origins: ["https://claude.ai"]?`,
	"hosts":      "; did you mean allowed_hosts: [mcp.example.com]?",
	"timeout":    "; timeouts are set per server: servers.NAME.timeouts: {startup: 30s, request: 60s}",
	"timeouts":   "; timeouts are set per server: servers.NAME.timeouts: {startup: 30s, request: 60s}",
	"env":        "; env is set per server: servers.NAME.env: {NAME: value}",
}

const (
	argvHint      = `; mcpgw takes the whole argv in command: ["npx", "-y", …]: put the program first and its arguments after it in that one list`
	envHint       = `; did you mean env? mcpgw passes variables as env: {NAME: value}, e.g. env: {GITHUB_TOKEN: "${GITHUB_TOKEN}"}`
	remoteHint    = "; mcpgw publishes stdio servers and does not proxy remote (url, http, sse) servers: remove this server, or give the command that runs it over stdio"
	workdirHint   = "; did you mean workdir? (an absolute path; workspaces: gives the server access to directories)"
	mountHint     = "; did you mean workspaces? name the host directory at the top level (workspaces: {projects: /srv/projects}) and list it here: workspaces: [{name: projects, mode: rw}]"
	containerHint = "; did you mean container: {%s: …}? with runtime: container, it is a setting of the container block"
)

var serverKeyHints = map[string]string{
	"args":                 argvHint,
	"arguments":            argvHint,
	"argv":                 argvHint,
	"environment":          envHint,
	"enviroment":           envHint,
	"environ":              envHint,
	"envs":                 envHint,
	"envvars":              envHint,
	"environmentvariables": envHint,
	"envfile":              `; mcpgw reads no env files: list each variable under env: as NAME: "${NAME}" and export it in the gateway's environment`,
	"startuptimeout":       "; did you mean timeouts: {startup: 30s}? (durations carry their unit)",
	"inittimeout":          "; did you mean timeouts: {startup: 30s}? (durations carry their unit)",
	"initializetimeout":    "; did you mean timeouts: {startup: 30s}? (durations carry their unit)",
	"timeout":              "; did you mean timeouts: {request: 60s}? (timeouts also holds startup, idle, max_lifetime and kill_grace; durations carry their unit)",
	"requesttimeout":       "; did you mean timeouts: {request: 60s}? (durations carry their unit)",
	"cwd":                  workdirHint,
	"workingdirectory":     workdirHint,
	"workingdir":           workdirHint,
	"dir":                  workdirHint,
	"directory":            workdirHint,
	"type":                 "; mcpgw serves stdio servers only, so there is no type: remove it (runtime: native or container says how the server runs)",
	"transport":            "; mcpgw serves stdio servers only, so there is no transport: remove it (every server is published over Streamable HTTP and SSE at /mcp/NAME)",
	"url":                  remoteHint,
	"serverurl":            remoteHint,
	"httpurl":              remoteHint,
	"endpoint":             remoteHint,
	"headers":              remoteHint,
	"disabled":             "; mcpgw has no on/off switch per server: remove the server, or comment it out",
	"enabled":              "; mcpgw has no on/off switch per server: remove the server, or comment it out",
	"autoapprove":          "; tool approval belongs to the MCP client; mcpgw decides who may use a server with allow:",
	"alwaysallow":          "; tool approval belongs to the MCP client; mcpgw decides who may use a server with allow:",
	"image":                "; did you mean runtime: container with container: {image: …}?",
	"volumes":              mountHint,
	"volume":               mountHint,
	"mounts":               mountHint,
	"mount":                mountHint,
	"user":                 strings.Replace(containerHint, "%s", "user", 1),
	"network":              strings.Replace(containerHint, "%s", "network", 1),
	"memory":               strings.Replace(containerHint, "%s", "memory", 1),
	"cpus":                 strings.Replace(containerHint, "%s", "cpus", 1),
	"port":                 "; every server is served by the gateway's one listener at /mcp/NAME: remove it (listen: at the top level sets the address)",
	"name":                 "; a server's name is its key under servers: (it is the URL path /mcp/NAME): remove it",
	"restart":              "; mcpgw restarts daemon processes itself (mode: daemon) and starts launcher processes per client session: remove it",
}

var containerKeyHints = map[string]string{
	"env":         "; env belongs to the server (servers.NAME.env), not to its container block",
	"environment": "; env belongs to the server (servers.NAME.env: {NAME: value}), not to its container block",
	"command":     "; command belongs to the server (servers.NAME.command replaces the image's CMD), not to its container block",
	"args":        "; the server's command: replaces the image's CMD (its ENTRYPOINT stays); write it at servers.NAME.command",
	"entrypoint":  "; the image's ENTRYPOINT is kept; servers.NAME.command replaces its CMD",
	"volumes":     mountHint,
	"mounts":      mountHint,
	"ports":       "; a server's container needs no ports: it speaks MCP over stdio",
	"privileged":  "; containers never run privileged; cap_add adds back a capability from a short list",
	"mem":         "; did you mean memory?",
	"memlimit":    "; did you mean memory?",
	"memorylimit": "; did you mean memory?",
}

var timeoutKeyHints = map[string]string{
	"init":           "; did you mean startup?",
	"initialize":     "; did you mean startup?",
	"start":          "; did you mean startup?",
	"startuptimeout": "; did you mean startup?",
	"call":           "; did you mean request?",
	"tool":           "; did you mean request?",
	"toolcall":       "; did you mean request?",
	"grace":          "; did you mean kill_grace?",
	"stop":           "; did you mean kill_grace?",
	"stoptimeout":    "; did you mean kill_grace?",
	"lifetime":       "; did you mean max_lifetime?",
	"maxage":         "; did you mean max_lifetime?",
	"ttl":            "; did you mean max_lifetime?",
}

var mountKeyHints = map[string]string{
	"path":     "; a mount names a top-level workspace ({name: NAME}); the host directory is set under workspaces: at the top level",
	"source":   "; a mount names a top-level workspace ({name: NAME}); the host directory is set under workspaces: at the top level",
	"host":     "; a mount names a top-level workspace ({name: NAME}); the host directory is set under workspaces: at the top level",
	"hostpath": "; a mount names a top-level workspace ({name: NAME}); the host directory is set under workspaces: at the top level",
	"readonly": "; did you mean mode: ro? (or mode: rw)",
}

var tokenKeyHints = map[string]string{
	"token":  `; a token is never written in the file: give its digest (sha256: "…", which "mcpgw token NAME" prints) or the variable that holds it (value_env: NAME)`,
	"value":  `; a token is never written in the file: give its digest (sha256: "…", which "mcpgw token NAME" prints) or the variable that holds it (value_env: NAME)`,
	"secret": `; a token is never written in the file: give its digest (sha256: "…", which "mcpgw token NAME" prints) or the variable that holds it (value_env: NAME)`,
}

// keyHint returns the hint for an unknown key in the mapping at path, or
// "" when the key is not one that other tools use there.
func keyHint(path, key string) string {
	var table map[string]string
	switch mappingKind(path) {
	case "top":
		table = topKeyHints
	case "server":
		table = serverKeyHints
	case "container":
		table = containerKeyHints
	case "timeouts":
		table = timeoutKeyHints
	case "mount":
		table = mountKeyHints
	case "token":
		table = tokenKeyHints
	default:
		return ""
	}
	return table[normKey(key)]
}

// normKey lower-cases key and drops "_" and "-".
func normKey(key string) string {
	return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(key))
}

// mappingKind names the mapping that the key path path addresses: "top",
// "server", "container", "timeouts", "mount", "token", or "" for others.
func mappingKind(path string) string {
	if path == "" {
		return "top"
	}
	if strings.HasPrefix(path, "auth.tokens[") && strings.HasSuffix(path, "]") && !strings.Contains(path[len("auth.tokens["):], ".") {
		return "token"
	}
	rest, ok := strings.CutPrefix(path, "servers.")
	if !ok || rest == "" {
		return ""
	}
	// The server's name: a plain word, or quoted as joinKey quotes it.
	if rest[0] == '"' {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return ""
		}
		rest = rest[len(q):]
	} else if i := strings.IndexAny(rest, ".["); i >= 0 {
		rest = rest[i:]
	} else {
		rest = ""
	}
	switch {
	case rest == "":
		return "server"
	case rest == ".container":
		return "container"
	case rest == ".timeouts":
		return "timeouts"
	case strings.HasPrefix(rest, ".workspaces[") && strings.HasSuffix(rest, "]") && !strings.Contains(rest[1:], "."):
		return "mount"
	}
	return ""
}

// tabProblem explains a YAML syntax error caused by a tab in indentation,
// which YAML forbids and which editors make invisible. errLine is the line
// the parser reported (0 if none). It returns the line with the tab and
// the message, or ok false when neither that line nor the one above it
// is indented with a tab.
func tabProblem(data []byte, errLine int) (line int, msg string, ok bool) {
	lines := bytes.Split(data, []byte("\n"))
	at := func(i int) (col int, found bool) {
		l := lines[i]
		for j, b := range l {
			switch b {
			case ' ':
				continue
			case '\t':
				return j + 1, true
			}
			return 0, false
		}
		return 0, false
	}
	report := func(i, col int) (int, string, bool) {
		return i + 1, "invalid YAML: this line is indented with a tab (column " + strconv.Itoa(col) + "); YAML indentation must be spaces: replace the tabs with spaces", true
	}
	// The line the parser stopped at, or the one above it (a tab that
	// ends a mapping is found on the next line).
	if errLine <= 0 || errLine > len(lines) {
		return 0, "", false
	}
	for i := errLine - 1; i >= 0 && i >= errLine-2; i-- {
		if col, found := at(i); found {
			return report(i, col)
		}
	}
	return 0, "", false
}
