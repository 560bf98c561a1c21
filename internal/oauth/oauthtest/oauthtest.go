// Package oauthtest provides the real parts that tests of the OAuth
// authorization server log in against: an OpenID Connect provider built
// from github.com/zitadel/oidc/v3 (its op package, with the in-memory
// storage and login page of its example server) on loopback, a stand-in of
// GitHub's OAuth endpoints (GitHub cannot run here), and a scripted
// browser that follows an authorization through login and consent.
package oauthtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgw/mcpgw/internal/clip"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"

	"github.com/mcpgw/mcpgw/internal/oauth"
)

// Provider is an OpenID Connect provider on loopback.
type Provider struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// The users the provider knows (see the example storage): User logs
	// in as UserEmail, Other as OtherEmail; both addresses are verified.
	User, OtherUser, Password string
	UserEmail, OtherEmail     string
}

// NewProvider starts a provider whose one client (ClientID, ClientSecret)
// may redirect to redirectURI. It stops with the test.
func NewProvider(t testing.TB, redirectURI string) *Provider {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	clientID, secret := "mcpgw", randomString()
	clients := map[string]*storage.Client{clientID: storage.WebClient(clientID, secret, redirectURI)}
	st := storage.NewStorageWithClients(storage.NewUserStore(issuer), clients)
	ts.Config.Handler = exampleop.SetupServer(issuer, st, nil, false)
	ts.Start()
	t.Cleanup(ts.Close)
	host := ts.Listener.Addr().(interface{ String() string }).String()
	host = host[:strings.LastIndex(host, ":")]
	return &Provider{
		Issuer: issuer, ClientID: clientID, ClientSecret: secret,
		User: "test-user@" + host, OtherUser: "test-user2", Password: "verysecure",
		UserEmail: "test-user@zitadel.ch", OtherEmail: "test-user2@zitadel.ch",
	}
}

func randomString() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// GitHub is a stand-in for GitHub's OAuth app endpoints
// (/login/oauth/authorize, /login/oauth/access_token) and the two REST
// calls mcpgw makes (/user, /user/emails): github.com cannot be reached
// from tests. Its authorize endpoint approves at once, as GitHub does for
// an app the user authorized before.
type GitHub struct {
	URL          string // both the web and the API base URL
	ClientID     string
	ClientSecret string
	Login        string
	Emails       []GitHubEmail

	mu       sync.Mutex
	codes    map[string]string // code → PKCE challenge
	tokens   map[string]bool
	requests []string // paths requested, in order
}

// Requests returns the paths requested so far, in order.
func (g *GitHub) Requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.requests)
}

// GitHubEmail is one entry of GET /user/emails.
type GitHubEmail struct {
	Email    string `json:"email"`
	Primary  bool   `json:"primary"`
	Verified bool   `json:"verified"`
}

// NewGitHub starts the stand-in; it stops with the test.
func NewGitHub(t testing.TB, login string, emails ...GitHubEmail) *GitHub {
	t.Helper()
	g := &GitHub{ClientID: "Iv1.stand-in", ClientSecret: randomString(), Login: login, Emails: emails,
		codes: map[string]string{}, tokens: map[string]bool{}}
	ts := httptest.NewServer(g)
	t.Cleanup(ts.Close)
	g.URL = ts.URL
	return g
}

func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.requests = append(g.requests, r.URL.Path)
	g.mu.Unlock()
	switch r.URL.Path {
	case "/login/oauth/authorize":
		q := r.URL.Query()
		if q.Get("client_id") != g.ClientID || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad authorize request", http.StatusBadRequest)
			return
		}
		code := randomString()
		g.mu.Lock()
		g.codes[code] = q.Get("code_challenge")
		g.mu.Unlock()
		u, _ := url.Parse(q.Get("redirect_uri"))
		v := u.Query()
		v.Set("code", code)
		v.Set("state", q.Get("state"))
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	case "/login/oauth/access_token":
		_ = r.ParseForm()
		g.mu.Lock()
		_, ok := g.codes[r.PostForm.Get("code")]
		delete(g.codes, r.PostForm.Get("code"))
		g.mu.Unlock()
		if !ok || r.PostForm.Get("client_secret") != g.ClientSecret || r.PostForm.Get("code_verifier") == "" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"error":"bad_verification_code"}`)
			return
		}
		tok := randomString()
		g.mu.Lock()
		g.tokens[tok] = true
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"access_token": tok, "token_type": "bearer", "scope": "read:user,user:email"})
	case "/user", "/user/emails":
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		g.mu.Lock()
		ok := g.tokens[tok]
		g.mu.Unlock()
		if !ok {
			http.Error(w, `{"message":"Bad credentials"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/user" {
			_ = json.NewEncoder(w).Encode(map[string]any{"login": g.Login, "id": 1})
			return
		}
		_ = json.NewEncoder(w).Encode(g.Emails)
	default:
		http.NotFound(w, r)
	}
}

// Browser follows an authorization as a person's browser would: it keeps
// cookies, follows redirects, fills in the provider's login form and
// answers the consent page.
type Browser struct {
	HTTP *http.Client
	// Consent is the last consent page seen.
	Consent string
}

