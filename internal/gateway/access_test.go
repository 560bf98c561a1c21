package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/auth/authtest"
)

// Tokens of the access tests; long enough for value_env.
const (
	laptopToken = "laptop-secret-token-0123456789abcdefghijklmnop"
	ciToken     = "ci-secret-token-0123456789abcdefghijklmnopqrst"
	jwtAudience = "access-app-aud"
)

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// authYAML is a gateway with two tokens, optionally a JWT issuer, then
// extra top-level YAML, and the servers.
func authYAML(is *authtest.Issuer, extra string) string {
	y := fmt.Sprintf("listen: 127.0.0.1:0\nauth:\n  tokens:\n    - {name: laptop, sha256: %s}\n    - {name: ci, sha256: %s}\n", sha(laptopToken), sha(ciToken))
	if is != nil {
		y += fmt.Sprintf("  jwt: {issuer: %q, audiences: [%s]}\n", is.URL, jwtAudience)
	}
	return y + extra + "servers:\n"
}

func bearerHdr(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// headerTransport adds headers to every request of an SDK client.
type headerTransport struct {
	base http.RoundTripper
	hdr  http.Header
}

func (t *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range t.hdr {
		r.Header[k] = v
	}
	return t.base.RoundTrip(r)
}

// connectWithHeaders opens a Go SDK client session whose requests carry hdr.
func (h *harness) connectWithHeaders(server string, hdr http.Header) (*mcp.ClientSession, error) {
	h.t.Helper()
	client := mcp.NewClient(&mcp.Implementation{Name: "gateway-test", Version: "1"}, nil)
	tr := &http.Transport{}
	hc := &http.Client{Transport: &headerTransport{base: tr, hdr: hdr}}
	cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.url(server), HTTPClient: hc, MaxRetries: -1}, sessionEra)
	h.t.Cleanup(func() {
		if cs != nil {
			_ = cs.Close()
		}
		tr.CloseIdleConnections()
	})
	return cs, err
}

// session initializes a raw session with headers hdr (credentials).
func (h *harness) sessionAs(server string, hdr map[string]string) string {
	h.t.Helper()
	r := h.post(server, fmt.Sprintf(initBody, "2025-06-18"), hdr)
	if r.Status != http.StatusOK {
		h.t.Fatalf("initialize: %d %s", r.Status, r.Body)
	}
	sid := r.Header.Get("Mcp-Session-Id")
	with := map[string]string{"Mcp-Session-Id": sid}
	for k, v := range hdr {
		with[k] = v
	}
	if r := h.post(server, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, with); r.Status != http.StatusAccepted {
		h.t.Fatalf("initialized: %d %s", r.Status, r.Body)
	}
	return sid
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

const listBody = `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`

// TestSDKClientWithToken: the Go SDK client connects and calls a tool with
// a bearer token, and the access log names the token, never its value.
func TestSDKClientWithToken(t *testing.T) {
	h := newHarness(t, authYAML(nil, "")+serverYAML("t", ""))
	cs, err := h.connectWithHeaders("t", http.Header{"Authorization": {"Bearer " + laptopToken}})
	if err != nil {
		t.Fatalf("connect with token: %v", err)
	}
	if got := callText(t, cs, "echo", map[string]any{"text": "hi"}); !strings.Contains(got, "hi") {
		t.Errorf("echo = %q", got)
	}
	if len(h.logs.find("request", map[string]any{"method": "tools/call", "client": "laptop", "client_info": "gateway-test/1"})) == 0 {
		t.Error("no tools/call log line with client laptop and client_info gateway-test/1")
	}
	if _, err := h.connectWithHeaders("t", http.Header{"Authorization": {"Bearer wrong-token"}}); err == nil {
		t.Error("connect with a wrong token succeeded")
	}
	if _, err := h.connectWithHeaders("t", nil); err == nil {
		t.Error("connect without a token succeeded")
	}
	logs := h.logs.String()
	for _, secret := range []string{laptopToken, "wrong-token"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain the token %q", secret)
		}
	}
}

