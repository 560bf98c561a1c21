package gateway

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mcpgw/mcpgw/internal/auth/authtest"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// exposureYAML exposes echo and whoami of the test server (sleep is
// allowed but denied; crash and the rest are outside allow), one prompt
// and the docs resources.
const exposureYAML = `    tools:
      allow: ["echo", "who*", "sleep", "cr?sh"]
      deny: ["sleep", "crash"]
    prompts: {deny: ["admin_*"]}
    resources: {allow: ["test://docs/*"]}
`

// eras are the two protocol eras a Go SDK client speaks to the gateway.
var eras = []struct {
	name string
	opts *mcp.ClientSessionOptions
}{
	{"session-era", sessionEra},
	{"2026-07-28", nil},
}

// TestToolExposure: a server's allow/deny globs decide what every client
// sees in tools/list, prompts/list, resources/list and
// resources/templates/list, in both protocol eras and both modes, and a
// call to a hidden name gets the server's own answer for an unknown name,
// with the name the client sent, while the server never sees it.
func TestToolExposure(t *testing.T) {
	for _, mode := range []string{"launcher", "daemon"} {
		for _, era := range eras {
			t.Run(mode+"/"+era.name, func(t *testing.T) {
				h := newHarness(t, oneServer(exposureYAML+"    mode: "+mode+"\n"))
				cs := h.connectVersion("t", nil, &http.Transport{}, era.opts)
				ctx := context.Background()

				tools, err := cs.ListTools(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, tl := range tools.Tools {
					names = append(names, tl.Name)
				}
				if diff := cmp.Diff([]string{"echo", "whoami"}, names); diff != "" {
					t.Errorf("tools/list (-want +got):\n%s", diff)
				}
				if got := callText(t, cs, "echo", map[string]any{"text": "hi"}); got != "hi" {
					t.Errorf("echo = %q", got)
				}

				// crash would end the process: the server must not get it.
				_, hiddenErr := cs.CallTool(ctx, &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{"code": 3}})
				_, unknownErr := cs.CallTool(ctx, &mcp.CallToolParams{Name: "nosuch", Arguments: map[string]any{"code": 3}})
				if hiddenErr == nil || unknownErr == nil {
					t.Fatalf("hidden call err = %v, unknown call err = %v; want errors", hiddenErr, unknownErr)
				}
				if got, want := hiddenErr.Error(), strings.ReplaceAll(unknownErr.Error(), "nosuch", "crash"); got != want {
					t.Errorf("hidden tool's answer = %q\nwant the unknown tool's %q", got, want)
				}
				if strings.Contains(hiddenErr.Error(), "mcpgw-hidden") {
					t.Errorf("the placeholder leaked: %v", hiddenErr)
				}
				if got := callText(t, cs, "echo", map[string]any{"text": "still here"}); got != "still here" {
					t.Errorf("echo after the hidden call = %q: did the server get crash?", got)
				}

				prompts, err := cs.ListPrompts(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				names = nil
				for _, p := range prompts.Prompts {
					names = append(names, p.Name)
				}
				if diff := cmp.Diff([]string{"review"}, names); diff != "" {
					t.Errorf("prompts/list (-want +got):\n%s", diff)
				}
				if _, err := cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "review"}); err != nil {
					t.Errorf("prompts/get review: %v", err)
				}
				_, hiddenErr = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "admin_reset"})
				_, unknownErr = cs.GetPrompt(ctx, &mcp.GetPromptParams{Name: "nosuch"})
				if hiddenErr == nil || unknownErr == nil || hiddenErr.Error() != strings.ReplaceAll(unknownErr.Error(), "nosuch", "admin_reset") {
					t.Errorf("hidden prompt's answer = %v, want the unknown prompt's %v", hiddenErr, unknownErr)
				}

				res, err := cs.ListResources(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				names = nil
				for _, r := range res.Resources {
					names = append(names, r.URI)
				}
				if diff := cmp.Diff([]string{"test://docs/readme"}, names); diff != "" {
					t.Errorf("resources/list (-want +got):\n%s", diff)
				}
				tmpl, err := cs.ListResourceTemplates(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				names = nil
				for _, r := range tmpl.ResourceTemplates {
					names = append(names, r.URITemplate)
				}
				if diff := cmp.Diff([]string{"test://docs/{name}"}, names); diff != "" {
					t.Errorf("resources/templates/list (-want +got):\n%s", diff)
				}
				if _, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://docs/readme"}); err != nil {
					t.Errorf("resources/read of an exposed resource: %v", err)
				}
				_, hiddenErr = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://secret/keys"})
				_, unknownErr = cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "test://secret/nosuch"})
				if hiddenErr == nil || unknownErr == nil || hiddenErr.Error() != strings.ReplaceAll(unknownErr.Error(), "nosuch", "keys") {
					t.Errorf("hidden resource's answer = %v, want the unknown resource's %v", hiddenErr, unknownErr)
				}
			})
		}
	}
}

