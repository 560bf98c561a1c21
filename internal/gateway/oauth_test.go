package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgw/mcpgw/internal/auth"
	"github.com/mcpgw/mcpgw/internal/oauth"
	"github.com/mcpgw/mcpgw/internal/oauth/oauthtest"
	"github.com/mcpgw/mcpgw/internal/oauth/sqlitestore"
)

// oauthHarness is a gateway with auth.oauth, its users logging in at a
// real OpenID Connect provider on loopback.
type oauthHarness struct {
	*harness
	prov   *oauthtest.Provider
	store  *sqlitestore.Store
	as     *oauth.Server
	client *oauthtest.Client
}

// newOAuthHarness starts a gateway whose config is the YAML of extraAuth
// (indented under auth:) and top (top-level keys) around auth.oauth;
// public_url is the listener's URL.
func newOAuthHarness(t testing.TB, top, oauthExtra, authExtra string, authOpts *auth.Options) *oauthHarness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	prov := oauthtest.NewProvider(t, base+"/oauth/callback")
	t.Setenv("MCPGW_TEST_OIDC_SECRET", prov.ClientSecret)
	yaml := fmt.Sprintf(`public_url: %s
state_dir: %s
%s
auth:
%s
  oauth:
    login: {oidc: {issuer: %s, client_id: %s, client_secret_env: MCPGW_TEST_OIDC_SECRET}}
    users: ["*@zitadel.ch"]
%s
servers:
%s%s`, base, t.TempDir(), top, authExtra, prov.Issuer, prov.ClientID, oauthExtra, serverYAML("t", ""), serverYAML("u", ""))
	cfg := testConfig(t, yaml)
	logs := &logBuffer{}
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.Log.Level))
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: lvl}))
	st, err := sqlitestore.Open(context.Background(), cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	as, err := oauth.New(context.Background(), cfg, st, &oauth.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	g := New(cfg, &Options{Logger: log, Getenv: os.LookupEnv, Version: "test", OAuth: as, Auth: authOpts})
	h := &harness{t: t, g: g, base: base, logs: logs, cfg: cfg, done: make(chan error, 1)}
	go func() { h.done <- g.Serve(ln) }()
	t.Cleanup(func() {
		h.shutdown(10 * time.Second)
		as.Close()
		_ = st.Close()
	})
	c := &oauthtest.Client{Base: base}
	if err := c.Register(context.Background(), "Gateway Test"); err != nil {
		t.Fatal(err)
	}
	return &oauthHarness{harness: h, prov: prov, store: st, as: as, client: c}
}

func (h *oauthHarness) token(server, scope string) *oauthtest.Tokens {
	h.t.Helper()
	tok, err := h.client.Token(context.Background(), h.url(server), scope, h.prov.User, h.prov.Password)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func TestOAuthTokenOpensOnlyItsServer(t *testing.T) {
	h := newOAuthHarness(t, "", "", "", nil)
	tok := h.token("t", "")
	init := fmt.Sprintf(initBody, "2025-06-18")
	if r := h.post("t", init, bearerHdr(tok.AccessToken)); r.Status != http.StatusOK {
		t.Fatalf("token on its own server: %d %s", r.Status, r.Body)
	}
	if l := h.logs.find("request", map[string]any{"tool": "t", "status": 200}); len(l) == 0 || l[0]["client"] != h.prov.UserEmail {
		t.Errorf("the access log does not name the user: %v", l)
	}
	r := h.post("u", init, bearerHdr(tok.AccessToken))
	meta := `resource_metadata="` + h.base + `/.well-known/oauth-protected-resource/mcp/u"`
	if want := "Bearer " + meta + `, error="invalid_token", error_description="wrong audience"`; r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != want {
		t.Errorf("token for t on u: %d %q, want 401 %q", r.Status, r.Header.Get("WWW-Authenticate"), want)
	}
	if strings.Contains(h.logs.String(), tok.AccessToken) || strings.Contains(h.logs.String(), tok.RefreshToken) {
		t.Error("a token reached the log")
	}
}

func TestOAuthRefusedTokens(t *testing.T) {
	h := newOAuthHarness(t, "", "", "", nil)
	keys, err := h.store.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	claims := func(exp time.Time, iss string) oauth.AccessClaims {
		return oauth.AccessClaims{Claims: jwt.Claims{Issuer: iss, Subject: h.prov.UserEmail, Audience: jwt.Audience{h.url("t")},
			Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(exp.Add(-2 * time.Hour))},
			Email: h.prov.UserEmail, ClientID: h.client.ID, GrantID: "none"}
	}
	mint := func(c oauth.AccessClaims) string {
		s, err := oauthtest.Mint(keys, c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := h.token("t", "").AccessToken
	parts := strings.Split(good, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[5] ^= 1
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"sub":"`, `"sub":"x`, 1))
	cases := []struct {
		name, token string
		want        auth.Reason
	}{
		{"expired", mint(claims(time.Now().Add(-time.Hour), h.base)), auth.ReasonExpired},
		{"tampered signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig), auth.ReasonSignature},
		{"tampered claims", parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2], auth.ReasonSignature},
		{"grant unknown", mint(claims(time.Now().Add(time.Hour), h.base)), auth.ReasonRevoked},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), bearerHdr(c.token))
			ch := r.Header.Get("WWW-Authenticate")
			if r.Status != http.StatusUnauthorized || !strings.Contains(ch, `error="invalid_token"`) {
				t.Errorf("%d %q, want 401 invalid_token", r.Status, ch)
			}
			if !strings.Contains(ch, string(c.want)) {
				t.Errorf("challenge %q lacks %q", ch, c.want)
			}
		})
	}
}

func TestOAuthChallengeFromPublicURL(t *testing.T) {
	h := newOAuthHarness(t, "allowed_hosts: [tunnel.example]", "    scopes: [mcp]", "", nil)
	req, _ := http.NewRequest(http.MethodPost, h.url("t"), strings.NewReader(fmt.Sprintf(initBody, "2025-06-18")))
	req.Host = "tunnel.example"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	r := h.do(req)
	want := `Bearer resource_metadata="` + h.base + `/.well-known/oauth-protected-resource/mcp/t", scope="mcp"`
	if r.Status != http.StatusUnauthorized || r.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("%d %q, want 401 %q", r.Status, r.Header.Get("WWW-Authenticate"), want)
	}
	req, _ = http.NewRequest(http.MethodGet, h.base+"/.well-known/oauth-protected-resource/mcp/t", nil)
	req.Host = "tunnel.example"
	r = h.do(req)
	var md map[string]any
	_ = json.Unmarshal(r.Body, &md)
	if md["resource"] != h.url("t") || fmt.Sprint(md["authorization_servers"]) != "["+h.base+"]" || fmt.Sprint(md["scopes_supported"]) != "[mcp]" {
		t.Errorf("metadata through a tunnel Host: %s", r.Body)
	}
	req, _ = http.NewRequest(http.MethodGet, h.base+"/.well-known/oauth-authorization-server", nil)
	req.Host = "elsewhere.example"
	if r := h.do(req); r.Status != http.StatusForbidden {
		t.Errorf("authorization server metadata for a Host not allowed: %d", r.Status)
	}
}

func TestOAuthInsufficientScope(t *testing.T) {
	h := newOAuthHarness(t, "", "    scopes: [mcp.read, mcp.write]", "", nil)
	tok := h.token("t", "mcp.read")
	r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), bearerHdr(tok.AccessToken))
	ch := r.Header.Get("WWW-Authenticate")
	if r.Status != http.StatusForbidden || !strings.Contains(ch, `error="insufficient_scope"`) || !strings.Contains(ch, `scope="mcp.read mcp.write"`) {
		t.Errorf("%d %q, want 403 insufficient_scope naming the scopes", r.Status, ch)
	}
	full := h.token("t", "mcp.read mcp.write")
	if r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), bearerHdr(full.AccessToken)); r.Status != http.StatusOK {
		t.Errorf("token with every scope: %d %s", r.Status, r.Body)
	}
}

func TestOAuthStaticTokenBeforeChallenge(t *testing.T) {
	tokenValue := strings.Repeat("s", 40)
	t.Setenv("MCPGW_TEST_STATIC", tokenValue)
	h := newOAuthHarness(t, "", "", "  advertise: false\n  tokens: [{name: laptop, value_env: MCPGW_TEST_STATIC}]", nil)
	if r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), bearerHdr(tokenValue)); r.Status != http.StatusOK {
		t.Fatalf("static token beside auth.oauth: %d %s", r.Status, r.Body)
	}
	r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if ch := r.Header.Get("WWW-Authenticate"); r.Status != http.StatusUnauthorized || strings.Contains(ch, "resource_metadata") {
		t.Errorf("advertise: false: %d %q, want 401 without discovery hints", r.Status, ch)
	}
	req, _ := http.NewRequest(http.MethodGet, h.base+"/.well-known/oauth-protected-resource/mcp/t", nil)
	if r := h.do(req); r.Status != http.StatusNotFound {
		t.Errorf("protected resource metadata with advertise: false: %d", r.Status)
	}
}

func TestOAuthRevocationReachesRunningGateway(t *testing.T) {
	h := newOAuthHarness(t, "", "", "", &auth.Options{Recheck: time.Nanosecond})
	tok := h.token("t", "")
	if r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), bearerHdr(tok.AccessToken)); r.Status != http.StatusOK {
		t.Fatalf("before revocation: %d", r.Status)
	}
	// Another process revokes: a second store over the same file.
	other, err := sqlitestore.Open(context.Background(), h.cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	grants, _ := other.Grants(context.Background())
	if len(grants) != 1 {
		t.Fatalf("%d grants", len(grants))
	}
	if err := other.RevokeGrant(context.Background(), grants[0].ID, "test", time.Now()); err != nil {
		t.Fatal(err)
	}
	r := h.post("t", fmt.Sprintf(initBody, "2025-06-18"), bearerHdr(tok.AccessToken))
	if r.Status != http.StatusUnauthorized || !strings.Contains(r.Header.Get("WWW-Authenticate"), "revoked") {
		t.Errorf("after revocation: %d %q, want 401 revoked", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	if _, err := h.client.Refresh(context.Background(), tok.RefreshToken); err == nil {
		t.Error("refresh after revocation succeeded")
	}
}
