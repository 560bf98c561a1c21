// Package aggregate holds the pure parts of serving several servers
// behind one URL (servers.NAME.aggregate): the names a client sees and the
// member each one routes to, the shortening that keeps a name within
// MaxName, the gateway's own list cursor, reversible resource URIs, and
// the union of the members' initialize results. Nothing here does I/O;
// package session runs the aggregate with these functions.
package aggregate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// MaxName is the longest name a client is shown: Claude refuses tool
// names longer than 64 characters (^[a-zA-Z0-9_-]{1,64}$).
const MaxName = 64

// hashLen is how many hex digits of the SHA-256 a shortened name ends with.
const hashLen = 8

// Shorten returns name when it has at most MaxName bytes. A longer name
// keeps its first MaxName-hashLen-1 bytes (cut at a character boundary),
// then "_" and the first hashLen hex digits of the SHA-256 of the whole
// name: the same name always gives the same result, two names that share
// a long beginning almost never do, and what the client reads still starts
// like the original.
func Shorten(name string) string {
	if len(name) <= MaxName {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	keep := MaxName - hashLen - 1
	for keep > 0 && !utf8.RuneStart(name[keep]) {
		keep--
	}
	return name[:keep] + "_" + hex.EncodeToString(sum[:])[:hashLen]
}

// Prefix modes, as in config.Aggregate.Prefix.
const (
	PrefixAlways    = "always"
	PrefixConflicts = "conflicts"
	PrefixNever     = "never"
)

// Options are how names are exposed.
type Options struct {
	Prefix    string // PrefixAlways, PrefixConflicts or PrefixNever
	Separator string // between the member's name and the item's
}

// Named is one member item and the name the client sees.
type Named struct {
	Member, Name, Exposed string
}

// Collision is a name the client cannot be shown because more than one
// member item would have it; none of them is exposed.
type Collision struct {
	Exposed string
	Members []string // the members involved, in member order
}

func (c Collision) String() string {
	return fmt.Sprintf("%q from %v", c.Exposed, c.Members)
}

// Expose names the items of every member (names[member], in each
// member's order) as opts says, members in the order given. The result is
// in member order, then each member's order; it never holds two items
// with one exposed name:
//
//   - PrefixAlways: MEMBER + separator + name, shortened.
//   - PrefixConflicts: a name exactly one member has is kept (shortened);
//     one that several members have gets each member's prefix.
//   - PrefixNever: names are kept (shortened); a name several members
//     have is a Collision and exposed by none.
//
// Whatever still coincides after that (a member listing a name twice is
// reduced to its first; "a" + "__" + "b__c" and "a__b" + "__" + "c", or two
// shortened names whose hashes agree) is a Collision too. Collisions are
// in the order of their first item.
func Expose(opts Options, members []string, names map[string][]string) ([]Named, []Collision) {
	owners := map[string]int{} // raw name → how many members have it
	for _, m := range members {
		seen := map[string]bool{}
		for _, n := range names[m] {
			if !seen[n] {
				seen[n] = true
				owners[n]++
			}
		}
	}
	var out []Named
	byExposed := map[string][]int{} // exposed → indexes into out
	var order []string              // exposed names in first-seen order
	for _, m := range members {
		seen := map[string]bool{}
		for _, n := range names[m] {
			if seen[n] {
				continue
			}
			seen[n] = true
			exposed := n
			switch opts.Prefix {
			case PrefixAlways:
				exposed = m + opts.Separator + n
			case PrefixConflicts:
				if owners[n] > 1 {
					exposed = m + opts.Separator + n
				}
			}
			exposed = Shorten(exposed)
			if byExposed[exposed] == nil {
				order = append(order, exposed)
			}
			byExposed[exposed] = append(byExposed[exposed], len(out))
			out = append(out, Named{Member: m, Name: n, Exposed: exposed})
		}
	}
	var collisions []Collision
	drop := map[int]bool{}
	for _, e := range order {
		idx := byExposed[e]
		if len(idx) < 2 {
			continue
		}
		c := Collision{Exposed: e}
		for _, i := range idx {
			drop[i] = true
			c.Members = append(c.Members, out[i].Member)
		}
		collisions = append(collisions, c)
	}
	if len(drop) == 0 {
		return out, nil
	}
	kept := out[:0:0]
	for i, n := range out {
		if !drop[i] {
			kept = append(kept, n)
		}
	}
	return kept, collisions
}
