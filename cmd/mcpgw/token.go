package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"io"

	"github.com/mcpgw/mcpgw/internal/config"
)

var tokenCommand = &command{
	name:     "token",
	synopsis: "[NAME]",
	summary:  "generate a bearer token and its auth.tokens line",
	about: `
Generates a bearer token of 256 random bits for a client named NAME
(default "client") and prints it once, with the line to add under
auth.tokens in the config. That line holds only the token's SHA-256: the
token itself is stored nowhere.`,
	maxArgs: 1,
	argsHint: func([]string) string {
		return "; a token has one name, e.g. \"mcpgw token laptop\""
	},
	define: func(_ *flag.FlagSet, c *cli) action {
		return func(_ context.Context, args []string) error {
			name := "client"
			if len(args) == 1 {
				name = args[0]
			}
			return runToken(name, c.stdout)
		}
	},
}

// runToken generates a token of 256 random bits (base64url, 43
// characters) and prints it once, with the auth.tokens line that holds
// only its SHA-256.
func runToken(name string, stdout io.Writer) error {
	if !config.TokenNamePattern.MatchString(name) {
		return usageError{fmt.Errorf("token name %q: use 1 to 64 characters A-Z, a-z, 0-9, _, . and -, starting with a letter or digit, e.g. \"mcpgw token laptop\"", name)}
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("generating a token: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(token))
	fmt.Fprintf(stdout, "# token %q, shown only now: give it to the client, which sends \"Authorization: Bearer <token>\"\n%s\n", name, token)
	fmt.Fprintf(stdout, "# add this line under auth.tokens in the config (it holds only the token's SHA-256):\n- {name: %s, sha256: \"%s\"}\n", name, hex.EncodeToString(sum[:]))
	return nil
}
