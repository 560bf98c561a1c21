// Package importer converts the MCP server lists of MCP clients into an
// mcpgw configuration: the "mcpServers" JSON of Claude Desktop
// (claude_desktop_config.json), Claude Code (.mcp.json), Cursor
// (.cursor/mcp.json) and the tools that copied that format, and the
// "servers" JSON of VS Code (.vscode/mcp.json, with its inputs and JSON
// comments).
//
// The result is YAML text meant for a person to review, not a Config: it
// carries comments that say what was renamed, what could not be imported
// and what to check for each server (its sandbox, its files). Its
// invariants:
//
//   - a stdio server becomes a native server whose command is the source's
//     command and args as one argv, with its env; "docker run" commands
//     become container servers;
//   - ${VAR} references stay references, in mcpgw's syntax; a literal
//     value that looks like a secret is never written: it becomes a
//     ${NAME} reference with a comment saying to export NAME;
//   - remote (url, http, sse) servers are not imported: mcpgw publishes
//     stdio servers; each is reported;
//   - every server that is written passes mcpgw's validation once its
//     variables are set (a server that would not is written commented out,
//     with the reason).
package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// MaxFileBytes bounds the file Convert reads: these files are a few KiB.
const MaxFileBytes = 1 << 20

// Options say where the data came from.
type Options struct {
	// Path is the file's path as the person gave it ("" for standard
	// input). It names the source tool, and for a project file
	// (.vscode/mcp.json, .cursor/mcp.json, .mcp.json) gives the project
	// directory that ${workspaceFolder} means.
	Path string
	// ReadFile reads an envFile named by a server, only to learn the
	// names of its variables; nil: os.ReadFile. Values are never kept.
	ReadFile func(string) ([]byte, error)
}

// Result is a converted file.
type Result struct {
	// YAML is the mcpgw configuration, with review comments.
	YAML []byte
	// Notes are one line each about servers not imported, values moved
	// to the environment and other things the person must know.
	Notes []string
	// Variables are the environment variables the YAML references, in
	// order: the gateway needs each of them set.
	Variables []string
	// Servers are the names of the servers imported.
	Servers []string
	// Tool names the source, e.g. "Claude Desktop".
	Tool string
}

// converter holds the state of one conversion.
type converter struct {
	doc        []byte
	path       string
	project    string // the project directory, when the file is a project's
	readFile   func(string) ([]byte, error)
	inputs     map[string]vscodeInput
	inputNames map[string]string
	// secrets maps a variable name chosen for a literal secret to the
	// digest-free identity of the value it replaces: two servers that
	// held different values under one name get two variables.
	secrets map[string]string
	names   map[string]bool // server names used so far
	vars    []string
	notes   []string
	out     bytes.Buffer
}

// vscodeInput is one entry of VS Code's "inputs".
type vscodeInput struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Description string `json:"description"`
	Password    bool   `json:"password"`
}

// Convert reads data, a client's MCP server configuration, and returns the
// mcpgw configuration for its servers. An error means that data is not
// such a file, or that it holds no server mcpgw can publish.
func Convert(data []byte, opts *Options) (*Result, error) {
	if opts == nil {
		opts = &Options{}
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("the file is larger than 1 MiB; an MCP client's configuration is a few KiB, is this the right file?")
	}
	doc, err := stripJSONC(data)
	if err != nil {
		return nil, err
	}
	var top any
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, jsonError(doc, err)
	}
	if _, ok := top.(map[string]any); !ok {
		return nil, errors.New(`the file must hold a JSON object with "mcpServers" (Claude Desktop, Claude Code, Cursor) or "servers" (VS Code)`)
	}
	c := &converter{
		doc:        doc,
		path:       opts.Path,
		readFile:   opts.ReadFile,
		inputs:     map[string]vscodeInput{},
		inputNames: map[string]string{},
		secrets:    map[string]string{},
		names:      map[string]bool{},
	}
	if c.readFile == nil {
		c.readFile = os.ReadFile
	}
	topMembers, dups, err := objectMembers(doc, doc[firstByte(doc):], firstByte(doc))
	if err != nil {
		return nil, err
	}
	for _, d := range dups {
		c.note("the key %q appears twice at the top of the file; the last one is used", d)
	}
	servers, tool, err := c.locate(topMembers)
	if err != nil {
		return nil, err
	}
	c.project = projectDir(opts.Path, tool)
	res := &Result{Tool: tool}
	c.header(tool)
	members, dups, err := objectMembers(doc, servers.value, servers.off)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", servers.key, err)
	}
	for _, d := range dups {
		c.note("the server %q appears twice; the last one is used", d)
	}
	for _, m := range members {
		if name, ok := c.server(m); ok {
			res.Servers = append(res.Servers, name)
		}
	}
	if len(res.Servers) == 0 {
		if len(members) == 0 {
			return nil, fmt.Errorf("%q lists no server", servers.key)
		}
		return nil, fmt.Errorf("none of its %d server(s) can be published by mcpgw: %s", len(members), strings.Join(c.notes, "; "))
	}
	res.YAML = c.finish()
	res.Notes = c.notes
	res.Variables = c.vars
	return res, nil
}

