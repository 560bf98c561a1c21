// Package config owns the gateway's configuration: the YAML file format,
// the default of every key, ${VAR} expansion from the environment and the
// validation of every value. It turns a file into a *Config whose fields hold
// effective values, so no other package needs to know a default, re-check a
// bound or read the environment for configuration.
//
// The format is documented in docs/config.md, which is the
// reference for operators. Every problem is reported with its key path (and
// line), all at once, so that `mcpgw check` can list them; values that may
// have come from the environment are never quoted in a message.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"slices"
	"strings"
)

// DefaultYAML is the built-in configuration that `mcpgw serve` uses without
// --config: the built-in demo server as server "demo", on 127.0.0.1:8080.
// It runs "${MCPGW_BIN} demo-server", so the lookupEnv given to Default must
// supply MCPGW_BIN, the path of the running mcpgw binary. Do not modify it.
//
//go:embed default.yaml
var DefaultYAML []byte

// Default parses DefaultYAML. lookupEnv must supply MCPGW_BIN.
func Default(lookupEnv func(string) (string, bool)) (*Config, error) {
	return Parse(DefaultYAML, lookupEnv)
}

// Load reads and parses the configuration file at path; see Parse. A file
// larger than 1 MiB is refused before parsing. When the file's contents are
// at fault, the error is an *Error whose File is path.
func Load(path string, lookupEnv func(string) (string, bool)) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("reading config %s: is a directory, not a file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading config %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("reading config %s: the file is larger than %s; a configuration is a few KiB, is this the right file?", path, formatSize(maxFileBytes))
	}
	c, err := Parse(data, lookupEnv)
	if e, ok := errors.AsType[*Error](err); ok {
		e.File = path
	}
	return c, err
}

// Parse decodes a YAML configuration, applies defaults and validates it.
//
// Decoding is strict: unknown keys, keys this version does not implement
// yet, duplicate keys and values of the wrong kind are errors. ${NAME} in a
// scalar value is replaced by lookupEnv(NAME) after YAML parsing, so a value
// cannot change the document's structure; an unset variable is an error,
// "$$" is a literal "$". A nil lookupEnv means that no variable is set.
//
// On failure Parse returns a nil Config and an *Error listing every
// problem.
func Parse(data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	d := newDecoder(lookupEnv)
	c := d.decode(data)
	if c == nil || d.exhausted {
		return nil, newError(d.problems)
	}
	normalize(c)
	v := validator{literal: d.literal}
	v.config(c)
	problems := d.problems
	for _, p := range v.problems {
		if d.suppressed(p.path) {
			continue
		}
		p.line = d.lineFor(p.path)
		problems = append(problems, p)
	}
	if err := newError(problems); err != nil {
		return nil, err
	}
	return c, nil
}

// normalize rewrites the values that have a canonical form (lower-case
// hosts, origins without a trailing "/") into it. Invalid values are left
// as they are for validation to report.
func normalize(c *Config) {
	for _, s := range c.Servers {
		if s != nil {
			applyModeDefaults(s)
			applyWorkspaceDefaults(s)
		}
	}
	expandAggregates(c)
	if u, err := normalizePublicURL(c.PublicURL); err == nil {
		c.PublicURL = u
	}
	for i, h := range c.AllowedHosts {
		if n, err := normalizeHost(h); err == nil {
			c.AllowedHosts[i] = n
		}
	}
	for i, o := range c.AllowedOrigins {
		if n, err := normalizeOrigin(o); err == nil {
			c.AllowedOrigins[i] = n
		}
	}
	if j := c.Auth.JWT; j != nil {
		for i, h := range j.Headers {
			j.Headers[i] = textproto.CanonicalMIMEHeaderKey(h)
		}
	}
	if o := c.Auth.OAuth; o != nil {
		for i, u := range o.Users {
			if strings.Contains(u, "@") {
				o.Users[i] = strings.ToLower(u)
			}
		}
		for i, h := range o.RedirectHosts {
			o.RedirectHosts[i] = strings.ToLower(strings.TrimSuffix(h, "."))
		}
	}
	for _, s := range c.Servers {
		for i, a := range s.Allow {
			if strings.Contains(a, "@") {
				s.Allow[i] = strings.ToLower(a)
			}
		}
	}
}

// Error is an invalid configuration: every problem found, in file order.
// Use errors.As to get it and list Problems one per line.
type Error struct {
	// File is the path of the configuration file, set by Load; "" when
	// the configuration came from Parse.
	File string
	// Problems are "key.path: what is wrong (line N)", one per problem.
	// A problem that concerns the file as a whole (invalid YAML) has no
	// key path; one found by Config.Validate has no line.
	Problems []string
}

// Error returns the problems one per line, each prefixed with the file name
// when there is one.
func (e *Error) Error() string {
	if len(e.Problems) == 0 {
		return "invalid configuration"
	}
	prefix := ""
	if e.File != "" {
		prefix = e.File + ": "
	}
	return prefix + strings.Join(e.Problems, "\n"+prefix)
}

// maxProblems bounds the problems listed: past that, the file is probably
// not a configuration at all.
const maxProblems = 100

// problem is one thing wrong with a configuration.
type problem struct {
	path string // key path; "" for the file as a whole
	line int    // 1-based; 0 when unknown
	msg  string
}

func (p problem) String() string {
	s := p.msg
	if p.path != "" {
		s = p.path + ": " + s
	}
	if p.line > 0 {
		s += fmt.Sprintf(" (line %d)", p.line)
	}
	return s
}

// newError returns an *Error listing problems by line, or nil if there are
// none.
func newError(problems []problem) error {
	if len(problems) == 0 {
		return nil
	}
	slices.SortStableFunc(problems, func(a, b problem) int { return a.line - b.line })
	e := &Error{}
	for i, p := range problems {
		if i == maxProblems {
			e.Problems = append(e.Problems, fmt.Sprintf("… and %d more problems", len(problems)-i))
			break
		}
		e.Problems = append(e.Problems, p.String())
	}
	return e
}
