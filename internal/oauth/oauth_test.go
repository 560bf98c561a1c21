package oauth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpgw/mcpgw/internal/auth"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/oauth"
	"github.com/mcpgw/mcpgw/internal/oauth/oauthtest"
	"github.com/mcpgw/mcpgw/internal/oauth/sqlitestore"
)

// env is an authorization server on loopback, logging users in at a real
// OpenID Connect provider (oauthtest.Provider), with its state in a
// temporary directory.
type env struct {
	t     testing.TB
	ts    *httptest.Server
	url   string
	dir   string
	prov  *oauthtest.Provider
	cfg   *config.Config
	srv   *oauth.Server
	store *sqlitestore.Store
	authn *auth.Authenticator
	opts  *oauth.Options
}

const redirect = "http://127.0.0.1:9/callback"

func newEnv(t testing.TB, extra string, opts *oauth.Options) *env {
	t.Helper()
	if opts == nil {
		opts = &oauth.Options{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	e := &env{t: t, dir: t.TempDir(), opts: opts}
	e.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.srv.ServeHTTP(w, r) }))
	e.url = "http://" + e.ts.Listener.Addr().String()
	e.prov = oauthtest.NewProvider(t, e.url+"/oauth/callback")
	if !strings.Contains(extra, "registration_rate") {
		extra += "\n    registration_rate: {requests_per_second: 0.001, burst: 5}"
	}
	yaml := fmt.Sprintf(`public_url: %s
state_dir: %s
auth:
  oauth:
    login: {oidc: {issuer: %s, client_id: %s, client_secret_env: OIDC_SECRET}}
    users: [%s]
%s
servers: {demo: {command: [x]}, other: {command: [x]}, locked: {command: [x], allow: [someone@example.com]}}
`, e.url, e.dir, e.prov.Issuer, e.prov.ClientID, e.prov.UserEmail, extra)
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) {
		if k == "OIDC_SECRET" {
			return e.prov.ClientSecret, true
		}
		return "", false
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	e.cfg = cfg
	e.start()
	e.ts.Start()
	t.Cleanup(func() {
		e.ts.Close()
		e.stop()
	})
	return e
}

func (e *env) start() {
	e.t.Helper()
	st, err := sqlitestore.Open(context.Background(), e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	srv, err := oauth.New(context.Background(), e.cfg, st, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.store, e.srv = st, srv
	e.authn = auth.New(&e.cfg.Auth, &auth.Options{Issuer: srv})
}

func (e *env) stop() {
	if e.srv != nil {
		e.srv.Close()
		_ = e.store.Close()
		e.srv = nil
	}
}

// restart stops the server and starts a new one over the same state.
func (e *env) restart() {
	e.stop()
	e.start()
}

func (e *env) resource(server string) string { return e.url + "/mcp/" + server }

func (e *env) postJSON(path string, v any) (*http.Response, map[string]any) {
	e.t.Helper()
	b, _ := json.Marshal(v)
	resp, err := http.Post(e.url+path, "application/json", bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, decode(e.t, resp)
}

func (e *env) postForm(path string, form url.Values) (*http.Response, map[string]any) {
	e.t.Helper()
	resp, err := http.PostForm(e.url+path, form)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, decode(e.t, resp)
}

func decode(t testing.TB, resp *http.Response) map[string]any {
	t.Helper()
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := map[string]any{}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: not JSON: %s", resp.Request.URL.Path, body)
	}
	return m
}

// register registers a public client redirecting to redirect.
func (e *env) register() string {
	e.t.Helper()
	resp, m := e.postJSON("/oauth/register", map[string]any{
		"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "client_name": "Test Client",
	})
	if resp.StatusCode != http.StatusCreated {
		e.t.Fatalf("register: %d %v", resp.StatusCode, m)
	}
	return m["client_id"].(string)
}

type authReq struct {
	clientID, redirect, resource, method, scope string
	noPKCE                                      bool
}

// authorizeURL builds an authorization request; it returns the URL and
// the PKCE verifier.
func (e *env) authorizeURL(a authReq) (string, string) {
	verifier := oauth2.GenerateVerifier()
	q := url.Values{"response_type": {"code"}, "client_id": {a.clientID}, "state": {"st-1"}}
	q.Set("redirect_uri", redirect)
	if a.redirect != "" {
		q.Set("redirect_uri", a.redirect)
	}
	if a.resource != "" {
		q.Set("resource", a.resource)
	}
	if a.scope != "" {
		q.Set("scope", a.scope)
	}
	if !a.noPKCE {
		method := "S256"
		if a.method != "" {
			method = a.method
		}
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
		q.Set("code_challenge_method", method)
	}
	return e.url + "/oauth/authorize?" + q.Encode(), verifier
}

// login runs the browser through an authorization.
func (e *env) login(b *oauthtest.Browser, authURL, user, decision string) *oauthtest.Result {
	e.t.Helper()
	res, err := b.Authorize(context.Background(), authURL, user, e.prov.Password, decision, redirect)
	if err != nil {
		e.t.Fatalf("authorize: %v", err)
	}
	return res
}

func (e *env) exchange(clientID, code, verifier, resource string) (*http.Response, map[string]any) {
	e.t.Helper()
	f := url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {code},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}
	if resource != "" {
		f.Set("resource", resource)
	}
	return e.postForm("/oauth/token", f)
}

func (e *env) refresh(clientID, rt string) (*http.Response, map[string]any) {
	e.t.Helper()
	return e.postForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {rt}})
}

