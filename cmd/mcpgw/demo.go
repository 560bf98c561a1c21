package main

import (
	"context"
	"flag"
	"io"

	"github.com/mcpgw/mcpgw/internal/demo"
)

var demoServerCommand = &command{
	name:    "demo-server",
	summary: "the built-in stdio MCP demo server",
	about: `
Runs the built-in demo MCP server on stdin and stdout (newline-delimited
JSON-RPC), which the built-in configuration publishes as /mcp/demo. Its
tools: echo, now, list_files, read_file (confined to its working directory)
and sleep (with progress notifications).`,
	define: func(_ *flag.FlagSet, c *cli) action {
		return func(ctx context.Context, _ []string) error {
			return demo.Run(ctx, io.NopCloser(c.stdin), nopWriteCloser{c.stdout}, versionString())
		}
	},
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
