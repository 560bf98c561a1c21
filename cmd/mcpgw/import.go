package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/mcpgw/mcpgw/internal/importer"
)

var importCommand = &command{
	name:     "import",
	synopsis: "FILE",
	summary:  "convert an MCP client's server list into an mcpgw config (YAML on stdout)",
	about: `
Reads the MCP servers of a Claude Desktop (claude_desktop_config.json),
Claude Code (.mcp.json), Cursor (mcp.json) or VS Code (.vscode/mcp.json)
configuration and prints an mcpgw configuration for them on stdout; FILE "-"
is standard input. Notes (servers not imported, secrets moved to
environment variables) go to stderr.

Stdio servers become native servers with their command and args as one argv
and their env; "docker run" commands become container servers. ${VAR}
references stay references; a literal value that looks like a secret is not
copied: it becomes a ${NAME} reference to export. Remote (url, http, sse)
servers are not imported: mcpgw publishes stdio servers. Each server gets
comments on what to review (its sandbox, its files):

  mcpgw import ~/.config/Claude/claude_desktop_config.json > mcpgw.yaml
  mcpgw check --config mcpgw.yaml`,
	maxArgs: 1,
	define: func(_ *flag.FlagSet, c *cli) action {
		return func(_ context.Context, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New(`import: no file given; run "mcpgw import FILE", e.g. mcpgw import .vscode/mcp.json > mcpgw.yaml`)}
			}
			return runImport(c, args[0])
		}
	},
}

func runImport(c *cli, path string) error {
	data, err := readImportFile(c, path)
	if err != nil {
		return usageError{err}
	}
	opts := &importer.Options{Path: path}
	if path == "-" {
		opts.Path = ""
	}
	res, err := importer.Convert(data, opts)
	if err != nil {
		return usageError{fmt.Errorf("import %s: %w", path, err)}
	}
	if _, err := c.stdout.Write(res.YAML); err != nil {
		return fmt.Errorf("import: writing the configuration: %w", err)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(c.stderr, "mcpgw import: %s\n", n)
	}
	summary := fmt.Sprintf("mcpgw import: %d server(s) from %s: %s", len(res.Servers), res.Tool, strings.Join(res.Servers, ", "))
	if len(res.Variables) > 0 {
		summary += "; export " + strings.Join(res.Variables, ", ") + " before mcpgw serve"
	}
	fmt.Fprintln(c.stderr, summary+`; read its "review:" comments, then run mcpgw check --config FILE`)
	return nil
}

// readImportFile reads path ("-": standard input), at most
// importer.MaxFileBytes and one more byte so that Convert sees a file
// that is too large.
func readImportFile(c *cli, path string) ([]byte, error) {
	var r io.Reader = c.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			if pe, ok := errors.AsType[*fs.PathError](err); ok {
				switch {
				case errors.Is(pe.Err, fs.ErrNotExist):
					return nil, fmt.Errorf("import: %s does not exist; give the path of an MCP client's configuration, e.g. ~/.config/Claude/claude_desktop_config.json or .vscode/mcp.json", path)
				case errors.Is(pe.Err, fs.ErrPermission):
					return nil, fmt.Errorf("import: %s cannot be read: permission denied", path)
				}
			}
			return nil, fmt.Errorf("import: %w", err)
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("import: %s is a directory; give the configuration file in it (mcp.json, .mcp.json or claude_desktop_config.json)", path)
		}
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, importer.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("import: reading %s: %w", path, err)
	}
	return data, nil
}