// authenticate verifies an access token as the resource server does.
func (e *env) authenticate(token, resource string) (auth.Identity, error) {
	h := http.Header{"Authorization": {"Bearer " + token}}
	return e.authn.AuthenticateResource(context.Background(), h, resource)
}

func reason(err error) auth.Reason {
	if f, ok := auth.IsFailure(err); ok {
		return f.Reason
	}
	return ""
}

// fullFlow registers, authorizes and exchanges: it returns the client id
// and the token response.
func (e *env) fullFlow() (string, map[string]any) {
	e.t.Helper()
	id := e.register()
	u, verifier := e.authorizeURL(authReq{clientID: id, resource: e.resource("demo")})
	res := e.login(oauthtest.NewBrowser(), u, e.prov.User, "approve")
	if res.Query.Get("error") != "" {
		e.t.Fatalf("authorization failed: %v", res.Query)
	}
	resp, tok := e.exchange(id, res.Query.Get("code"), verifier, e.resource("demo"))
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("token: %d %v", resp.StatusCode, tok)
	}
	return id, tok
}

func TestMetadata(t *testing.T) {
	e := newEnv(t, "", nil)
	for _, path := range []string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		m := decode(t, resp)
		want := map[string]any{
			"issuer":                                e.url,
			"authorization_endpoint":                e.url + "/oauth/authorize",
			"token_endpoint":                        e.url + "/oauth/token",
			"registration_endpoint":                 e.url + "/oauth/register",
			"jwks_uri":                              e.url + "/oauth/jwks",
			"client_id_metadata_document_supported": true,
			"authorization_response_iss_parameter_supported": true,
		}
		for k, v := range want {
			if m[k] != v {
				t.Errorf("%s: %s = %v, want %v", path, k, m[k], v)
			}
		}
		if got := fmt.Sprint(m["code_challenge_methods_supported"]); got != "[S256]" {
			t.Errorf("%s: code_challenge_methods_supported = %s, want [S256]", path, got)
		}
	}
}

