package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mcpgw/mcpgw/internal/config"
)

// usageError marks command-line and config errors (exit code 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode is 0 for no error, 2 for a usageError and 1 for any other
// (a runtime failure).
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if _, ok := errors.AsType[usageError](err); ok {
		return 2
	}
	return 1
}

// report writes err for the person who ran mcpgw, once, on w (stderr).
//
// An invalid configuration is every problem, one line each, prefixed with
// the file it is in (the same for check and serve), then one line that
// counts them. Any other error is one line, "mcpgw: " and the message,
// which says what went wrong and what to change.
func report(w io.Writer, err error) {
	if err == nil {
		return
	}
	if ce, ok := errors.AsType[*config.Error](err); ok {
		writeConfigError(w, ce)
		return
	}
	if nr, ok := errors.AsType[*notReadyError](err); ok {
		nr.write(w)
		return
	}
	fmt.Fprintf(w, "mcpgw: %s\n", oneLine(err.Error()))
}

// writeConfigError is the one formatter of invalid configurations.
func writeConfigError(w io.Writer, ce *config.Error) {
	source := ce.File
	if source == "" {
		source = "built-in configuration"
	}
	for _, p := range ce.Problems {
		fmt.Fprintf(w, "%s: %s\n", source, oneLine(p))
	}
	n := len(ce.Problems)
	if n > 0 && strings.HasPrefix(ce.Problems[n-1], "… and ") {
		n = -1 // the list was cut short; its last line says how many more
	}
	switch n {
	case -1:
		fmt.Fprintf(w, "mcpgw: %s is not valid: fix the problems above\n", source)
	case 1:
		fmt.Fprintf(w, "mcpgw: %s is not valid: 1 problem\n", source)
	default:
		fmt.Fprintf(w, "mcpgw: %s is not valid: %d problems\n", source, n)
	}
}

// oneLine joins the lines of a message with "; " so that each report is
// one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "\n") {
		return s
	}
	lines := strings.Split(s, "\n")
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}
