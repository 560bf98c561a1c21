package config

import (
	"fmt"
	"path/filepath"

	"github.com/mcpgw/mcpgw/internal/policy"
)

// Bounds of a server's exposure globs: each is matched against every
// listed name of every list result, so both are kept small.
const (
	maxGlobs      = 256
	maxGlobLength = 1024
)

// exposure checks a server's allow/deny globs for one kind of item.
func (v *validator) exposure(path string, e Exposure) {
	for _, kg := range []struct {
		key   string
		globs []string
	}{{"allow", e.Allow}, {"deny", e.Deny}} {
		p, globs := path+"."+kg.key, kg.globs
		if len(globs) > maxGlobs {
			v.add(p, fmt.Sprintf("has %d globs; at most %d are allowed: use * to cover more names with one", len(globs), maxGlobs))
		}
		for i, g := range globs {
			switch {
			case g == "":
				v.add(fmt.Sprintf("%s[%d]", p, i), `must not be empty; "*" matches every name`)
			case len(g) > maxGlobLength:
				v.add(fmt.Sprintf("%s[%d]", p, i), fmt.Sprintf("is longer than %d bytes", maxGlobLength))
			}
		}
	}
}

// rules type-checks a server's policy rules. (A rule that failed to
// decode was reported by the decoder, which suppresses problems below it.)
func (v *validator) rules(path string, rules []Rule) {
	if len(rules) > policy.MaxRules {
		v.add(path, fmt.Sprintf("has %d rules; at most %d are allowed: combine conditions with && and ||", len(rules), policy.MaxRules))
		return
	}
	for i, r := range rules {
		p := fmt.Sprintf("%s[%d]", path, i)
		key := p + ".deny"
		if r.Allow {
			key = p + ".allow"
		}
		if err := policy.Check(r.Expr); err != nil {
			v.add(key, "is not a valid rule: "+err.Error())
		}
	}
}

// pinStateDir checks that the pins of the server at path have a state
// directory to persist in.
func (v *validator) pinStateDir(path, dir string) {
	switch {
	case dir == "":
		v.add(path, "needs state_dir (there is no HOME or XDG_STATE_HOME to derive a default from): the directory where tool pins persist")
	case !filepath.IsAbs(dir):
		v.add(path, "needs an absolute state_dir, where tool pins persist"+v.got("state_dir", dir))
	}
}
