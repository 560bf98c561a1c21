package interop

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgw/mcpgw/internal/demo"
)

// The TypeScript SDK v2 client (@modelcontextprotocol/client from npm,
// pinned in interop/package.json), run with Node by interop/client2.mjs,
// through the gateway to the npm servers over the 2026-07-28 stateless
// Streamable HTTP transport. The v2 client speaks 2025-11-25 unless its
// versionNegotiation option says otherwise: "auto" probes with
// server/discover (falling back to initialize on anything but a definitive
// 2026-07-28 answer), "pin" insists on 2026-07-28.

const ts2SampledText = "sampled by the TypeScript v2 interop client"

// ts2Exchange is one HTTP exchange as client2.mjs recorded it.
type ts2Exchange struct {
	HTTP                  string
	ProtocolVersionHeader *string
	MethodHeader          *string
	NameHeader            *string
	SessionHeader         *string
	Method                *string
	MetaKeys              []string
	RequestState          bool
	InputResponses        []string
	Status                int
	Messages              []struct {
		Notification  string
		ResultType    *string
		InputRequests []string
		RequestState  bool
		Error         *int
	}
}

func (e ts2Exchange) String() string {
	b, _ := json.Marshal(e)
	return string(b)
}

func strOr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// checkModernWire asserts that every exchange is a 2026-07-28 POST with the
// headers and _meta the spec requires, starting with server/discover, and
// without initialize or a session.
func checkModernWire(t *testing.T, wire []ts2Exchange) {
	t.Helper()
	if len(wire) == 0 || strOr(wire[0].Method) != "server/discover" {
		t.Fatalf("the client did not start with server/discover: %v", wire)
	}
	wantMeta := []string{"io.modelcontextprotocol/clientCapabilities", "io.modelcontextprotocol/clientInfo", "io.modelcontextprotocol/protocolVersion"}
	for _, e := range wire {
		method := strOr(e.Method)
		if e.HTTP != "POST" || strOr(e.ProtocolVersionHeader) != "2026-07-28" || e.SessionHeader != nil {
			t.Errorf("not a sessionless 2026-07-28 POST: %v", e)
		}
		if method == "initialize" {
			t.Errorf("initialize on a 2026-07-28 connection: %v", e)
		}
		for _, k := range wantMeta {
			if !slices.Contains(e.MetaKeys, k) {
				t.Errorf("%s without _meta %s: %v", method, k, e)
			}
		}
		if strings.HasPrefix(method, "notifications/") {
			continue // the spec sets no headers for notification POSTs
		}
		if strOr(e.MethodHeader) != method {
			t.Errorf("Mcp-Method %q for %s", strOr(e.MethodHeader), method)
		}
		switch method {
		case "tools/call", "prompts/get", "resources/read":
			if e.NameHeader == nil {
				t.Errorf("%s without Mcp-Name: %v", method, e)
			}
		}
	}
}

