package policy

import (
	"regexp"
	"strings"
)

// Globs decides which names (tool and prompt names, resource URIs) a
// server exposes at all: a name is exposed when it matches an allow
// pattern (or there are none) and no deny pattern. In a pattern "*"
// matches any run of characters, "/" included (resource URIs have
// slashes), and "?" one character; everything else is literal.
type Globs struct {
	allow, deny []*regexp.Regexp
}

// NewGlobs compiles allow and deny patterns. Every string is a valid
// pattern.
func NewGlobs(allow, deny []string) Globs {
	return Globs{allow: compileAll(allow), deny: compileAll(deny)}
}

func compileAll(patterns []string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, p := range patterns {
		out = append(out, globRegexp(p))
	}
	return out
}

// globRegexp translates a glob to an anchored regular expression. The
// translation quotes every literal, so the result always compiles.
func globRegexp(glob string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for _, r := range glob {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`)$`)
	return regexp.MustCompile(b.String())
}

// Empty reports whether g exposes everything.
func (g Globs) Empty() bool { return len(g.allow) == 0 && len(g.deny) == 0 }

// Exposes reports whether name is exposed.
func (g Globs) Exposes(name string) bool {
	if len(g.allow) > 0 && !anyMatch(g.allow, name) {
		return false
	}
	return !anyMatch(g.deny, name)
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
