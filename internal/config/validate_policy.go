package config

import "fmt"

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