func TestFlowIssuesTokensForOneResource(t *testing.T) {
	e := newEnv(t, "", nil)
	id, tok := e.fullFlow()
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	if tok["token_type"] != "Bearer" || at == "" || rt == "" {
		t.Fatalf("token response %v", tok)
	}
	ident, err := e.authenticate(at, e.resource("demo"))
	if err != nil {
		t.Fatalf("the issued token is refused for its resource: %v", err)
	}
	if ident.Name != e.prov.UserEmail || ident.Method != "oauth" {
		t.Errorf("identity %+v, want %s by oauth", ident, e.prov.UserEmail)
	}
	if _, err := e.authenticate(at, e.resource("other")); reason(err) != auth.ReasonAudience {
		t.Errorf("token for demo used on other: %v, want %q", err, auth.ReasonAudience)
	}
	// An upper-case scheme and host name the same resource; the token's
	// audience is the canonical form.
	u, verifier := e.authorizeURL(authReq{clientID: id, resource: strings.ToUpper(e.url) + "/mcp/demo/"})
	res := e.login(oauthtest.NewBrowser(), u, e.prov.User, "approve")
	if resp, m := e.exchange(id, res.Query.Get("code"), verifier, strings.ToUpper(e.url)+"/mcp/demo"); resp.StatusCode != http.StatusOK {
		t.Errorf("upper-case resource: %d %v", resp.StatusCode, m)
	} else if _, err := e.authenticate(m["access_token"].(string), e.resource("demo")); err != nil {
		t.Errorf("token for the upper-case resource: %v", err)
	}
	// Refresh rotates: the new refresh token works, the old one is a
	// replay that revokes the grant.
	resp, tok2 := e.refresh(id, rt)
	if resp.StatusCode != http.StatusOK || tok2["refresh_token"] == rt {
		t.Fatalf("refresh: %d %v", resp.StatusCode, tok2)
	}
	if _, err := e.authenticate(tok2["access_token"].(string), e.resource("demo")); err != nil {
		t.Fatalf("refreshed token refused: %v", err)
	}
	resp, m := e.refresh(id, rt)
	if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Fatalf("replayed refresh token: %d %v, want 400 invalid_grant", resp.StatusCode, m)
	}
	resp, m = e.refresh(id, tok2["refresh_token"].(string))
	if m["error"] != "invalid_grant" {
		t.Errorf("after a replay the grant's newest refresh token still works: %d %v", resp.StatusCode, m)
	}
	grants, _ := e.store.Grants(context.Background())
	if len(grants) != 1 || grants[0].Active() {
		t.Errorf("grant after replay: %+v, want one revoked", grants)
	}
}

func TestRememberedGrantSkipsConsent(t *testing.T) {
	e := newEnv(t, "", nil)
	id, _ := e.fullFlow()
	u, verifier := e.authorizeURL(authReq{clientID: id, resource: e.resource("demo")})
	b := oauthtest.NewBrowser()
	res := e.login(b, u, e.prov.User, "deny") // "deny" would refuse, were it asked
	if b.Consent != "" || res.Query.Get("code") == "" {
		t.Fatalf("consent asked again (%t) or no code: %v", b.Consent != "", res.Query)
	}
	if resp, m := e.exchange(id, res.Query.Get("code"), verifier, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %v", m)
	}
	// Another server needs its own consent.
	u, _ = e.authorizeURL(authReq{clientID: id, resource: e.resource("other")})
	b = oauthtest.NewBrowser()
	e.login(b, u, e.prov.User, "approve")
	if b.Consent == "" {
		t.Error("no consent asked for another server")
	}
}

