package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
)

var checkCommand = &command{
	name:     "check",
	synopsis: "--config FILE",
	summary:  "validate a config file and list every problem",
	about: `
Reads and validates a configuration file as serve would, without starting
anything. Every problem is listed on stderr, one per line, with its key path
and line; the exit code is then 1. A config that passes prints its servers.`,
	argsHint: func(extra []string) string {
		return fmt.Sprintf("; give the file with --config %s", extra[0])
	},
	define: func(fs *flag.FlagSet, c *cli) action {
		path := fs.String("config", "", "config `file` to validate (required)")
		return func(_ context.Context, _ []string) error {
			if *path == "" {
				return usageError{errors.New(`check: no config file given; run "mcpgw check --config FILE"`)}
			}
			return runCheck(c, *path)
		}
	},
}

// runCheck validates the file at path. An invalid or unreadable file is a
// runtime failure (exit 1), not a usage error: the command was right.
func runCheck(c *cli, path string) error {
	cfg, err := loadConfig(path, c.lookupEnv)
	if err != nil {
		return err
	}
	names := serverNames(cfg)
	fmt.Fprintf(c.stdout, "%s: ok (%d server(s): %s)\n", path, len(names), strings.Join(names, ", "))
	return nil
}
