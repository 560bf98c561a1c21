package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// exposure returns a field that decodes {allow: [globs], deny: [globs]};
// example is a list shown in the hints.
func (d *decoder) exposure(dst *Exposure, example string) field {
	hint := "; write globs as a list, e.g. " + example
	return d.sub(fields{
		"allow": d.strList(&dst.Allow, hint),
		"deny":  d.strList(&dst.Deny, hint),
	}, nil)
}

// rules returns a field that decodes a list of {allow: EXPR} and
// {deny: EXPR} mappings.
func (d *decoder) rules(dst *[]Rule) field {
	return func(path string, n *yaml.Node) {
		n = d.resolve(n)
		if isNull(n) || d.badTag(path, n) {
			return
		}
		if n.Kind != yaml.SequenceNode {
			d.addf(path, n, `must be a list of rules, not %s; e.g. [{allow: 'identity.name == "ci"'}, {deny: 'tool.name.startsWith("delete_")'}]`, kindName(n))
			return
		}
		for i, item := range n.Content {
			if !d.spend() {
				return
			}
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = item.Line
			var allow, deny *string
			var a, b string
			d.mapping(p, item, fields{
				"allow": func(path string, n *yaml.Node) {
					if s, ok := d.scalar(path, n, "a CEL expression (a string)"); ok {
						a, allow = s, &a
					}
				},
				"deny": func(path string, n *yaml.Node) {
					if s, ok := d.scalar(path, n, "a CEL expression (a string)"); ok {
						b, deny = s, &b
					}
				},
			}, nil)
			switch {
			case d.failed[p] || d.failed[p+".allow"] || d.failed[p+".deny"]:
				d.failed[p] = true          // reported: no validation problem below p
				*dst = append(*dst, Rule{}) // keep the indexes of later rules
			case allow != nil && deny != nil:
				d.addf(p, item, "has both allow and deny; write one rule per decision")
				*dst = append(*dst, Rule{})
			case allow != nil:
				*dst = append(*dst, Rule{Allow: true, Expr: a})
			case deny != nil:
				*dst = append(*dst, Rule{Expr: b})
			default:
				d.addf(p, item, `must be {allow: EXPR} or {deny: EXPR}, e.g. {deny: 'tool.name.startsWith("delete_")'}`)
				*dst = append(*dst, Rule{})
			}
		}
	}
}