func TestConsentPageNamesClientHostServerUser(t *testing.T) {
	e := newEnv(t, "", nil)
	id := e.register()
	u, _ := e.authorizeURL(authReq{clientID: id, resource: e.resource("demo")})
	b := oauthtest.NewBrowser()
	e.login(b, u, e.prov.User, "approve")
	for _, want := range []string{"Test Client", "127.0.0.1:9", ">demo<", e.prov.UserEmail, e.resource("demo")} {
		if !strings.Contains(b.Consent, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
}

// TestRefusals: each refusal has its error and nothing is issued.
func TestRefusals(t *testing.T) {
	e := newEnv(t, "", nil)
	id := e.register()
	issued := func(t *testing.T) int {
		t.Helper()
		grants, err := e.store.Grants(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(grants)
	}
	redirected := []struct {
		name      string
		req       authReq
		user      string
		decision  string
		wantError string
	}{
		{"missing PKCE", authReq{clientID: id, resource: e.resource("demo"), noPKCE: true}, "", "", "invalid_request"},
		{"plain PKCE", authReq{clientID: id, resource: e.resource("demo"), method: "plain"}, "", "", "invalid_request"},
		{"missing resource", authReq{clientID: id}, "", "", "invalid_target"},
		{"foreign resource", authReq{clientID: id, resource: "https://elsewhere.example/mcp/demo"}, "", "", "invalid_target"},
		{"unknown server", authReq{clientID: id, resource: e.resource("nosuch")}, "", "", "invalid_target"},
		{"unknown scope", authReq{clientID: id, resource: e.resource("demo"), scope: "admin"}, "", "", "invalid_scope"},
		{"user not in users", authReq{clientID: id, resource: e.resource("demo")}, e.prov.OtherUser, "approve", "access_denied"},
		{"user not in the server's allow", authReq{clientID: id, resource: e.resource("locked")}, e.prov.User, "approve", "access_denied"},
		{"denied consent", authReq{clientID: id, resource: e.resource("demo")}, e.prov.User, "deny", "access_denied"},
	}
	for _, c := range redirected {
		t.Run(c.name, func(t *testing.T) {
			before := issued(t)
			u, _ := e.authorizeURL(c.req)
			user := c.user
			if user == "" {
				user = e.prov.User
			}
			res := e.login(oauthtest.NewBrowser(), u, user, c.decision)
			if got := res.Query.Get("error"); got != c.wantError || res.Query.Get("code") != "" {
				t.Errorf("redirect %v, want error=%s and no code", res.Query, c.wantError)
			}
			if res.Query.Get("iss") != e.url || res.Query.Get("state") != "st-1" {
				t.Errorf("error redirect lacks iss or state: %v", res.Query)
			}
			if issued(t) != before {
				t.Error("a grant was stored")
			}
		})
	}
	shown := []struct {
		name string
		req  authReq
	}{
		{"redirect URI not registered", authReq{clientID: id, resource: e.resource("demo"), redirect: "http://127.0.0.1:9/other"}},
		{"unknown client", authReq{clientID: "nobody", resource: e.resource("demo")}},
		{"client metadata document on a private address", authReq{clientID: "https://127.0.0.1:1/client.json", resource: e.resource("demo")}},
	}
	for _, c := range shown {
		t.Run(c.name, func(t *testing.T) {
			u, _ := e.authorizeURL(c.req)
			resp, err := oauthtest.NewBrowser().HTTP.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
				t.Errorf("status %d, Location %q, want 400 and no redirect: %s", resp.StatusCode, resp.Header.Get("Location"), body)
			}
		})
	}

	t.Run("redirect host not allowed at registration", func(t *testing.T) {
		for _, u := range []string{"https://evil.example/cb", "http://claude.ai/cb", "javascript:alert(1)", "https://claude.ai/cb#frag"} {
			resp, m := e.postJSON("/oauth/register", map[string]any{"redirect_uris": []string{u}, "token_endpoint_auth_method": "none"})
			if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_redirect_uri" {
				t.Errorf("%s: %d %v, want 400 invalid_redirect_uri", u, resp.StatusCode, m)
			}
		}
	})
	t.Run("wrong verifier", func(t *testing.T) {
		u, _ := e.authorizeURL(authReq{clientID: id, resource: e.resource("demo")})
		res := e.login(oauthtest.NewBrowser(), u, e.prov.User, "approve")
		resp, m := e.exchange(id, res.Query.Get("code"), oauth2.GenerateVerifier(), "")
		if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_grant" || m["access_token"] != nil {
			t.Errorf("%d %v, want 400 invalid_grant", resp.StatusCode, m)
		}
	})
	t.Run("code for another resource", func(t *testing.T) {
		u, verifier := e.authorizeURL(authReq{clientID: id, resource: e.resource("demo")})
		res := e.login(oauthtest.NewBrowser(), u, e.prov.User, "approve")
		resp, m := e.exchange(id, res.Query.Get("code"), verifier, e.resource("other"))
		if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_target" {
			t.Errorf("%d %v, want 400 invalid_target", resp.StatusCode, m)
		}
	})
	t.Run("reused code revokes what it issued", func(t *testing.T) {
		u, verifier := e.authorizeURL(authReq{clientID: id, resource: e.resource("demo")})
		res := e.login(oauthtest.NewBrowser(), u, e.prov.User, "approve")
		code := res.Query.Get("code")
		resp, tok := e.exchange(id, code, verifier, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("first exchange: %v", tok)
		}
		resp, m := e.exchange(id, code, verifier, "")
		if resp.StatusCode != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("reuse: %d %v, want 400 invalid_grant", resp.StatusCode, m)
		}
		if _, m := e.refresh(id, tok["refresh_token"].(string)); m["error"] != "invalid_grant" {
			t.Errorf("the refresh token of a reused code still works: %v", m)
		}
		// The access token's grant is revoked: a fresh verifier refuses it.
		fresh := auth.New(&e.cfg.Auth, &auth.Options{Issuer: e.srv})
		_, err := fresh.AuthenticateResource(context.Background(), http.Header{"Authorization": {"Bearer " + tok["access_token"].(string)}}, e.resource("demo"))
		if reason(err) != auth.ReasonRevoked {
			t.Errorf("access token of a reused code: %v, want %q", err, auth.ReasonRevoked)
		}
	})
	t.Run("unknown client at the token endpoint", func(t *testing.T) {
		resp, m := e.postForm("/oauth/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {"gone"}, "code": {"x"}})
		if resp.StatusCode != http.StatusUnauthorized || m["error"] != "invalid_client" {
			t.Errorf("%d %v, want 401 invalid_client", resp.StatusCode, m)
		}
	})
	t.Run("registration flood", func(t *testing.T) {
		// The burst is 5 and the first registration of this test spent
		// one; the rest of the burst passes, then 429.
		var last *http.Response
		n := 0
		for ; n < 10; n++ {
			last, _ = e.postJSON("/oauth/register", map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none"})
			if last.StatusCode != http.StatusCreated {
				break
			}
		}
		if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
			t.Errorf("after %d registrations: %d, want 429 with Retry-After", n, last.StatusCode)
		}
		if n > 5 {
			t.Errorf("%d registrations passed a burst of 5", n)
		}
	})
}

