package importer

import (
	"regexp"
	"strings"
)

// MCP clients' files often hold API keys in plain text: the client reads
// them from there. An mcpgw config must not (it is shared, checked in,
// pasted into issues): a value that looks like a secret becomes a ${NAME}
// reference that the person exports, and the value itself is never
// written anywhere. The rules err on the side of treating a value as a
// secret: a false positive costs one export, a false negative a leak.

// tokenPatterns match the shapes of well-known credentials.
var tokenPatterns = regexp.MustCompile(`^(?:` + strings.Join([]string{
	`gh[pousr]_[A-Za-z0-9]{20,}`,                              // GitHub tokens
	`github_pat_[A-Za-z0-9_]{20,}`,                            // GitHub fine-grained tokens
	`glpat-[A-Za-z0-9_-]{16,}`,                                // GitLab
	`sk-[A-Za-z0-9_-]{16,}`,                                   // OpenAI, Anthropic (sk-ant-…)
	`(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{10,}`,             // Stripe
	`xox[abprs]-[A-Za-z0-9-]{10,}`,                            // Slack
	`AKIA[0-9A-Z]{16}`,                                        // AWS access key id
	`AIza[0-9A-Za-z_-]{30,}`,                                  // Google API key
	`npm_[A-Za-z0-9]{30,}`,                                    // npm
	`hf_[A-Za-z0-9]{30,}`,                                     // Hugging Face
	`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`, // a JWT
	`(?i:bearer|basic|token) [A-Za-z0-9._~+/=-]{8,}`,          // an Authorization value
}, "|") + `)`)

// userinfoPassword matches a URL that carries a password:
// postgresql://user:password@host/db.
var userinfoPassword = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@`)

// secretWords in a variable's name mark its value as a secret.
var secretWords = []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PWD", "APIKEY", "KEY", "CREDENTIAL", "CREDENTIALS", "AUTH", "PAT", "PRIVATE", "COOKIE", "SESSION", "DSN", "CONNECTION", "CONN"}

// nameSaysSecret reports whether an environment variable's name says that
// it holds a secret: GITHUB_PERSONAL_ACCESS_TOKEN, BRAVE_API_KEY,
// DATABASE_PASSWORD, SLACK_BOT_TOKEN, MY_APIKEY. PWD is not (it is the
// shell's working directory).
func nameSaysSecret(name string) bool {
	upper := strings.ToUpper(name)
	if upper == "PWD" || upper == "OLDPWD" {
		return false
	}
	if strings.Contains(upper, "APIKEY") || strings.Contains(upper, "TOKEN") || strings.Contains(upper, "SECRET") || strings.Contains(upper, "PASSWORD") {
		return true
	}
	for _, part := range strings.FieldsFunc(upper, func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
		for _, w := range secretWords {
			if part == w {
				return true
			}
		}
	}
	return strings.HasSuffix(upper, "_URL") && strings.Contains(upper, "DATABASE")
}

// valueSaysSecret reports whether a value has the shape of a credential
// whatever its name: a known token format, a URL with a password, or a long
// random-looking word.
func valueSaysSecret(v string) bool {
	return tokenPatterns.MatchString(v) || userinfoPassword.MatchString(v) || randomLooking(v, 24)
}

// randomLooking reports whether v is at least minLen characters of a
// token alphabet mixing upper case, lower case and digits, as generated
// keys are; words, paths, package names and versions are not.
func randomLooking(v string, minLen int) bool {
	if len(v) < minLen || len(v) > 4096 {
		return false
	}
	var upper, lower, digit bool
	for _, r := range v {
		switch {
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= '0' && r <= '9':
			digit = true
		case r == '_' || r == '-' || r == '+' || r == '=' || r == '.':
		default:
			return false
		}
	}
	return upper && lower && digit
}

// harmlessValue reports values that a secret-sounding name may hold
// without being a secret: a path (GITHUB_TOKEN_FILE=/run/secrets/gh), a
// boolean or a number, or nothing.
func harmlessValue(v string) bool {
	switch strings.ToLower(v) {
	case "", "true", "false", "yes", "no", "on", "off", "0", "1":
		return true
	}
	if strings.HasPrefix(v, "/") || strings.HasPrefix(v, "~/") || strings.HasPrefix(v, "./") || strings.HasPrefix(v, "../") {
		return !strings.ContainsAny(v, " \t")
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			return false
		}
	}
	return len(v) <= 6
}

// envIsSecret decides for a literal env value.
func envIsSecret(name, value string) bool {
	if valueSaysSecret(value) {
		return true
	}
	return nameSaysSecret(name) && !harmlessValue(value)
}

// secretFlags are command-line flags whose value is a secret.
var secretFlags = map[string]bool{}

func init() {
	for _, f := range []string{"token", "api-key", "apikey", "api_key", "key", "password", "passwd", "secret", "access-token", "auth-token", "bearer", "auth", "client-secret", "private-key", "pat", "personal-access-token", "connection-string", "dsn", "database-url", "db-url"} {
		secretFlags[f] = true
	}
}

// flagName returns the name of a flag argument ("--api-key" → "api-key"),
// or "" if arg is not a flag.
func flagName(arg string) string {
	name := strings.TrimLeft(arg, "-")
	if name == arg || name == "" {
		return ""
	}
	if i := strings.IndexByte(name, '='); i >= 0 {
		name = name[:i]
	}
	return strings.ToLower(name)
}

// argIsSecret decides for a literal argument: prev is the argument before
// it, whose flag may say that this one is a secret.
func argIsSecret(prev, arg string) bool {
	if arg == "" || strings.HasPrefix(arg, "-") {
		return false
	}
	if f := flagName(prev); f != "" && secretFlags[f] && !strings.Contains(prev, "=") {
		return true
	}
	return tokenPatterns.MatchString(arg) || userinfoPassword.MatchString(arg) || randomLooking(arg, 32)
}