// NewBrowser returns a browser that stops at redirects to a URL for
// which stop returns true (the client's redirect URI).
func NewBrowser() *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{HTTP: &http.Client{
		Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}}
}

// Result is where an authorization ended: the client's redirect URI with
// its query (code, state, iss; or error).
type Result struct {
	URL   *url.URL
	Query url.Values
}

var (
	reInput  = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
	reAction = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
)

// Authorize starts at authURL, logs in as user with password at the
// provider (when it asks), and answers the consent page with decision
// ("approve" or "deny"; when it asks). It returns the redirect to a URL
// with prefix redirectPrefix.
func (b *Browser) Authorize(ctx context.Context, authURL, user, password, decision, redirectPrefix string) (*Result, error) {
	next, method, form := authURL, http.MethodGet, url.Values(nil)
	for range 20 {
		if strings.HasPrefix(next, redirectPrefix) {
			u, err := url.Parse(next)
			if err != nil {
				return nil, err
			}
			return &Result{URL: u, Query: u.Query()}, nil
		}
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, next, body)
		if err != nil {
			return nil, err
		}
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := b.HTTP.Do(req)
		if err != nil {
			return nil, err
		}
		page, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		base := resp.Request.URL
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			loc, err := base.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, err
			}
			next, method, form = loc.String(), http.MethodGet, nil
			continue
		case resp.StatusCode != http.StatusOK:
			return nil, fmt.Errorf("%s %s: status %d: %s", method, next, resp.StatusCode, clip.String(string(page), 400))
		}
		html := string(page)
		action := reAction.FindStringSubmatch(html)
		if action == nil {
			return nil, fmt.Errorf("%s: a page without a form: %s", next, clip.String(html, 400))
		}
		u, err := base.Parse(action[1])
		if err != nil {
			return nil, err
		}
		form = url.Values{}
		for _, m := range reInput.FindAllStringSubmatch(html, -1) {
			form.Set(m[1], unescape(m[2]))
		}
		switch {
		case strings.Contains(html, `name="password"`):
			form.Set("username", user)
			form.Set("password", password)
		case strings.Contains(html, `name="decision"`):
			b.Consent = html
			form.Set("decision", decision)
		default:
			return nil, fmt.Errorf("%s: an unexpected form: %s", next, clip.String(html, 400))
		}
		next, method = u.String(), http.MethodPost
	}
	return nil, errors.New("too many steps")
}

func unescape(s string) string {
	r := strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&quot;", `"`, "&#39;", "'")
	return r.Replace(s)
}

// Client is a public OAuth client of mcpgw's authorization server, for
// tests that need tokens: it registers, runs the browser through login
// and consent, and exchanges the code, with plain HTTP as a client would.
type Client struct {
	// Base is the gateway's public URL; Redirect the client's redirect
	// URI (never dialled: the browser stops there).
	Base, Redirect string
	ID             string
}

// Register registers the client (dynamic client registration).
func (c *Client) Register(ctx context.Context, name string) error {
	if c.Redirect == "" {
		c.Redirect = "http://127.0.0.1:9/callback"
	}
	body, _ := json.Marshal(map[string]any{"redirect_uris": []string{c.Redirect}, "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "client_name": name})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/oauth/register", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("register: status %d: %v %v", resp.StatusCode, m, err)
	}
	c.ID, _ = m["client_id"].(string)
	return nil
}

// Tokens are the token endpoint's answer.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
}

// Token authorizes for resource with scope ("" for the default) as user,
// approving the consent, and exchanges the code.
func (c *Client) Token(ctx context.Context, resource, scope, user, password string) (*Tokens, error) {
	verifier := randomString() + randomString()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.Redirect}, "state": {"s"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "resource": {resource}}
	if scope != "" {
		q.Set("scope", scope)
	}
	res, err := NewBrowser().Authorize(ctx, c.Base+"/oauth/authorize?"+q.Encode(), user, password, "approve", c.Redirect)
	if err != nil {
		return nil, err
	}
	if e := res.Query.Get("error"); e != "" {
		return nil, fmt.Errorf("authorization refused: %s: %s", e, res.Query.Get("error_description"))
	}
	return c.post(ctx, url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "code": {res.Query.Get("code")},
		"redirect_uri": {c.Redirect}, "code_verifier": {verifier}})
}

// Refresh uses a refresh token.
func (c *Client) Refresh(ctx context.Context, refresh string) (*Tokens, error) {
	return c.post(ctx, url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "refresh_token": {refresh}})
}

func (c *Client) post(ctx context.Context, form url.Values) (*Tokens, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var t Tokens
	if err := json.NewDecoder(resp.Body).Decode(&t); err != nil {
		return nil, fmt.Errorf("token endpoint: status %d: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &t, fmt.Errorf("token endpoint: status %d: %s", resp.StatusCode, t.Error)
	}
	return &t, nil
}

// Mint signs claims with the newest signing key in keys (the store's
// Keys), as the authorization server would: for tokens a test cannot get
// from the token endpoint (expired ones).
func Mint(keys []*oauth.Key, claims any) (string, error) {
	if len(keys) == 0 {
		return "", errors.New("no signing key")
	}
	p, err := x509.ParsePKCS8PrivateKey(keys[0].PrivatePKCS8)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: p, KeyID: keys[0].ID}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}
