package session

import (
	"crypto/hmac"
	"strings"
	"testing"
)

// FuzzAggState: an aggregate's requestState parses back to what made it,
// its MAC checks only for the request it was made for, and any other
// string a client sends is refused or parsed without a panic.
func FuzzAggState(f *testing.F) {
	f.Add("b", "sample", "b__sample", "laptop", "tools/call", "abc.def", "mcpgw-mrtr.agg~b~~~")
	f.Add("fs", "file:///x~y", "mcpgw:fs:file:///x~y", "", "resources/read", "Zm9v~bar", "mcpgw-mrtr.agg~a~c2FtcGxl~AAAAAAAAAAAAAAAAAAAAAA~x")
	f.Fuzz(func(t *testing.T, member, name, exposed, identity, method, id, other string) {
		if member == "" || strings.Contains(member, "~") || id == "" {
			return // member names are server names (no "~"); ids are never empty
		}
		srv := &Server{Name: "all"}
		state := srv.aggState(member, name, exposed, identity, method, statePrefix+id)
		p, ok := parseAggState(state)
		if !ok || p.member != member || p.name != name || p.id != id {
			t.Fatalf("parseAggState(%q) = %+v %v", state, p, ok)
		}
		if !hmac.Equal(p.mac, srv.aggStateMAC(member, name, exposed, identity, method, id)) {
			t.Fatal("the MAC does not check for its own request")
		}
		if hmac.Equal(p.mac, srv.aggStateMAC(member, name, exposed+"x", identity, method, id)) {
			t.Fatal("the MAC checks for another name")
		}
		if got, _ := StateID(state); got != id {
			t.Fatalf("StateID = %q, want %q", got, id)
		}
		if q, ok := parseAggState(other); ok && (q.member == "" || len(q.mac) != 16 || q.id == "") {
			t.Fatalf("parseAggState(%q) accepted %+v", other, q)
		}
	})
}