// TestUnauthenticated: 401 with a WWW-Authenticate challenge that points
// at the protected resource metadata, and the reason in the log.
func TestUnauthenticated(t *testing.T) {
	is := authtest.NewIssuer(t, authtest.NewRSA(t, "k1"))
	key := authtest.NewECDSA(t, "k2")
	is.SetKeys(authtest.NewRSA(t, "k1"), key)
	h := newHarness(t, authYAML(is, "public_url: https://mcp.example.com\nallowed_hosts: [mcp.example.com]\n")+serverYAML("t", ""))
	expired := is.Claims(jwtAudience, "a@example.com")
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	wrongAud := is.Claims("other-app", "a@example.com")
	meta := `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp/t"`
	tests := []struct {
		name      string
		hdr       map[string]string
		status    int
		challenge string
		logError  string
	}{
		{"no credentials", nil, 401, "Bearer " + meta, "authentication failed: missing credentials"},
		{"wrong token", bearerHdr("nope"), 401, "Bearer " + meta + `, error="invalid_token", error_description="unknown token"`, "authentication failed: unknown token"},
		{"expired JWT", map[string]string{"Cf-Access-Jwt-Assertion": authtest.Sign(t, key, expired)}, 401, "Bearer " + meta + `, error="invalid_token", error_description="expired"`, "authentication failed: expired"},
		{"wrong audience", map[string]string{"Cf-Access-Jwt-Assertion": authtest.Sign(t, key, wrongAud)}, 401, "Bearer " + meta + `, error="invalid_token", error_description="wrong audience"`, "authentication failed: wrong audience"},
		{"unknown key", map[string]string{"Cf-Access-Jwt-Assertion": authtest.Sign(t, authtest.NewRSA(t, "k9"), is.Claims(jwtAudience, "a@example.com"))}, 401, "Bearer " + meta + `, error="invalid_token", error_description="unknown key"`, "authentication failed: unknown key"},
		{"bad signature", map[string]string{"Cf-Access-Jwt-Assertion": authtest.Sign(t, &authtest.Key{ID: "k2", Alg: key.Alg, Priv: authtest.NewECDSA(t, "x").Priv}, is.Claims(jwtAudience, "a@example.com"))}, 401, "Bearer " + meta + `, error="invalid_token", error_description="bad signature"`, "authentication failed: bad signature"},
		{"valid JWT", map[string]string{"Cf-Access-Jwt-Assertion": authtest.Sign(t, key, is.Claims(jwtAudience, "A@Example.com"))}, 200, "", ""},
		{"unknown server is 401 before 404", nil, 401, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := "t"
			if strings.HasPrefix(tt.name, "unknown server") {
				server = "nosuch"
			}
			hdr := merge(map[string]string{"X-Request-Id": strings.ReplaceAll(tt.name, " ", "-")}, tt.hdr)
			r := h.post(server, fmt.Sprintf(initBody, "2025-06-18"), hdr)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if tt.challenge != "" {
				if got := r.Header.Get("WWW-Authenticate"); got != tt.challenge {
					t.Errorf("WWW-Authenticate:\n got %s\nwant %s", got, tt.challenge)
				}
			}
			lines := h.logs.find("request", map[string]any{"request_id": hdr["X-Request-Id"]})
			if len(lines) != 1 {
				t.Fatalf("%d log lines", len(lines))
			}
			if tt.logError != "" && lines[0]["error"] != tt.logError {
				t.Errorf("log error %q, want %q", lines[0]["error"], tt.logError)
			}
			if tt.status == 200 && lines[0]["client"] != "a@example.com" {
				t.Errorf("log client %q, want a@example.com", lines[0]["client"])
			}
			for _, v := range tt.hdr {
				if strings.Contains(h.logs.String(), strings.TrimPrefix(v, "Bearer ")) {
					t.Errorf("the log contains the credential")
				}
			}
		})
	}
}

