// Command mcpgw publishes stdio MCP servers to remote MCP clients over
// Streamable HTTP. See README.md.
//
// main only adapts the program to the operating system: run is the whole
// program, it returns an error instead of printing or exiting, and main
// prints that error once (report) and exits with its code (exitCode).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mcpgw/mcpgw/internal/sandbox"
)

func main() {
	// The gateway re-executes itself as the shim that confines a native
	// server with Landlock before exec'ing it; that is not a command.
	if sandbox.Requested() {
		os.Exit(sandbox.Main())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	report(os.Stderr, err)
	os.Exit(exitCode(err))
}

// cli is what a command may use of the process: its standard streams and
// its environment.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)
}

// run is the whole program. It prints nothing about its own failure: the
// error it returns is for report.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, lookupEnv: lookupEnv}
	if len(args) == 0 {
		writeOverview(stderr)
		return usageError{errors.New(`no command given; "mcpgw serve" runs the gateway, "mcpgw help" lists the commands`)}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "--help", "-help", "-h":
		return runHelp(rest, stdout)
	case "--version", "-version", "-v":
		name = "version"
	}
	cmd := lookupCommand(name)
	if cmd == nil {
		return usageError{fmt.Errorf(`unknown command %q%s; "mcpgw help" lists the commands`, name, suggestCommand(name))}
	}
	fs := cmd.flagSet()
	action := cmd.define(fs, c)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			cmd.writeHelp(stdout, fs)
			return nil
		}
		return usageError{fmt.Errorf(`%s: %v; "mcpgw %s --help" lists its flags`, cmd.name, err, cmd.name)}
	}
	if fs.NArg() > cmd.maxArgs {
		return usageError{cmd.extraArgs(fs.Args()[cmd.maxArgs:])}
	}
	return action(ctx, fs.Args())
}

// runHelp is "mcpgw help [COMMAND]": the overview, or one command's help,
// on stdout.
func runHelp(args []string, stdout io.Writer) error {
	switch len(args) {
	case 0:
		writeOverview(stdout)
		return nil
	case 1:
		cmd := lookupCommand(args[0])
		if cmd == nil {
			return usageError{fmt.Errorf(`help: unknown command %q%s; "mcpgw help" lists the commands`, args[0], suggestCommand(args[0]))}
		}
		fs := cmd.flagSet()
		cmd.define(fs, &cli{stdin: eofReader{}, stdout: io.Discard, stderr: io.Discard, lookupEnv: noEnv})
		cmd.writeHelp(stdout, fs)
		return nil
	default:
		return usageError{errors.New(`help takes at most one argument, a command's name, e.g. "mcpgw help serve"`)}
	}
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

func noEnv(string) (string, bool) { return "", false }
