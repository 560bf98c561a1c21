package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestCORS: a listed origin's preflight is answered before authentication
// (preflights carry no credentials), its requests get
// Access-Control-Allow-Origin and the MCP headers exposed, also on a 401 so
// that a browser client reads WWW-Authenticate; an origin that is not
// allowed gets 403, and a loopback origin that is accepted but not listed
// gets no CORS headers and a 403 preflight.
func TestCORS(t *testing.T) {
	h := newHarness(t, authYAML(nil, "allowed_origins: [\"https://inspector.example\"]\n")+serverYAML("t", ""))
	const listed = "https://inspector.example"
	preflight := func(origin, path, method, headers string) *rawResponse {
		t.Helper()
		req, err := http.NewRequest(http.MethodOptions, h.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			req.Header.Set("Access-Control-Request-Headers", headers)
		}
		return h.do(req)
	}
	listHeader := func(v string) []string {
		var out []string
		for p := range strings.SplitSeq(v, ",") {
			out = append(out, strings.ToLower(strings.TrimSpace(p)))
		}
		return out
	}

	for _, tc := range []struct {
		name, origin, path, method string
		want                       int
	}{
		{"listed origin, POST", listed, "/mcp/t", "POST", 204},
		{"listed origin, GET", listed, "/mcp/t", "GET", 204},
		{"listed origin, DELETE", listed, "/mcp/t", "DELETE", 204},
		{"listed origin, unknown server: reveals nothing", listed, "/mcp/nope", "POST", 204},
		{"listed origin, PUT", listed, "/mcp/t", "PUT", 405},
		{"foreign origin", "https://evil.example", "/mcp/t", "POST", 403},
		{"null origin", "null", "/mcp/t", "POST", 403},
		{"loopback origin not listed", "http://localhost:6274", "/mcp/t", "POST", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := preflight(tc.origin, tc.path, tc.method, "content-type, mcp-session-id, mcp-protocol-version, authorization, mcp-param-region, x-evil")
			if r.Status != tc.want {
				t.Fatalf("preflight: status %d, want %d (body %.300s)", r.Status, tc.want, r.Body)
			}
			acao := r.Header.Get("Access-Control-Allow-Origin")
			if tc.want != 204 {
				if tc.origin != listed && acao != "" {
					t.Errorf("refused preflight has Access-Control-Allow-Origin %q", acao)
				}
				return
			}
			if acao != tc.origin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", acao, tc.origin)
			}
			if m := listHeader(r.Header.Get("Access-Control-Allow-Methods")); !slices.Contains(m, strings.ToLower(tc.method)) {
				t.Errorf("Access-Control-Allow-Methods %v lacks %s", m, tc.method)
			}
			allowed := listHeader(r.Header.Get("Access-Control-Allow-Headers"))
			for _, want := range []string{"content-type", "mcp-session-id", "mcp-protocol-version", "authorization", "last-event-id", "mcp-param-region"} {
				if !slices.Contains(allowed, want) {
					t.Errorf("Access-Control-Allow-Headers %v lacks %s", allowed, want)
				}
			}
			if slices.Contains(allowed, "x-evil") {
				t.Errorf("Access-Control-Allow-Headers %v echoes an arbitrary header", allowed)
			}
			if !slices.Contains(r.Header.Values("Vary"), "Origin") {
				t.Errorf("Vary %v lacks Origin", r.Header.Values("Vary"))
			}
		})
	}

	// The requests themselves: a listed origin reads the answer and the
	// session id; an accepted loopback origin that is not listed gets no
	// CORS headers (the browser hides the answer from the page).
	exposed := func(r *rawResponse) []string { return listHeader(r.Header.Get("Access-Control-Expose-Headers")) }
	unauth := h.post("t", fmt.Sprintf(initBody, "2025-11-25"), map[string]string{"Origin": listed})
	if unauth.Status != http.StatusUnauthorized || unauth.Header.Get("Access-Control-Allow-Origin") != listed ||
		!slices.Contains(exposed(unauth), "www-authenticate") {
		t.Errorf("401 to a listed origin: status %d, Allow-Origin %q, Expose %v; want 401 the page can read, WWW-Authenticate exposed",
			unauth.Status, unauth.Header.Get("Access-Control-Allow-Origin"), exposed(unauth))
	}
	hdr := bearerHdr(laptopToken)
	hdr["Origin"] = listed
	init := h.post("t", fmt.Sprintf(initBody, "2025-11-25"), hdr)
	if init.Status != http.StatusOK || init.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize from a listed origin: %d %s", init.Status, init.Body)
	}
	if init.Header.Get("Access-Control-Allow-Origin") != listed || !slices.Contains(exposed(init), "mcp-session-id") ||
		!slices.Contains(exposed(init), "mcp-protocol-version") {
		t.Errorf("initialize from a listed origin: Allow-Origin %q, Expose %v; want the origin, Mcp-Session-Id and Mcp-Protocol-Version exposed",
			init.Header.Get("Access-Control-Allow-Origin"), exposed(init))
	}
	hdr["Origin"] = "http://localhost:6274"
	if r := h.post("t", fmt.Sprintf(initBody, "2025-11-25"), hdr); r.Status != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("initialize from an unlisted loopback origin: %d, Allow-Origin %q; want 200 without CORS headers", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}
	hdr["Origin"] = "https://evil.example"
	if r := h.post("t", fmt.Sprintf(initBody, "2025-11-25"), hdr); r.Status != http.StatusForbidden || r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("initialize from a foreign origin: %d, Allow-Origin %q; want 403 without CORS headers", r.Status, r.Header.Get("Access-Control-Allow-Origin"))
	}
	// OPTIONS that is no preflight (no Origin) is still a request like
	// any other: authenticated first, then 405.
	req, _ := http.NewRequest(http.MethodOptions, h.url("t"), nil)
	if r := h.do(req); r.Status != http.StatusUnauthorized {
		t.Errorf("OPTIONS without Origin and credentials: %d, want 401", r.Status)
	}
}
