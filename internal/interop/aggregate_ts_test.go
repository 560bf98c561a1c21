package interop

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// aggregates are aggregateYAML's two aggregates with their members in the
// order client.mjs's aggregate scenario takes them (everything,
// filesystem, memory, demo).
var aggregates = []struct {
	name, mode string
	members    []string
}{
	{"all", "launcher", []string{"ev", "fs", "memory", "demo"}},
	{"alld", "daemon", []string{"evd", "fsd", "memoryd", "demod"}},
}

// checkAggregateTS checks the output of a TypeScript client's aggregate
// scenario: the aggregate's tools, read page by page, are each member's
// own (as the same client lists them on the member's URL) under the
// member's prefix, in member order, over more than one page; and each
// member answered its call.
func checkAggregateTS(t *testing.T, out map[string]json.RawMessage, members []string, sampled string) {
	t.Helper()
	direct := field[map[string]json.RawMessage](t, out, "direct")
	var want []string
	for _, m := range members {
		names := field[[]string](t, direct, m)
		if len(names) == 0 {
			t.Fatalf("%s lists no tools on its own URL", m)
		}
		for _, n := range names {
			want = append(want, m+"__"+n)
		}
	}
	list := field[struct {
		Names []string
		Pages int
	}](t, out, "list")
	if diff := cmp.Diff(want, list.Names); diff != "" {
		t.Errorf("tools through the aggregate (-want each member's own +got):\n%s", diff)
	}
	// page_size 5: the client had to follow nextCursor to the end.
	if wantPages := (len(want) + 4) / 5; list.Pages != wantPages {
		t.Errorf("the aggregate's tools came in %d pages, want %d (page_size 5, %d tools)", list.Pages, wantPages, len(want))
	}
	if got := field[[]string](t, out, "ev"); !cmp.Equal(got, []string{"Echo: hello aggregate"}) {
		t.Errorf("%s__echo = %q", members[0], got)
	}
	if got := field[[]string](t, out, "fs"); !cmp.Equal(got, []string{"hello interop\n"}) {
		t.Errorf("%s__read_text_file = %q", members[1], got)
	}
	mem := field[struct{ Entity, Graph string }](t, out, "memory")
	if mem.Entity == "" || !strings.Contains(mem.Graph, mem.Entity) {
		t.Errorf("%s__read_graph = %q, want the entity %q just created", members[2], mem.Graph, mem.Entity)
	}
	if got := strings.Join(field[[]string](t, out, "demo"), ""); !strings.Contains(got, "hello demo through the aggregate") {
		t.Errorf("%s__echo = %q", members[3], got)
	}
	if got := strings.Join(field[[]string](t, out, "sampling"), ""); !strings.Contains(got, sampled) {
		t.Errorf("sampling through the aggregate = %q, want the client's answer %q in it", got, sampled)
	}
}

// TestAggregateTypeScript: the TypeScript SDK (v1) client through an
// aggregate of the four npm and Go servers, launcher and daemon members,
// over Streamable HTTP and HTTP+SSE.
func TestAggregateTypeScript(t *testing.T) {
	t.Parallel()
	f := newAggregateFixture(t)
	for _, agg := range aggregates {
		for _, transport := range tsTransports {
			t.Run(agg.mode+"/"+transport, func(t *testing.T) {
				out := runTS(t, f, transport, agg.name, "aggregate", strings.Join(agg.members, ","), f.fsDir)
				if name := field[struct{ Name string }](t, out, "server").Name; name != "mcpgw-aggregate-"+agg.name {
					t.Errorf("server name = %q", name)
				}
				checkAggregateTS(t, out, agg.members, `"text": "sampled by the interop client"`)
				progress := field[struct {
					Wire, Seen []progressStep
					Text       []string
				}](t, out, "progress")
				if diff := cmp.Diff([]progressStep{{1, 3}, {2, 3}, {3, 3}}, progress.Wire); diff != "" {
					t.Errorf("progress the gateway sent (-want +got):\n%s", diff)
				}
				if len(progress.Seen) == 0 {
					t.Error("the SDK passed no progress to onprogress")
				}
			})
		}
	}
}

// TestAggregateTypeScriptV2: the TypeScript SDK v2 client through the same
// aggregates. Its default era is the session era (initialize); this is
// what it speaks here.
func TestAggregateTypeScriptV2(t *testing.T) {
	t.Parallel()
	f := newAggregateFixture(t)
	for _, agg := range aggregates {
		t.Run(agg.mode+"/legacy", func(t *testing.T) {
			out := runNode(t, f, f.node.client2, "legacy", f.url(agg.name), "aggregate", strings.Join(agg.members, ","), f.fsDir)
			if v := field[string](t, out, "protocolVersion"); v != "2025-11-25" {
				t.Errorf("negotiated %q, want 2025-11-25", v)
			}
			if name := field[struct{ Name string }](t, out, "server").Name; name != "mcpgw-aggregate-"+agg.name {
				t.Errorf("server name = %q", name)
			}
			checkAggregateTS(t, out, agg.members, ts2SampledText)
		})
	}
}