func TestClientLimit(t *testing.T) {
	e := newEnv(t, "    max_clients: 2", nil)
	e.register()
	e.register()
	resp, m := e.postJSON("/oauth/register", map[string]any{"redirect_uris": []string{redirect}, "token_endpoint_auth_method": "none"})
	if resp.StatusCode != http.StatusForbidden || m["error"] != "access_denied" {
		t.Errorf("third client: %d %v, want 403", resp.StatusCode, m)
	}
	if clients, _ := e.store.Clients(context.Background()); len(clients) != 2 {
		t.Errorf("%d clients stored, want 2", len(clients))
	}
}

func TestConfidentialClient(t *testing.T) {
	e := newEnv(t, "", nil)
	resp, m := e.postJSON("/oauth/register", map[string]any{"redirect_uris": []string{redirect}, "client_name": "Web"})
	if resp.StatusCode != http.StatusCreated || m["client_secret"] == nil || m["token_endpoint_auth_method"] != "client_secret_basic" {
		t.Fatalf("register: %d %v", resp.StatusCode, m)
	}
	id, secret := m["client_id"].(string), m["client_secret"].(string)
	u, verifier := e.authorizeURL(authReq{clientID: id, resource: e.resource("demo")})
	res := e.login(oauthtest.NewBrowser(), u, e.prov.User, "approve")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {res.Query.Get("code")}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, e.url+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, "wrong")
	r1, _ := http.DefaultClient.Do(req)
	if m := decode(t, r1); r1.StatusCode != http.StatusUnauthorized || m["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v", r1.StatusCode, m)
	}
	req, _ = http.NewRequest(http.MethodPost, e.url+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	r2, _ := http.DefaultClient.Do(req)
	if m := decode(t, r2); r2.StatusCode != http.StatusOK {
		t.Errorf("right secret: %d %v", r2.StatusCode, m)
	}
}