// TestToolExposureUnrestricted: without globs every tool is listed.
func TestToolExposureUnrestricted(t *testing.T) {
	h := newHarness(t, oneServer(""))
	cs := h.connect("t", nil)
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tools.Tools, func(tl *mcp.Tool) bool { return tl.Name == "crash" }) {
		t.Errorf("crash is missing from an unrestricted list")
	}
}

// connectAs opens a Go SDK client session whose requests carry hdr, in
// the protocol era so selects (nil: 2026-07-28).
func (h *harness) connectAs(server string, hdr http.Header, so *mcp.ClientSessionOptions) *mcp.ClientSession {
	h.t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "gateway-test", Version: "1"}, nil)
	tr := &http.Transport{}
	hc := &http.Client{Transport: &headerTransport{base: tr, hdr: hdr}}
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.url(server), HTTPClient: hc, MaxRetries: -1}, so)
	if err != nil {
		h.t.Fatalf("connect to %s: %v", server, err)
	}
	h.t.Cleanup(func() {
		_ = cs.Close()
		tr.CloseIdleConnections()
	})
	return cs
}

// policyYAML's rules: ci may use echo and whoami only; whoami is for
// example.com addresses; crash for the admins group of a JWT.
const policyYAML = `    policy:
      - {allow: 'identity.name == "ci" && tool.name in ["echo", "whoami"]'}
      - {deny: 'identity.name == "ci"'}
      - {deny: 'tool.name == "whoami" && !identity.email.endsWith("@example.com")'}
      - deny: >-
          tool.name == "crash" && method.startsWith("tools/") &&
          !(has(identity.claims.groups) && "admins" in identity.claims.groups)
`

// TestPolicyRules: two identities (and a JWT's email and claims) see
// different tool lists through the same server, in both protocol eras,
// and a call to a tool hidden by a rule gets the unknown tool's answer.
func TestPolicyRules(t *testing.T) {
	is := authtest.NewIssuer(t, authtest.NewRSA(t, "k1"))
	key := authtest.NewRSA(t, "k1")
	is.SetKeys(key)
	claims := is.Claims(jwtAudience, "alice@example.com")
	claims["groups"] = []string{"admins"}
	alice := http.Header{"Cf-Access-Jwt-Assertion": {authtest.Sign(t, key, claims)}}
	for _, mode := range []string{"launcher", "daemon"} {
		h := newHarness(t, authYAML(is, "")+serverYAML("t", policyYAML+"    mode: "+mode+"\n"))
		for _, era := range eras {
			t.Run(mode+"/"+era.name, func(t *testing.T) {
				all := []string{"echo", "crash", "whoami"} // in the server's order
				for _, c := range []struct {
					who  string
					hdr  http.Header
					want []string // of all
				}{
					{"ci", http.Header{"Authorization": {"Bearer " + ciToken}}, []string{"echo", "whoami"}},
					{"laptop", http.Header{"Authorization": {"Bearer " + laptopToken}}, []string{"echo"}},
					{"alice", alice, all},
				} {
					cs := h.connectAs("t", c.hdr, era.opts)
					tools, err := cs.ListTools(context.Background(), nil)
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, tl := range tools.Tools {
						if slices.Contains(all, tl.Name) {
							got = append(got, tl.Name)
						}
					}
					if diff := cmp.Diff(c.want, got); diff != "" {
						t.Errorf("%s's tools (-want +got):\n%s", c.who, diff)
					}
					if c.who == "alice" {
						continue // she may call crash
					}
					_, hiddenErr := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{"code": 3}})
					_, unknownErr := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "nosuch", Arguments: map[string]any{"code": 3}})
					if hiddenErr == nil || unknownErr == nil || hiddenErr.Error() != strings.ReplaceAll(unknownErr.Error(), "nosuch", "crash") {
						t.Errorf("%s: hidden tool's answer = %v, want the unknown tool's %v", c.who, hiddenErr, unknownErr)
					}
					if got := callText(t, cs, "echo", map[string]any{"text": "alive"}); got != "alive" {
						t.Errorf("%s: echo after the hidden call = %q", c.who, got)
					}
				}
			})
		}
	}
}
