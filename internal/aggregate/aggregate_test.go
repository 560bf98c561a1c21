package aggregate

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

func TestShorten(t *testing.T) {
	exact := strings.Repeat("a", MaxName)
	long := "everything__" + strings.Repeat("x", 80)
	tests := []struct{ name, in, want string }{
		{"short", "fs__read_file", "fs__read_file"},
		{"exactly the limit", exact, exact},
		{"long", long, "everything__xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx_de757c7f"}, // sha256 of the whole name
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Shorten(tc.in); got != tc.want {
				t.Errorf("Shorten(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
	if Shorten(long+"y") == Shorten(long) {
		t.Error("two long names with one beginning got the same short name")
	}
}

func TestShortenRuneBoundary(t *testing.T) {
	in := strings.Repeat("a", 54) + "é" + strings.Repeat("b", 20)
	got := Shorten(in)
	if !utf8.ValidString(got) || len(got) > MaxName {
		t.Fatalf("Shorten = %q", got)
	}
}

func TestExpose(t *testing.T) {
	names := map[string][]string{
		"fs":     {"read_file", "echo", "read_file"},
		"memory": {"echo", "create_entities"},
	}
	members := []string{"fs", "memory"}
	tests := []struct {
		prefix     string
		want       []Named
		collisions []Collision
	}{
		{PrefixAlways, []Named{
			{"fs", "read_file", "fs__read_file"}, {"fs", "echo", "fs__echo"},
			{"memory", "echo", "memory__echo"}, {"memory", "create_entities", "memory__create_entities"},
		}, nil},
		{PrefixConflicts, []Named{
			{"fs", "read_file", "read_file"}, {"fs", "echo", "fs__echo"},
			{"memory", "echo", "memory__echo"}, {"memory", "create_entities", "create_entities"},
		}, nil},
		{PrefixNever, []Named{
			{"fs", "read_file", "read_file"}, {"memory", "create_entities", "create_entities"},
		}, []Collision{{Exposed: "echo", Members: []string{"fs", "memory"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			got, coll := Expose(Options{Prefix: tc.prefix, Separator: "__"}, members, names)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.collisions, coll); diff != "" {
				t.Errorf("collisions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExposeCollisionAfterPrefix(t *testing.T) {
	got, coll := Expose(Options{Prefix: PrefixAlways, Separator: "__"}, []string{"a", "a__b"},
		map[string][]string{"a": {"b__c", "x"}, "a__b": {"c"}})
	if diff := cmp.Diff([]Named{{"a", "x", "a__x"}}, got); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Collision{{Exposed: "a__b__c", Members: []string{"a", "a__b"}}}, coll); diff != "" {
		t.Errorf("collisions (-want +got):\n%s", diff)
	}
}

func TestCursor(t *testing.T) {
	d := Digest([]string{"a", "b", "c"})
	from, to, next, err := Page("", 3, d, 2)
	if err != nil || from != 0 || to != 2 || next == "" {
		t.Fatalf("first page: %d %d %q %v", from, to, next, err)
	}
	from, to, last, err := Page(next, 3, d, 2)
	if err != nil || from != 2 || to != 3 || last != "" {
		t.Fatalf("second page: %d %d %q %v", from, to, last, err)
	}
	for name, c := range map[string]string{
		"other list":  next,
		"garbage":     "abc",
		"zero offset": EncodeCursor(0, d),
		"past end":    EncodeCursor(4, d),
		"too long":    cursorPrefix + strings.Repeat("A", 200),
		"leading 0":   cursorPrefix + "MDEuYQ", // "01.a"
	} {
		digest := d
		if name == "other list" {
			digest = Digest([]string{"a", "b"})
		}
		if _, _, _, err := Page(c, 3, digest, 2); !errors.Is(err, ErrCursor) {
			t.Errorf("%s: err = %v, want ErrCursor", name, err)
		}
	}
}

func TestURIs(t *testing.T) {
	u := NewURIs(map[string][]string{"a": {"file:///x", "file:///y"}, "b": {"file:///x", "mcpgw:z"}})
	for _, tc := range []struct{ member, in, want string }{
		{"a", "file:///x", "mcpgw:a:file:///x"},
		{"b", "file:///x", "mcpgw:b:file:///x"},
		{"a", "file:///y", "file:///y"},
		{"b", "mcpgw:z", "mcpgw:b:mcpgw:z"},
	} {
		got := u.Show(tc.member, tc.in)
		if got != tc.want {
			t.Errorf("Show(%s, %s) = %s, want %s", tc.member, tc.in, got, tc.want)
		}
		if m, orig, ok := SplitURI(got); got != tc.in && (!ok || m != tc.member || orig != tc.in) {
			t.Errorf("SplitURI(%s) = %s %s %v", got, m, orig, ok)
		}
	}
	if _, _, ok := SplitURI("mcpgw:Bad:x"); ok {
		t.Error("SplitURI accepted an invalid member name")
	}
}

func TestMergeAndRoute(t *testing.T) {
	raw := func(s ...string) []json.RawMessage {
		var out []json.RawMessage
		for _, x := range s {
			out = append(out, json.RawMessage(x))
		}
		return out
	}
	members := []string{"everything", "fs"}
	tools := Merge(Tools, Options{Prefix: PrefixAlways, Separator: "__"}, members, map[string][]json.RawMessage{
		"everything": raw(`{"name":"echo","description":"d","inputSchema":{}}`, `not json`, `{"name":""}`),
		"fs":         raw(`{"name":"read_file"}`),
	})
	if diff := cmp.Diff([]string{"everything__echo", "fs__read_file"}, tools.Exposed); diff != "" {
		t.Errorf("exposed (-want +got):\n%s", diff)
	}
	if got := string(tools.Items[0]); got != `{"description":"d","inputSchema":{},"name":"everything__echo"}` {
		t.Errorf("item = %s", got)
	}
	if r := tools.Routes["fs__read_file"]; r != (Route{"fs", "read_file"}) {
		t.Errorf("route = %v", r)
	}
	res := Merge(Resources, Options{}, members, map[string][]json.RawMessage{
		"everything": raw(`{"uri":"demo://static/1"}`, `{"uri":"file:///shared"}`),
		"fs":         raw(`{"uri":"file:///shared"}`),
	})
	tmpl := Merge(Templates, Options{}, members, map[string][]json.RawMessage{
		"everything": raw(`{"uriTemplate":"demo://static/{id}"}`),
		"fs":         raw(`{"uriTemplate":"file:///{path}"}`),
	})
	for _, tc := range []struct {
		uri  string
		want Route
		ok   bool
	}{
		{"demo://static/1", Route{"everything", "demo://static/1"}, true},
		{"mcpgw:fs:file:///shared", Route{"fs", "file:///shared"}, true},
		{"demo://static/77", Route{"everything", "demo://static/77"}, true},
		{"file:///etc/x", Route{"fs", "file:///etc/x"}, true},
		{"other://x", Route{}, false},
	} {
		got, ok := RouteURI(tc.uri, res, tmpl)
		if got != tc.want || ok != tc.ok {
			t.Errorf("RouteURI(%s) = %v %v, want %v %v", tc.uri, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCapabilitiesAndInstructions(t *testing.T) {
	inits := []Init{
		{Member: "a", Capabilities: json.RawMessage(`{"tools":{},"logging":{}}`), Instructions: "Use a."},
		{Member: "b", Capabilities: json.RawMessage(`{"resources":{"subscribe":true},"completions":{}}`)},
		{Member: "c", Capabilities: json.RawMessage(`{"resources":{"subscribe":false},"prompts":{"listChanged":false}}`), Instructions: " Use c. "},
	}
	want := `{"completions":{},"logging":{},"prompts":{"listChanged":true},"resources":{"listChanged":true,"subscribe":true},"tools":{"listChanged":true}}`
	if got := string(Capabilities(inits)); got != want {
		t.Errorf("Capabilities = %s\nwant %s", got, want)
	}
	if got := Instructions(inits); got != "## a\n\nUse a.\n\n## c\n\nUse c." {
		t.Errorf("Instructions = %q", got)
	}
}

// FuzzNames: whatever the members list, exposed names are unique, within
// MaxName, and route back to the item they name.
func FuzzNames(f *testing.F) {
	f.Add("fs", "read_file\necho", "mem", "echo", "__", 0)
	f.Add("a", "b__c", "a__b", "c", "__", 1)
	f.Add("x", strings.Repeat("y", 100), "z", strings.Repeat("y", 100), "-", 2)
	f.Fuzz(func(t *testing.T, m1, names1, m2, names2, sep string, mode int) {
		if m1 == m2 || !validMember(m1) || !validMember(m2) || !validSeparator(sep) || !utf8.ValidString(names1+names2) {
			return // member names and separators are validated at load; names come from JSON (valid UTF-8)
		}
		prefix := []string{PrefixAlways, PrefixConflicts, PrefixNever}[uint(mode)%3]
		items := map[string][]json.RawMessage{}
		for m, list := range map[string]string{m1: names1, m2: names2} {
			for n := range strings.SplitSeq(list, "\n") {
				b, _ := json.Marshal(map[string]string{"name": n})
				items[m] = append(items[m], b)
			}
		}
		l := Merge(Tools, Options{Prefix: prefix, Separator: sep}, []string{m1, m2}, items)
		seen := map[string]bool{}
		for i, e := range l.Exposed {
			if seen[e] {
				t.Fatalf("exposed twice: %q", e)
			}
			seen[e] = true
			if len(e) > MaxName || !utf8.ValidString(e) {
				t.Fatalf("too long: %q", e)
			}
			r, ok := l.Routes[e]
			if !ok {
				t.Fatalf("no route for %q", e)
			}
			var it struct{ Name string }
			if err := json.Unmarshal(l.Items[i], &it); err != nil || it.Name != e {
				t.Fatalf("item %s names %q, want %q", l.Items[i], it.Name, e)
			}
			if prefix == PrefixAlways && !strings.HasPrefix(e, Shorten(r.Member + sep + r.Name)[:min(len(e), 40)]) {
				t.Fatalf("%q does not start like %q", e, r.Member+sep+r.Name)
			}
		}
		if len(l.Routes) != len(l.Exposed) {
			t.Fatalf("%d routes for %d items", len(l.Routes), len(l.Exposed))
		}
	})
}

// FuzzCursor: a client's cursor is either refused or names a page inside
// the list.
func FuzzCursor(f *testing.F) {
	d := Digest([]string{"a"})
	f.Add(EncodeCursor(1, d), 3)
	f.Add("mcpgw1.", 0)
	f.Add("", 5)
	f.Fuzz(func(t *testing.T, cursor string, n int) {
		n = int(uint(n) % 1000)
		from, to, next, err := Page(cursor, n, d, 10)
		if err != nil {
			return
		}
		if from < 0 || from > to || to > n {
			t.Fatalf("page [%d, %d) of %d", from, to, n)
		}
		if next != "" {
			off, dd, err := DecodeCursor(next)
			if err != nil || off != to || dd != d {
				t.Fatalf("next cursor %q: %d %d %v", next, off, dd, err)
			}
		}
	})
}

// FuzzURI: SplitURI reverses WrapURI, and Show never loses the member.
func FuzzURI(f *testing.F) {
	f.Add("fs", "file:///x")
	f.Add("a", "mcpgw:b:c")
	f.Fuzz(func(t *testing.T, member, uri string) {
		if !validMember(member) {
			return // server names are validated at load
		}
		m, u, ok := SplitURI(WrapURI(member, uri))
		if !ok || m != member || u != uri {
			t.Fatalf("SplitURI(WrapURI(%q, %q)) = %q %q %v", member, uri, m, u, ok)
		}
		shown := NewURIs(nil).Show(member, uri)
		if mm, uu, ok := SplitURI(shown); ok && (mm != member || uu != uri) {
			t.Fatalf("Show(%q, %q) = %q splits to %q %q", member, uri, shown, mm, uu)
		}
	})
}

// validSeparator is config's separator rule.
func validSeparator(s string) bool {
	if s == "" || len(s) > 8 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