func TestProtectedResourceMetadata(t *testing.T) {
	is := authtest.NewIssuer(t)
	withPublic := newHarness(t, authYAML(is, "public_url: https://mcp.example.com\nallowed_hosts: [mcp.example.com]\n")+serverYAML("t", ""))
	noPublic := newHarness(t, authYAML(nil, "")+serverYAML("t", ""))
	noAuth := newHarness(t, oneServer(""))
	get := func(h *harness, path string) *rawResponse {
		req, err := http.NewRequest(http.MethodGet, h.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", "https://some-web-client.example")
		return h.do(req)
	}
	tests := []struct {
		name   string
		h      *harness
		path   string
		status int
		want   map[string]any
	}{
		{"per server", withPublic, "/.well-known/oauth-protected-resource/mcp/t", 200, map[string]any{
			"resource": "https://mcp.example.com/mcp/t", "authorization_servers": []any{is.URL},
			"bearer_methods_supported": []any{"header"}, "resource_name": "mcpgw",
		}},
		{"gateway", withPublic, "/.well-known/oauth-protected-resource", 200, map[string]any{
			"resource": "https://mcp.example.com", "authorization_servers": []any{is.URL},
			"bearer_methods_supported": []any{"header"}, "resource_name": "mcpgw",
		}},
		{"tokens only, no public_url: from Host", noPublic, "/.well-known/oauth-protected-resource/mcp/t", 200, map[string]any{
			"resource": noPublic.base + "/mcp/t", "bearer_methods_supported": []any{"header"}, "resource_name": "mcpgw",
		}},
		{"unknown server", withPublic, "/.well-known/oauth-protected-resource/mcp/nosuch", 404, nil},
		{"other path", withPublic, "/.well-known/oauth-protected-resource/x", 404, nil},
		{"without auth", noAuth, "/.well-known/oauth-protected-resource/mcp/t", 404, nil},
		{"Host not allowed", withPublic, "HOST evil.example.com", 403, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *rawResponse
			if host, ok := strings.CutPrefix(tt.path, "HOST "); ok {
				req, _ := http.NewRequest(http.MethodGet, tt.h.base+metadataPath, nil)
				req.Host = host
				r = tt.h.do(req)
			} else {
				r = get(tt.h, tt.path)
			}
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if tt.want == nil {
				return
			}
			var got map[string]any
			if err := json.Unmarshal(r.Body, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHostOriginMatrixWithAuth: Host and Origin are checked before
// credentials (a rebinding page gets 403 whatever it sends), and valid
// credentials never make a bad Host or Origin acceptable.
func TestHostOriginMatrixWithAuth(t *testing.T) {
	h := newHarness(t, authYAML(nil, "allowed_hosts: [mcp.example.com]\nallowed_origins: [https://claude.ai]\n")+serverYAML("t", ""))
	hosts := map[string]string{"loopback": "", "allowed": "mcp.example.com", "other": "evil.example.com"}
	origins := map[string]string{"none": "", "allowed": "https://claude.ai", "loopback": "http://localhost:6274", "other": "https://evil.example.com"}
	creds := map[string]map[string]string{"token": bearerHdr(laptopToken), "none": nil, "wrong": bearerHdr("nope")}
	for hn, host := range hosts {
		for on, origin := range origins {
			for cn, cred := range creds {
				// Past Host, Origin and credentials, a request without a
				// session is a 400: no process is started.
				want := 400
				switch {
				case hn == "other" || on == "other":
					want = 403
				case cn != "token":
					want = 401
				}
				t.Run(fmt.Sprintf("host=%s/origin=%s/cred=%s", hn, on, cn), func(t *testing.T) {
					req, err := http.NewRequest(http.MethodPost, h.url("t"), strings.NewReader(listBody))
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					if host != "" {
						req.Host = host
					}
					if origin != "" {
						req.Header.Set("Origin", origin)
					}
					for k, v := range cred {
						req.Header.Set(k, v)
					}
					r := h.do(req)
					if r.Status != want {
						t.Errorf("status %d, want %d: %s", r.Status, want, r.Body)
					}
				})
			}
		}
	}
}

func TestAllowLists(t *testing.T) {
	is := authtest.NewIssuer(t, authtest.NewECDSA(t, "k"))
	key := authtest.NewECDSA(t, "k")
	is.SetKeys(key)
	h := newHarness(t, authYAML(is, "")+
		serverYAML("open", "")+
		serverYAML("team", `    allow: ["*@example.com", laptop]`+"\n")+
		serverYAML("bob", `    allow: [bob@example.com]`+"\n"))
	jwtFor := func(email string) map[string]string {
		return map[string]string{"Cf-Access-Jwt-Assertion": authtest.Sign(t, key, is.Claims(jwtAudience, email))}
	}
	tests := []struct {
		who    string
		hdr    map[string]string
		server string
		want   int
	}{
		{"laptop", bearerHdr(laptopToken), "open", 200},
		{"laptop", bearerHdr(laptopToken), "team", 200},
		{"laptop", bearerHdr(laptopToken), "bob", 403},
		{"ci", bearerHdr(ciToken), "team", 403},
		{"alice@example.com", jwtFor("alice@example.com"), "team", 200},
		{"Bob@Example.com", jwtFor("Bob@Example.com"), "bob", 200},
		{"alice@sub.example.com", jwtFor("alice@sub.example.com"), "team", 403},
		{"alice@example.com.evil.net", jwtFor("alice@example.com.evil.net"), "team", 403},
		{"alice@example.com", jwtFor("alice@example.com"), "bob", 403},
	}
	for _, tt := range tests {
		t.Run(tt.who+"→"+tt.server, func(t *testing.T) {
			r := h.post(tt.server, fmt.Sprintf(initBody, "2025-06-18"), tt.hdr)
			if r.Status != tt.want {
				t.Errorf("status %d, want %d: %s", r.Status, tt.want, r.Body)
			}
			if sid := r.Header.Get("Mcp-Session-Id"); sid != "" {
				req, _ := http.NewRequest(http.MethodDelete, h.url(tt.server), nil)
				req.Header.Set("Mcp-Session-Id", sid)
				for k, v := range tt.hdr {
					req.Header.Set(k, v)
				}
				if r := h.do(req); r.Status != http.StatusNoContent {
					t.Errorf("DELETE: %d", r.Status)
				}
			}
		})
	}
}

// TestSessionBoundToIdentity: another identity presenting a session's id
// gets the same 404 as for an unknown session, on POST, GET and DELETE.
func TestSessionBoundToIdentity(t *testing.T) {
	h := newHarness(t, authYAML(nil, "")+serverYAML("t", ""))
	laptop, ci := bearerHdr(laptopToken), bearerHdr(ciToken)
	sid := h.sessionAs("t", laptop)
	unknown := h.post("t", listBody, merge(ci, map[string]string{"Mcp-Session-Id": "no-such-session"}))
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		t.Run(method, func(t *testing.T) {
			var body *strings.Reader
			if method == http.MethodPost {
				body = strings.NewReader(listBody)
			} else {
				body = strings.NewReader("")
			}
			req, err := http.NewRequest(method, h.url("t"), body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Authorization", ci["Authorization"])
			r := h.do(req)
			if r.Status != http.StatusNotFound {
				t.Fatalf("status %d, want 404: %s", r.Status, r.Body)
			}
			if method == http.MethodPost && string(r.Body) != string(unknown.Body) {
				t.Errorf("body differs from an unknown session's:\n got %s\nwant %s", r.Body, unknown.Body)
			}
		})
	}
	// The owner still has the session: the hijack attempts did not end it.
	if r := h.post("t", listBody, merge(laptop, map[string]string{"Mcp-Session-Id": sid})); r.Status != http.StatusOK {
		t.Errorf("owner after hijack attempts: %d %s", r.Status, r.Body)
	}
}

// TestRateLimitBurst: a parallel burst passes exactly the bucket's size
// (plus what refills while it runs), the rest gets 429 with Retry-After and
// -32029; another identity's bucket is untouched; ping is not counted.
func TestRateLimitBurst(t *testing.T) {
	// 0.5/s: at most one token refills during a burst that takes < 2s.
	h := newHarness(t, authYAML(nil, "")+serverYAML("t", "    max_concurrent: 100\n    rate: {requests_per_second: 0.5, burst: 10, per: identity}\n"))
	burst := func(hdr map[string]string, sid string, n int) (ok int, limited []*rawResponse) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/list"}`, 100+i)
				r := h.post("t", body, merge(hdr, map[string]string{"Mcp-Session-Id": sid}))
				mu.Lock()
				defer mu.Unlock()
				switch r.Status {
				case http.StatusOK:
					ok++
				case http.StatusTooManyRequests:
					limited = append(limited, r)
				default:
					t.Errorf("status %d: %s", r.Status, r.Body)
				}
			})
		}
		wg.Wait()
		return ok, limited
	}
	for _, who := range []map[string]string{bearerHdr(laptopToken), bearerHdr(ciToken)} {
		start := time.Now()
		sid := h.sessionAs("t", who) // initialize takes one token; initialized none
		ok, limited := burst(who, sid, 30)
		refilled := int(time.Since(start).Seconds() * 0.5)
		if ok < 9 || ok > 9+refilled {
			t.Errorf("%s: %d requests passed, want 9 (+%d refilled)", who["Authorization"][:12], ok, refilled)
		}
		if len(limited) != 30-ok {
			t.Errorf("%d limited, want %d", len(limited), 30-ok)
		}
		for _, r := range limited[:1] {
			var body struct {
				ID    json.RawMessage `json:"id"`
				Error struct {
					Code int `json:"code"`
					Data struct {
						RetryAfterSeconds int `json:"retryAfterSeconds"`
					} `json:"data"`
				} `json:"error"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
			if body.Error.Code != -32029 || body.Error.Data.RetryAfterSeconds < 1 || len(body.ID) < 3 {
				t.Errorf("429 body: %s", r.Body)
			}
			if ra := r.Header.Get("Retry-After"); ra != fmt.Sprint(body.Error.Data.RetryAfterSeconds) {
				t.Errorf("Retry-After %q, data.retryAfterSeconds %d", ra, body.Error.Data.RetryAfterSeconds)
			}
		}
		// ping and notifications are not counted.
		if r := h.post("t", `{"jsonrpc":"2.0","id":"p","method":"ping"}`, merge(who, map[string]string{"Mcp-Session-Id": sid})); r.Status != http.StatusOK {
			t.Errorf("ping when limited: %d %s", r.Status, r.Body)
		}
	}
}

// TestRateLimitPerIP: per: ip keys on CF-Connecting-IP only from trusted
// proxies; new sessions have their own bucket.
func TestRateLimitPerIP(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted string
		want    []int // statuses of initialize from 10.0.0.1, 10.0.0.1, 10.0.0.2
	}{
		{"trusted proxy", "trusted_proxies: [127.0.0.1]\n", []int{200, 429, 200}},
		{"untrusted peer: header ignored", "trusted_proxies: [10.0.0.0/8]\n", []int{200, 429, 429}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, authYAML(nil, tt.trusted+"session_rate: {requests_per_second: 0.01, burst: 1, per: ip}\n")+serverYAML("t", ""))
			var got []int
			for _, ip := range []string{"10.0.0.1", "10.0.0.1", "10.0.0.2"} {
				r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), merge(bearerHdr(laptopToken), map[string]string{"Cf-Connecting-Ip": ip}))
				got = append(got, r.Status)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			wantIP := "10.0.0.2"
			if tt.want[2] == 429 {
				wantIP = "127.0.0.1"
			}
			if len(h.logs.find("request", map[string]any{"client_ip": wantIP})) == 0 {
				t.Errorf("no log line with client_ip %s", wantIP)
			}
		})
	}
}

// TestReadyzDetail: with auth required, anonymous callers learn only the
// status; authenticated callers get the per-server detail.
func TestReadyzDetail(t *testing.T) {
	h := newHarness(t, authYAML(nil, "")+serverYAML("t", ""))
	get := func(hdr map[string]string) map[string]any {
		req, _ := http.NewRequest(http.MethodGet, h.base+"/readyz", nil)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		r := h.do(req)
		if r.Status != http.StatusOK {
			t.Fatalf("readyz: %d %s", r.Status, r.Body)
		}
		var m map[string]any
		if err := json.Unmarshal(r.Body, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if diff := cmp.Diff(map[string]any{"status": "ready"}, get(nil)); diff != "" {
		t.Errorf("anonymous (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"status": "ready"}, get(bearerHdr("wrong"))); diff != "" {
		t.Errorf("wrong token (-want +got):\n%s", diff)
	}
	if got := get(bearerHdr(laptopToken)); got["servers"] == nil {
		t.Errorf("authenticated caller got no detail: %v", got)
	}
}

// TestModeNoneWarns: opting out of authentication explicitly is allowed on
// a public host, logged as a warning, and every caller is anonymous.
func TestModeNoneWarns(t *testing.T) {
	h := newHarness(t, "listen: 127.0.0.1:0\nauth: {mode: none}\nallowed_hosts: [mcp.example.com]\nservers:\n"+serverYAML("t", ""))
	if len(h.logs.find("authentication is off (auth: {mode: none}): anyone who can reach the gateway can use every server", map[string]any{"level": "WARN"})) != 1 {
		t.Error("no warning about auth mode none")
	}
	r := h.post("t", listBody, merge(bearerHdr("ignored"), map[string]string{"Mcp-Session-Id": "x"}))
	if r.Status != http.StatusNotFound {
		t.Errorf("status %d, want 404 (no credentials needed): %s", r.Status, r.Body)
	}
	if len(h.logs.find("request", map[string]any{"client": "anonymous", "status": 404})) != 1 {
		t.Error("request not logged as anonymous")
	}
}

// TestModernAccess: the 2026-07-28 path goes through the same front door:
// 401 without credentials, 403 for an identity the allow list does not
// name, and the caller's identity in the access log and in what a
// requestState is bound to.
func TestModernAccess(t *testing.T) {
	h := newHarness(t, authYAML(nil, "")+serverYAML("solo", "    mode: daemon\n    allow: [laptop]\n")+
		serverYAML("team", "    mode: daemon\n    allow: [laptop, ci]\n"))
	body := modernBody(1, "tools/call", callParams("echo", map[string]any{"text": "x"}))
	hdr := modernHdr("tools/call", "echo")
	if r := h.post("solo", body, hdr); r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no credentials: %d %s, want 401 with WWW-Authenticate", r.Status, r.Body)
	}
	if r := h.post("solo", body, merge(hdr, bearerHdr(ciToken))); r.Status != http.StatusForbidden {
		t.Errorf("ci: %d %s, want 403", r.Status, r.Body)
	}
	if r := h.post("solo", body, merge(hdr, bearerHdr(laptopToken))); r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"text":"x"`) {
		t.Errorf("laptop: %d %s, want the echo", r.Status, r.Body)
	}
	if len(h.logs.find("request", map[string]any{"client": "laptop", "method": "tools/call", "status": 200})) != 1 {
		t.Error("the access log does not name the caller of the modern request")
	}

	// A requestState is bound to the identity that made the request, and
	// to this gateway instance.
	params := sampleParams()
	sample := modernHdr("tools/call", "sample")
	ir := h.firstRound("team", params, bearerHdr(laptopToken))
	var key string
	for k := range ir.InputRequests {
		key = k
	}
	params["requestState"] = ir.RequestState
	params["inputResponses"] = map[string]any{key: map[string]any{"role": "assistant", "model": "m", "content": map[string]any{"type": "text", "text": "A"}}}
	retry := modernBody(3, "tools/call", params)
	if r := h.post("team", retry, merge(sample, bearerHdr(ciToken))); r.Status != 400 || r.errorCode() != -32602 {
		t.Errorf("retry by another identity: %d %s, want 400 -32602", r.Status, r.Body)
	}
	other := newHarness(t, authYAML(nil, "")+serverYAML("team", "    mode: daemon\n"))
	if r := other.post("team", retry, merge(sample, bearerHdr(laptopToken))); r.Status != 400 || r.errorCode() != -32602 {
		t.Errorf("retry at another gateway instance: %d %s, want 400 -32602", r.Status, r.Body)
	}
	if r := h.post("team", retry, merge(sample, bearerHdr(laptopToken))); r.Status != 200 || !strings.Contains(string(r.Body), `\"text\":\"A\"`) {
		t.Errorf("retry by the same identity: %d %s", r.Status, r.Body)
	}
}
