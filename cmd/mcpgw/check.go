package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/launch"
)

var checkCommand = &command{
	name:     "check",
	synopsis: "--config FILE [--offline]",
	summary:  "validate a config file and list every problem",
	about: `
Reads and validates a configuration file as serve would, without starting
anything, then checks what /readyz would report for each server on this
machine: that its command is found on PATH, that its workdir exists, that
Landlock is available where its sandbox needs it, and for a container
server that the engine answers and has its image (or may pull it).
--offline skips the engine calls. Every problem is listed on stderr, one
per line, with its key path; the exit code is then 1. A config that passes
prints its servers.`,
	argsHint: func(extra []string) string {
		return fmt.Sprintf("; give the file with --config %s", extra[0])
	},
	define: func(fs *flag.FlagSet, c *cli) action {
		path := fs.String("config", "", "config `file` to validate (required)")
		offline := fs.Bool("offline", false, "do not ask the container engine: container servers' engine and images are not checked")
		return func(ctx context.Context, _ []string) error {
			if *path == "" {
				return usageError{errors.New(`check: no config file given; run "mcpgw check --config FILE"`)}
			}
			return runCheck(ctx, c, *path, *offline)
		}
	},
}

// runCheck validates the file at path, then its servers' readiness. An
// invalid or unreadable file, or a server that would not be ready, is a
// runtime failure (exit 1), not a usage error: the command was right.
func runCheck(ctx context.Context, c *cli, path string, offline bool) error {
	cfg, err := loadConfig(path, c.lookupEnv)
	if err != nil {
		return err
	}
	if problems := readinessProblems(ctx, cfg, c.lookupEnv, offline); len(problems) > 0 {
		return &notReadyError{file: path, problems: problems}
	}
	names := serverNames(cfg)
	fmt.Fprintf(c.stdout, "%s: ok (%d server(s): %s)\n", path, len(names), strings.Join(names, ", "))
	return nil
}

// readinessProblems asks a launcher, as /readyz does, whether each server
// can be started here, and returns one line per server that cannot
// ("servers.NAME: …"). offline leaves container servers unchecked. The
// launcher removes nothing (no sweep of leftover containers) and logs
// nothing.
func readinessProblems(ctx context.Context, cfg *config.Config, lookupEnv func(string) (string, bool), offline bool) []string {
	l := launch.New(cfg, &launch.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Getenv: lookupEnv, NoSweep: true})
	if !offline {
		if err := l.Open(ctx); err != nil {
			return []string{err.Error()}
		}
	}
	defer l.Close(context.WithoutCancel(ctx))
	var problems []string
	for _, name := range serverNames(cfg) {
		sc := cfg.Servers[name]
		if offline && sc.Runtime == config.RuntimeContainer {
			continue
		}
		if err := l.Check(ctx, sc); err != nil {
			problems = append(problems, fmt.Sprintf("servers.%s: not ready: %s", name, oneLine(err.Error())))
		}
	}
	return problems
}

// notReadyError is a valid configuration whose servers would not all be
// ready on this machine; report prints one line per problem.
type notReadyError struct {
	file     string
	problems []string
}

func (e *notReadyError) Error() string {
	return fmt.Sprintf("%s is valid, but %s would not be ready: %s", e.file, count(len(e.problems), "server"), strings.Join(e.problems, "; "))
}

// write prints the problems, one per line, then one line that counts them.
func (e *notReadyError) write(w io.Writer) {
	for _, p := range e.problems {
		fmt.Fprintf(w, "%s: %s\n", e.file, p)
	}
	fmt.Fprintf(w, "mcpgw: %s is valid, but %s would not be ready (serve's /readyz says the same): fix the problems above\n",
		e.file, count(len(e.problems), "server"))
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