func firstByte(doc []byte) int {
	return len(doc) - len(bytes.TrimLeft(doc, " \t\r\n"))
}

// locate finds the servers object and names the tool the file is from.
func (c *converter) locate(top []member) (member, string, error) {
	byKey := map[string]member{}
	for _, m := range top {
		byKey[m.key] = m
	}
	base := filepath.Base(c.path)
	parent := filepath.Base(filepath.Dir(c.path))
	if in, ok := byKey["inputs"]; ok {
		var inputs []vscodeInput
		if err := json.Unmarshal(in.value, &inputs); err != nil {
			return member{}, "", fmt.Errorf(`line %d: "inputs" must be a list of {"type", "id", "description"}: %v`, in.line, err)
		}
		for _, i := range inputs {
			c.inputs[i.ID] = i
		}
	}
	if m, ok := byKey["mcpServers"]; ok {
		if _, both := byKey["servers"]; both {
			c.note(`the file has both "mcpServers" and "servers"; "mcpServers" is imported`)
		}
		if _, ok := byKey["projects"]; ok && base == ".claude.json" {
			c.note(`the per-project servers under "projects" are not imported: import each project's .mcp.json`)
		}
		tool := map[string]string{
			"claude_desktop_config.json": "Claude Desktop",
			".mcp.json":                  "Claude Code",
			".claude.json":               "Claude Code",
			"cline_mcp_settings.json":    "Cline",
			"mcp_config.json":            "Windsurf",
		}[base]
		switch {
		case tool != "":
		case base == "mcp.json" && parent == ".cursor":
			tool = "Cursor"
		case base == "mcp.json":
			tool = "Cursor" // Cursor's file name; others use it too
		default:
			tool = "an mcpServers file"
		}
		return m, tool, nil
	}
	if m, ok := byKey["servers"]; ok {
		return m, "VS Code", nil
	}
	if m, ok := byKey["mcp"]; ok {
		inner, _, err := objectMembers(c.doc, m.value, m.off)
		if err == nil {
			for _, s := range inner {
				if s.key == "servers" {
					return s, "VS Code settings", nil
				}
			}
		}
	}
	return member{}, "", errors.New(`the file has neither "mcpServers" (Claude Desktop, Claude Code, Cursor) nor "servers" (VS Code .vscode/mcp.json)`)
}

// projectDir is the directory that ${workspaceFolder} means for a project
// file at path: the parent of .vscode/ or .cursor/, or the directory of a
// Claude Code .mcp.json. "" when the file is not a project's.
func projectDir(path, tool string) string {
	if path == "" {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	dir := filepath.Dir(abs)
	switch {
	case filepath.Base(abs) == ".mcp.json":
		return dir
	case filepath.Base(dir) == ".vscode" || filepath.Base(dir) == ".cursor":
		home, _ := os.UserHomeDir()
		if p := filepath.Dir(dir); p != home || tool == "VS Code" {
			return p
		}
	}
	return ""
}

// note records a line for the person (stderr), words as in format.
func (c *converter) note(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

// useVar records that the YAML references name.
func (c *converter) useVar(name string) {
	if !slices.Contains(c.vars, name) {
		c.vars = append(c.vars, name)
	}
}

// serverName turns a source name into an mcpgw server name (it matches
// config.ServerNamePattern): lower case, runs of other characters as one
// "-", no "-" or "_" at either end, at most 64 characters, unique.
func (c *converter) serverName(src string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(src) {
		switch {
		case (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_':
			b.WriteRune(r)
		case r == '-' || b.Len() > 0:
			if !strings.HasSuffix(b.String(), "-") {
				b.WriteByte('-')
			}
		}
	}
	name := strings.Trim(b.String(), "-_")
	if len(name) > 60 {
		name = strings.TrimRight(name[:60], "-_")
	}
	if name == "" {
		name = "server"
	}
	unique := name
	for i := 2; c.names[unique]; i++ {
		unique = fmt.Sprintf("%s-%d", name, i)
	}
	c.names[unique] = true
	return unique
}
