package config

import (
	"go.yaml.in/yaml/v3"
)

// aggregateKeys collects a server's aggregate keys while its mapping is
// decoded; aggregate turns them into Server.Aggregate afterwards.
type aggregateKeys struct {
	given                               bool // the aggregate key was written
	members                             []string
	all                                 bool
	prefix, separator, onMemberError    string
	prefixAt, separatorAt, onMemberAt   *yaml.Node
	prefixSet, separatorSet, onErrorSet bool
	pageSize                            int
	pageSizeAt                          *yaml.Node
}

// pageSize decodes page_size, an aggregate-only key.
func (d *decoder) pageSize(agg *aggregateKeys) field {
	in := d.integer(&agg.pageSize)
	return func(path string, n *yaml.Node) {
		agg.pageSizeAt = n
		in(path, n)
	}
}

// members decodes aggregate: a list of server names, or "*".
func (d *decoder) members(agg *aggregateKeys) field {
	list := d.strList(&agg.members, `; list member servers, e.g. [fs, github], or write "*" for every server that is not an aggregate`)
	return func(path string, n *yaml.Node) {
		r := d.resolve(n)
		agg.given = true
		if isNull(r) {
			d.addf(path, n, `must list member servers, e.g. [fs, github], or be "*"`)
			return
		}
		if r.Kind == yaml.ScalarNode {
			s, ok := d.scalar(path, n, "a list of server names or \"*\"")
			if !ok {
				return
			}
			if s != "*" {
				d.addf(path, n, `must be a list of server names or "*" (every server that is not an aggregate), not the string %q; write [%s] for one member`, s, s)
				return
			}
			agg.all = true
			return
		}
		list(path, n)
	}
}

// keep returns a field that decodes one of the keys that only an
// aggregate has (prefix, separator, on_member_error).
func (d *decoder) keep(agg *aggregateKeys, dst *string) field {
	return func(path string, n *yaml.Node) {
		if s, ok := d.scalar(path, n, "a string"); ok {
			*dst = s
			switch dst {
			case &agg.prefix:
				agg.prefixSet, agg.prefixAt = true, n
			case &agg.separator:
				agg.separatorSet, agg.separatorAt = true, n
			default:
				agg.onErrorSet, agg.onMemberAt = true, n
			}
		}
	}
}

// aggregate sets s.Aggregate from the keys decoded at path, reporting the
// aggregate-only keys of a server that is not one.
func (d *decoder) aggregate(path string, s *Server, agg *aggregateKeys) {
	if !agg.given {
		for _, k := range []struct {
			set  bool
			key  string
			node *yaml.Node
		}{{agg.prefixSet, "prefix", agg.prefixAt}, {agg.separatorSet, "separator", agg.separatorAt}, {agg.onErrorSet, "on_member_error", agg.onMemberAt}, {agg.pageSizeAt != nil, "page_size", agg.pageSizeAt}} {
			if k.set {
				d.addf(path+"."+k.key, k.node, "applies to aggregates only (servers with aggregate: [...]); add aggregate or remove %s", k.key)
			}
		}
		return
	}
	a := &Aggregate{Members: agg.members, All: agg.all, Prefix: defaultPrefix, Separator: defaultSeparator,
		OnMemberError: defaultOnMemberError, PageSize: defaultPageSize}
	if agg.pageSizeAt != nil {
		a.PageSize = agg.pageSize
	}
	if agg.prefixSet {
		a.Prefix = agg.prefix
	}
	if agg.separatorSet {
		a.Separator = agg.separator
	}
	if agg.onErrorSet {
		a.OnMemberError = agg.onMemberError
	}
	if a.Members == nil && !a.All {
		a.Members = []string{}
	}
	s.Aggregate = a
}
