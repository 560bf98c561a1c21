package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
)

// separatorPattern is what a separator may contain: characters every
// client accepts in a tool name (Claude's pattern is ^[a-zA-Z0-9_-]{1,64}$).
var separatorPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// expandAggregates makes "*" the sorted list of every server that is not
// an aggregate.
func expandAggregates(c *Config) {
	for _, s := range c.Servers {
		if !s.IsAggregate() || !s.Aggregate.All {
			continue
		}
		s.Aggregate.Members = nil
		for _, name := range slices.Sorted(maps.Keys(c.Servers)) {
			if m := c.Servers[name]; m != nil && !m.IsAggregate() {
				s.Aggregate.Members = append(s.Aggregate.Members, name)
			}
		}
	}
}

// aggregate checks an aggregate entry: its members exist and are not
// aggregates, it runs nothing of its own, and its naming options are valid.
func (v *validator) aggregate(path string, s *Server, c *Config) {
	if !s.IsAggregate() {
		return
	}
	a := s.Aggregate
	// The keys that describe a process mean nothing here: the members
	// keep their own.
	process := []struct {
		set bool
		key string
	}{
		{len(s.Command) > 0, "command"},
		{s.Runtime == RuntimeContainer || s.Container != nil, "container"},
		{len(s.Env) > 0, "env"},
		{s.Workdir != "", "workdir"},
		{len(s.Workspaces) > 0, "workspaces"},
		{len(s.ReadPaths) > 0, "read_paths"},
		{s.Mode == ModeDaemon, "mode"},
	}
	for _, k := range process {
		if k.set {
			v.add(path+"."+k.key, "an aggregate runs no process of its own (its members keep their own settings): remove "+k.key+" or aggregate")
		}
	}
	if len(a.Members) == 0 {
		if a.All {
			v.add(path+".aggregate", `"*" found no server that is not an aggregate: add a server with a command`)
		} else {
			v.add(path+".aggregate", "must list at least one member server, e.g. [fs, github]")
		}
	}
	seen := map[string]bool{}
	for i, m := range a.Members {
		p := fmt.Sprintf("%s.aggregate[%d]", path, i)
		if a.All {
			p = path + ".aggregate"
		}
		member, ok := c.Servers[m]
		switch {
		case m == s.Name:
			v.add(p, "an aggregate cannot list itself")
		case !ok:
			hint := ""
			if best := closest(m, slices.Sorted(maps.Keys(c.Servers))); best != "" {
				hint = fmt.Sprintf("; did you mean %s?", best)
			}
			v.add(p, fmt.Sprintf("unknown server %q%s", m, hint))
		case member.IsAggregate():
			v.add(p, fmt.Sprintf("%q is itself an aggregate; aggregates cannot be nested: list its members instead", m))
		case seen[m]:
			v.add(p, fmt.Sprintf("%q is listed twice", m))
		}
		seen[m] = true
	}
	v.oneOf(path+".prefix", a.Prefix, PrefixAlways, PrefixConflicts, PrefixNever)
	v.intRange(path+".page_size", a.PageSize, minPageSize, maxPageSize)
	v.oneOf(path+".on_member_error", a.OnMemberError, MemberErrorSkip, MemberErrorFail)
	switch {
	case a.Separator == "":
		v.add(path+".separator", `must not be empty; the default is "__"`)
	case len(a.Separator) > maxSeparator || !separatorPattern.MatchString(a.Separator):
		v.add(path+".separator", fmt.Sprintf("must be 1 to %d of the characters A-Z, a-z, 0-9, _ and - (what clients accept in a tool name)%s",
			maxSeparator, v.got(path+".separator", a.Separator)))
	}
}

// closest returns the name nearest to s by edit distance, when it is near
// enough to be a typo, or "".
func closest(s string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := EditDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}