func TestRestartKeepsClientsGrantsKeys(t *testing.T) {
	e := newEnv(t, "", nil)
	id, tok := e.fullFlow()
	at := tok["access_token"].(string)
	keysBefore, _ := e.store.Keys(context.Background())
	e.restart()
	if _, err := e.authenticate(at, e.resource("demo")); err != nil {
		t.Errorf("access token from before the restart: %v", err)
	}
	resp, m := e.refresh(id, tok["refresh_token"].(string))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh token from before the restart: %d %v", resp.StatusCode, m)
	}
	keysAfter, _ := e.store.Keys(context.Background())
	if len(keysAfter) != 1 || keysAfter[0].ID != keysBefore[0].ID {
		t.Errorf("signing keys changed across a restart: %d keys", len(keysAfter))
	}
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t, "", &oauth.Options{KeyCacheTTL: time.Nanosecond})
	_, tok := e.fullFlow()
	old := tok["access_token"].(string)
	k, err := oauth.RotateKey(context.Background(), e.store, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id, tok2 := e.fullFlow()
	_ = id
	hdr, _, _ := strings.Cut(tok2["access_token"].(string), ".")
	if !strings.Contains(decodeSegment(t, hdr), k.ID) {
		t.Errorf("a token after rotation is not signed by the new key %s", k.ID)
	}
	for _, at := range []string{old, tok2["access_token"].(string)} {
		if _, err := e.authenticate(at, e.resource("demo")); err != nil {
			t.Errorf("after rotation a token is refused: %v", err)
		}
	}
	resp, err := http.Get(e.url + "/oauth/jwks")
	if err != nil {
		t.Fatal(err)
	}
	if keys := decode(t, resp)["keys"].([]any); len(keys) != 2 {
		t.Errorf("JWKS has %d keys after a rotation, want 2 (old one still verifies)", len(keys))
	}
}

func decodeSegment(t testing.TB, s string) string {
	t.Helper()
	b, err := base64URL(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// FuzzTokenRequest: any body at the token endpoint gets a JSON error and
// never a token.
func FuzzTokenRequest(f *testing.F) {
	f.Add("grant_type=authorization_code&client_id=x&code=y&code_verifier=z", "")
	f.Add("grant_type=refresh_token&refresh_token=abc&client_id=x", "Basic eDp5")
	f.Add("grant_type=client_credentials", "Basic %%%")
	f.Add("a=1&a=2", "")
	// No client metadata documents: a fuzzed client_id URL must not make
	// the server dial anywhere.
	e := newEnv(f, "    client_metadata_documents: false", nil)
	id := e.register()
	f.Fuzz(func(t *testing.T, body, authz string) {
		body = strings.ReplaceAll(body, "CLIENT", id)
		req := httptest.NewRequest(http.MethodPost, "/oauth/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		e.srv.ServeHTTP(w, req)
		var m map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("status %d, body not JSON: %q", w.Code, w.Body.String())
		}
		if w.Code == http.StatusOK || m["access_token"] != nil {
			t.Fatalf("a token for %q", body)
		}
	})
}

// The login flow's own latency, on loopback with the OpenID provider:
// authorize → provider login → callback → consent → code → token.

// BenchmarkLoginFlowFirst: a new client each time, so consent is asked
// (registration included).
func BenchmarkLoginFlowFirst(b *testing.B) {
	e := newEnv(b, "    registration_rate: {requests_per_second: 1000000, burst: 1000000}\n    max_clients: 1000000", nil)
	for b.Loop() {
		e.fullFlow()
	}
}

// BenchmarkLoginFlowRemembered: the same client again; the remembered
// grant skips the consent page.
func BenchmarkLoginFlowRemembered(b *testing.B) {
	e := newEnv(b, "", nil)
	id, _ := e.fullFlow()
	for b.Loop() {
		u, verifier := e.authorizeURL(authReq{clientID: id, resource: e.resource("demo")})
		res := e.login(oauthtest.NewBrowser(), u, e.prov.User, "approve")
		if resp, m := e.exchange(id, res.Query.Get("code"), verifier, ""); resp.StatusCode != http.StatusOK {
			b.Fatalf("token: %v", m)
		}
	}
}

// BenchmarkRefresh: one refresh (rotation included).
func BenchmarkRefresh(b *testing.B) {
	e := newEnv(b, "", nil)
	id, tok := e.fullFlow()
	rt := tok["refresh_token"].(string)
	for b.Loop() {
		resp, m := e.refresh(id, rt)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("refresh: %v", m)
		}
		rt = m["refresh_token"].(string)
	}
}
