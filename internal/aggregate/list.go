package aggregate

import (
	"encoding/json"
	"strings"
)

// Kind is one of the four lists an aggregate merges.
type Kind int

// Kinds of lists.
const (
	Tools Kind = iota
	Prompts
	Resources
	Templates
)

// Kinds are every Kind, in the order of the methods below.
var Kinds = []Kind{Tools, Prompts, Resources, Templates}

var kinds = [...]struct{ method, field, key, changed, capability string }{
	Tools:     {"tools/list", "tools", "name", "notifications/tools/list_changed", "tools"},
	Prompts:   {"prompts/list", "prompts", "name", "notifications/prompts/list_changed", "prompts"},
	Resources: {"resources/list", "resources", "uri", "notifications/resources/list_changed", "resources"},
	Templates: {"resources/templates/list", "resourceTemplates", "uriTemplate", "notifications/resources/list_changed", "resources"},
}

// Capability is the server capability that declares k's list ("tools";
// "resources" for templates too).
func (k Kind) Capability() string { return kinds[k].capability }

// Method is the list method of k ("tools/list").
func (k Kind) Method() string { return kinds[k].method }

// Field is the member of the list result that holds the items ("tools").
func (k Kind) Field() string { return kinds[k].field }

// Key is the member of an item that names it ("name", "uri", "uriTemplate").
func (k Kind) Key() string { return kinds[k].key }

// Changed is the notification that says k's list changed.
func (k Kind) Changed() string { return kinds[k].changed }

// KindOf returns the Kind whose list method is method.
func KindOf(method string) (Kind, bool) {
	for i, k := range kinds {
		if k.method == method {
			return Kind(i), true
		}
	}
	return 0, false
}

// Route is where an exposed name goes: the member and its own name.
type Route struct {
	Member, Name string
}

// List is one merged list.
type List struct {
	// Items are the items as the client sees them, exposed names written
	// in, in member order.
	Items []json.RawMessage
	// Exposed are the items' exposed names (or URIs), in the same order.
	Exposed []string
	// Routes maps each exposed name to its member and original name.
	Routes map[string]Route
	// Collisions are the names no item got (Expose).
	Collisions []Collision
	// Digest identifies the list for cursors (Page).
	Digest uint64
	// templates are the member templates' literal prefixes, for RouteURI
	// (Templates lists only).
	templates []template
}

type template struct {
	literal string
	route   Route
}

// Merge merges the members' items of kind k (items[member], raw JSON
// objects). Tools and prompts are named by Expose with opts; resources and
// templates keep their URIs unless several members share one (URIs). An
// item that is not an object with a string key is left out.
func Merge(k Kind, opts Options, members []string, items map[string][]json.RawMessage) *List {
	type parsed struct {
		fields map[string]json.RawMessage
	}
	decoded := map[string][]parsed{}
	names := map[string][]string{}
	for _, m := range members {
		for _, raw := range items[m] {
			var fields map[string]json.RawMessage
			if json.Unmarshal(raw, &fields) != nil {
				continue
			}
			var name string
			if json.Unmarshal(fields[k.Key()], &name) != nil || name == "" {
				continue
			}
			decoded[m] = append(decoded[m], parsed{fields})
			names[m] = append(names[m], name)
		}
	}
	l := &List{Routes: map[string]Route{}}
	var named []Named
	switch k {
	case Tools, Prompts:
		named, l.Collisions = Expose(opts, members, names)
	default:
		uris := NewURIs(names)
		for _, m := range members {
			seen := map[string]bool{}
			for _, n := range names[m] {
				if !seen[n] {
					seen[n] = true
					named = append(named, Named{Member: m, Name: n, Exposed: uris.Show(m, n)})
				}
			}
		}
	}
	// Items in member order: find each named item's fields again.
	next := map[string]int{}
	for _, n := range named {
		list := decoded[n.Member]
		i := next[n.Member]
		for ; i < len(list); i++ {
			if names[n.Member][i] == n.Name {
				break
			}
		}
		next[n.Member] = i + 1
		fields := list[i].fields
		fields[k.Key()], _ = json.Marshal(n.Exposed)
		raw, err := json.Marshal(fields)
		if err != nil {
			continue
		}
		l.Items = append(l.Items, raw)
		l.Exposed = append(l.Exposed, n.Exposed)
		route := Route{Member: n.Member, Name: n.Name}
		l.Routes[n.Exposed] = route
		if k == Templates {
			l.templates = append(l.templates, template{literal: Literal(n.Exposed), route: route})
		}
	}
	l.Digest = Digest(l.Exposed)
	return l
}

// RouteURI finds the member of a URI a client asks for (resources/read,
// subscribe): a wrapped URI names its member; a listed one is its
// lister's; else the template whose literal beginning is the longest that
// the URI starts with decides (the first member on a tie). resources and
// templates may be nil.
func RouteURI(uri string, resources, templates *List) (Route, bool) {
	if m, orig, ok := SplitURI(uri); ok {
		return Route{Member: m, Name: orig}, true
	}
	if resources != nil {
		if r, ok := resources.Routes[uri]; ok {
			return r, true
		}
	}
	if templates == nil {
		return Route{}, false
	}
	best, found := -1, Route{}
	for _, t := range templates.templates {
		if len(t.literal) > best && t.literal != "" && strings.HasPrefix(uri, t.literal) {
			best, found = len(t.literal), Route{Member: t.route.Member, Name: uri}
		}
	}
	return found, best >= 0
}

// ReadPage reads one page of a member's list result: its items of kind k and
// the cursor of the next page ("" for the last). A result it cannot read
// is an empty last page.
func ReadPage(k Kind, result json.RawMessage) (items []json.RawMessage, next string) {
	var res map[string]json.RawMessage
	_ = json.Unmarshal(result, &res)
	_ = json.Unmarshal(res[k.Field()], &items)
	_ = json.Unmarshal(res["nextCursor"], &next)
	return items, next
}
