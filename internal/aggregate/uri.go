package aggregate

import (
	"strings"
)

// Resource URIs are shown as their server wrote them when no other member
// has the same one. A URI (or URI template) that several members have, and
// any URI that already begins with URIScheme, is shown as
//
//	mcpgw:MEMBER:ORIGINAL
//
// which SplitURI turns back into the member and the original: member names
// contain no ":", so the first ":" after the member ends it.
const URIScheme = "mcpgw:"

// WrapURI is the unique form of a member's URI.
func WrapURI(member, uri string) string { return URIScheme + member + ":" + uri }

// SplitURI reverses WrapURI; ok is false for any other URI.
func SplitURI(s string) (member, uri string, ok bool) {
	rest, ok := strings.CutPrefix(s, URIScheme)
	if !ok {
		return "", "", false
	}
	member, uri, ok = strings.Cut(rest, ":")
	if !ok || !validMember(member) {
		return "", "", false
	}
	return member, uri, true
}

// validMember is config.ServerNamePattern, ^[a-z0-9][a-z0-9_-]{0,63}$.
func validMember(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// URIs decides how each member's URIs are shown: shared[uri] is true for
// a URI more than one member lists, and Show gives the form the client sees.
type URIs struct {
	shared map[string]bool
}

// NewURIs looks at every member's URIs (uris[member]).
func NewURIs(uris map[string][]string) *URIs {
	count := map[string]int{}
	for _, list := range uris {
		seen := map[string]bool{}
		for _, u := range list {
			if !seen[u] {
				seen[u] = true
				count[u]++
			}
		}
	}
	u := &URIs{shared: map[string]bool{}}
	for uri, n := range count {
		if n > 1 {
			u.shared[uri] = true
		}
	}
	return u
}

// Show returns the URI the client sees for member's uri.
func (u *URIs) Show(member, uri string) string {
	if (u != nil && u.shared[uri]) || strings.HasPrefix(uri, URIScheme) {
		return WrapURI(member, uri)
	}
	return uri
}

// Literal is the part of a URI template before its first expression: the
// part every URI made from it starts with.
func Literal(template string) string {
	if i := strings.IndexByte(template, '{'); i >= 0 {
		return template[:i]
	}
	return template
}
