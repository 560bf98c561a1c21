package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/mcpgw/mcpgw/internal/config"
)

// action runs a command once its flags are parsed; args are the arguments
// left after the flags (at most the command's maxArgs).
type action func(ctx context.Context, args []string) error

// command is one subcommand of mcpgw: what the overview and its help say
// about it, and how it runs.
type command struct {
	name string
	// synopsis follows the name in the usage line: "[--config FILE]".
	synopsis string
	// summary is its line in the overview.
	summary string
	// about is the text of its help between the usage line and the flags.
	about string
	// maxArgs is how many arguments it takes after its flags.
	maxArgs int
	// argsHint says what to write instead of a surplus argument.
	argsHint func(extra []string) string
	// define declares the command's flags on fs and returns the action
	// that reads them; it runs for help too, so it must not act.
	define func(fs *flag.FlagSet, c *cli) action
}

// commands are listed in this order by "mcpgw help".
var commands = []*command{
	serveCommand,
	reloadCommand,
	checkCommand,
	importCommand,
	tokenCommand,
	oauthCommand,
	statusCommand,
	toolsCommand,
	versionCommand,
	demoServerCommand,
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// suggestCommand returns ` (did you mean "serve"?)` for a near miss of a
// command's name, or "".
func suggestCommand(name string) string {
	best, bestDist := "", 3
	for _, c := range commands {
		if d := config.EditDistance(strings.ToLower(name), c.name); d < bestDist {
			best, bestDist = c.name, d
		}
	}
	if best == "" || len(name) > 32 {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// flagSet returns an empty flag set for the command that reports errors
// to its caller instead of printing them: run reports each error once.
func (c *command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func (c *command) extraArgs(extra []string) error {
	hint := ""
	if c.argsHint != nil {
		hint = c.argsHint(extra)
	}
	return fmt.Errorf("%s: unexpected argument %q%s", c.name, extra[0], hint)
}

// writeHelp prints the command's help: usage line, description, flags.
func (c *command) writeHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: mcpgw %s", c.name)
	if c.synopsis != "" {
		fmt.Fprintf(w, " %s", c.synopsis)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(c.about))
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		head := "--" + f.Name
		if arg != "" {
			head += " " + strings.ToUpper(arg)
		}
		fmt.Fprintf(w, "  %-16s %s\n", head, usage)
	})
}

// writeOverview prints "mcpgw help": every command and its summary.
func writeOverview(w io.Writer) {
	fmt.Fprintf(w, "mcpgw publishes stdio MCP servers to remote MCP clients over Streamable HTTP.\n\nUsage:\n")
	for _, c := range commands {
		use := c.name
		if c.synopsis != "" {
			use += " " + c.synopsis
		}
		fmt.Fprintf(w, "  mcpgw %-40s %s\n", use, c.summary)
	}
	fmt.Fprintf(w, "  mcpgw %-40s %s\n", "help [COMMAND]", "this overview, or a command's flags")
	fmt.Fprintf(w, "\nExit codes: 0 ok, 1 runtime failure, 2 usage or config error.\nThe configuration is described in docs/config.md.\n")
}
