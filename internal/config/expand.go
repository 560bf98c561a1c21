package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/mcpgw/mcpgw/internal/clip"
)

// envNamePattern is what ${NAME} may contain and what env keys must match:
// the portable environment variable names (POSIX.1-2017, 8.1).
var envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces each ${NAME} in s by the value of NAME from lookupEnv and
// each $$ by a single $. Any other $ is an error, so that a shell habit such
// as $HOME fails loudly instead of reaching a server as literal text.
//
// Expansion runs on scalar values after YAML parsing: a value from the
// environment can never add keys or change the document's structure, and
// it is not expanded again.
//
// Errors name the variable but never contain s or any value: s may hold a
// secret written in the file, the values are secrets from the environment.
func expand(s string, lookupEnv func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		var next byte
		if i+1 < len(s) {
			next = s[i+1]
		}
		switch next {
		case '$':
			b.WriteByte('$')
			i += 2
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New(`"${" without a closing "}"; write $$ for a literal $`)
			}
			name := s[i+2 : i+2+end]
			if !envNamePattern.MatchString(name) {
				return "", errors.New(`"${…}" must hold just a variable name (letters, digits and _, not starting with a digit; no defaults or other shell syntax); write $$ for a literal $`)
			}
			v, ok := lookupEnv(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", clip.String(name, 64))
			}
			b.WriteString(v)
			i += 2 + end + 1
		default:
			return "", errors.New(`"$" must be followed by "{" or "$": write ${NAME} for an environment variable or $$ for a literal $`)
		}
	}
	return b.String(), nil
}

// noEnv is the environment of a nil lookupEnv: no variable is set.
func noEnv(string) (string, bool) { return "", false }