func TestEverythingTypeScriptV2(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, srv := range everythingServers {
		t.Run(srv.mode+"/auto", func(t *testing.T) {
			out := runNode(t, f, f.node.client2, "auto", f.url(srv.name), "everything")
			if v := field[string](t, out, "protocolVersion"); v != "2026-07-28" {
				t.Errorf("negotiated %q, want 2026-07-28", v)
			}
			if era := field[string](t, out, "era"); era != "modern" {
				t.Errorf("era %q, want modern", era)
			}
			if name := field[struct{ Name string }](t, out, "server").Name; name != "mcp-servers/everything" {
				t.Errorf("server name = %q", name)
			}
			// A session-era server: every version works through the gateway.
			versions := field[struct{ SupportedVersions []string }](t, out, "discover").SupportedVersions
			if !slices.Contains(versions, "2026-07-28") || !slices.Contains(versions, "2025-11-25") {
				t.Errorf("server/discover supportedVersions = %v", versions)
			}
			tools := field[[]string](t, out, "tools")
			for _, want := range []string{"echo", "get-sum", "trigger-long-running-operation", "trigger-sampling-request"} {
				if !slices.Contains(tools, want) {
					t.Errorf("tools/list lacks %q: %v", want, tools)
				}
			}
			for _, c := range []struct {
				key  string
				want []string
			}{
				{"echo", []string{"Echo: hello from ts2"}},
				{"sum", []string{"The sum of 19 and 23 is 42."}},
				{"prompt", []string{"What's weather in Porto?"}},
			} {
				if diff := cmp.Diff(c.want, field[[]string](t, out, c.key)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", c.key, diff)
				}
			}
			if res := field[[]string](t, out, "resource"); len(res) != 1 || !strings.HasPrefix(res[0], "Resource 3: This is a plaintext resource") {
				t.Errorf("resources/read = %q", res)
			}

			progress := field[struct {
				Wire, Seen []progressStep
				Text       []string
			}](t, out, "progress")
			want := []progressStep{{1, 3}, {2, 3}, {3, 3}}
			if diff := cmp.Diff(want, progress.Wire); diff != "" {
				t.Errorf("progress notifications on the wire (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, progress.Seen); diff != "" {
				t.Errorf("progress notifications passed to onprogress (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"Long running operation completed. Duration: 0.3 seconds, Steps: 3."}, progress.Text); diff != "" {
				t.Errorf("long-running result (-want +got):\n%s", diff)
			}

			// Sampling: an input_required round trip that the client
			// fulfilled through its sampling handler and retried.
			const prompt = "Resource trigger-sampling-request context: ping"
			if diff := cmp.Diff([]string{prompt}, field[[]string](t, out, "samplingRequests")); diff != "" {
				t.Errorf("sampling requests the handler got (-want +got):\n%s", diff)
			}
			sampling := strings.Join(field[[]string](t, out, "sampling"), "")
			if !strings.Contains(sampling, ts2SampledText+" for: "+prompt) || !strings.Contains(sampling, `"model": "interop-model"`) {
				t.Errorf("sampling result = %q, want the client's answer in it", sampling)
			}

			// Elicitation, which this client did not declare: the launcher's
			// process saw the client's capabilities and does not offer the
			// tool; the daemon's was told it may elicit, and the gateway
			// refuses its request for this client with -32021.
			hasElicit := slices.Contains(tools, "trigger-elicitation-request")
			switch {
			case srv.mode == "launcher" && hasElicit:
				t.Errorf("launcher: trigger-elicitation-request listed for a client without elicitation")
			case srv.mode == "daemon":
				el := field[struct {
					Code int
					Data struct {
						RequiredCapabilities map[string]any
					}
				}](t, out, "elicitation")
				if _, ok := el.Data.RequiredCapabilities["elicitation"]; el.Code != -32021 || !ok {
					t.Errorf("daemon: elicitation for a client without the capability: %s, want -32021 naming elicitation", out["elicitation"])
				}
			}

			// subscriptions/listen: granted in daemon mode, nothing in
			// launcher mode (no process outlives its request).
			listen := field[struct {
				Honored map[string]any
				Closed  string
			}](t, out, "listen")
			wantHonored := map[string]any{}
			if srv.mode == "daemon" {
				wantHonored = map[string]any{"toolsListChanged": true, "promptsListChanged": true, "resourcesListChanged": true}
			}
			if diff := cmp.Diff(wantHonored, listen.Honored); diff != "" || listen.Closed != "local" {
				t.Errorf("listen: closed %q; honored filter (-want +got):\n%s", listen.Closed, diff)
			}

			wire := field[[]ts2Exchange](t, out, "wire")
			checkModernWire(t, wire)
			var rounds []ts2Exchange
			for _, e := range wire {
				if strOr(e.NameHeader) == "trigger-sampling-request" {
					rounds = append(rounds, e)
				}
			}
			ok := len(rounds) == 2 && !rounds[0].RequestState && len(rounds[0].Messages) == 1 &&
				strOr(rounds[0].Messages[0].ResultType) == "input_required" && rounds[0].Messages[0].RequestState &&
				slices.Equal(rounds[0].Messages[0].InputRequests, []string{"sampling/createMessage"}) &&
				rounds[1].RequestState && len(rounds[1].InputResponses) == 1 && len(rounds[1].Messages) == 1 &&
				strOr(rounds[1].Messages[len(rounds[1].Messages)-1].ResultType) == "complete"
			if !ok {
				t.Errorf("sampling: want tools/call → input_required, then a retry with requestState and inputResponses → complete; got %v", rounds)
			}
		})
	}
	// server-everything sends tools/list_changed after each initialize; on
	// a modern request's own process that is dropped, not held for a stream
	// that never comes (which would warn at the end of every request).
	if n := strings.Count(f.logs.String(), "undelivered server messages"); n != 0 {
		t.Errorf("%d warnings about undelivered server messages", n)
	}
}

// TestDemoTypeScriptV2: the v2 client with a Go SDK server that speaks
// 2026-07-28 itself (mcpgw's demo server): passed through in launcher mode,
// translated from the pooled process's initialize in daemon mode. "legacy"
// (the client's default) takes the session-based path.
func TestDemoTypeScriptV2(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, srv := range []struct{ name, mode string }{{"demo", "launcher"}, {"demod", "daemon"}} {
		for _, negotiation := range []string{"auto", "pin", "legacy"} {
			t.Run(srv.mode+"/"+negotiation, func(t *testing.T) {
				out := runNode(t, f, f.node.client2, negotiation, f.url(srv.name), "demo")
				want := "2026-07-28"
				if negotiation == "legacy" {
					want = "2025-11-25"
				}
				if v := field[string](t, out, "protocolVersion"); v != want {
					t.Errorf("negotiated %q, want %s", v, want)
				}
				if name := field[struct{ Name string }](t, out, "server").Name; name != demo.Name {
					t.Errorf("server name = %q", name)
				}
				if tools := field[[]string](t, out, "tools"); !slices.Contains(tools, "echo") || !slices.Contains(tools, "sleep") {
					t.Errorf("tools/list = %v", tools)
				}
				if diff := cmp.Diff([]string{"hello demo from ts2"}, field[[]string](t, out, "echo")); diff != "" {
					t.Errorf("echo (-want +got):\n%s", diff)
				}
				wire := field[[]ts2Exchange](t, out, "wire")
				if negotiation == "legacy" {
					if len(wire) == 0 || strOr(wire[0].Method) != "initialize" || field[*string](t, out, "sessionId") == nil {
						t.Errorf("legacy: want initialize and a session: %v", wire)
					}
					return
				}
				checkModernWire(t, wire)
			})
		}
	}
}
