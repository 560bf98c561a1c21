package interop

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/gateway"
	"github.com/mcpgw/mcpgw/internal/oauth"
	"github.com/mcpgw/mcpgw/internal/oauth/oauthtest"
	"github.com/mcpgw/mcpgw/internal/oauth/sqlitestore"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// MCP clients' own OAuth implementations against mcpgw's authorization
// server: the TypeScript SDK (its OAuthClientProvider on the Streamable
// HTTP transport) and the Go SDK (auth.AuthorizationCodeHandler), logging
// in at a real OpenID Connect provider on loopback. The browser step is
// oauthtest.Browser: it follows the redirects, fills in the provider's
// login form and approves the consent page.

// oauthFixture is a gateway with auth.oauth publishing the demo server.
type oauthFixture struct {
	base string
	prov *oauthtest.Provider
	logs *testutil.Buffer
}

func (f *oauthFixture) url(server string) string { return f.base + "/mcp/" + server }

// newOAuthFixture starts it; extra is YAML indented under auth.oauth,
// metadataTransport the transport for client metadata documents.
func newOAuthFixture(t testing.TB, extra string, metadataTransport *http.Transport) *oauthFixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	prov := oauthtest.NewProvider(t, base+"/oauth/callback")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`public_url: %s
state_dir: %s
auth:
  oauth:
    login: {oidc: {issuer: %s, client_id: %s, client_secret_env: OIDC_SECRET}}
    users: ["*@zitadel.ch"]
%s
servers:
  demo:
    command: [%q]
    env: {MCPGW_TEST_DEMO: "1"}
`, base, t.TempDir(), prov.Issuer, prov.ClientID, extra, self)
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) {
		if k == "OIDC_SECRET" {
			return prov.ClientSecret, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &testutil.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	st, err := sqlitestore.Open(context.Background(), cfg.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	as, err := oauth.New(context.Background(), cfg, st, &oauth.Options{Logger: log, MetadataTransport: metadataTransport})
	if err != nil {
		t.Fatal(err)
	}
	g := gateway.New(cfg, &gateway.Options{Logger: log, Getenv: os.LookupEnv, Version: "interop-test", OAuth: as})
	done := make(chan error, 1)
	go func() { done <- g.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		as.Close()
		_ = st.Close()
		if t.Failed() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return &oauthFixture{base: base, prov: prov, logs: logs}
}

// TestTSClientOAuth: the TypeScript SDK client discovers the
// authorization server from the 401, registers, authorizes with PKCE,
// exchanges the code, calls a tool, and refreshes a spoiled access token.
func TestTSClientOAuth(t *testing.T) {
	ne := requireNode(t)
	f := newOAuthFixture(t, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ne.node, ne.dir+"/oauth-client.mjs", f.url("demo"))
	cmd.Dir = ne.dir
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var out map[string]any
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON from oauth-client.mjs: %s", sc.Text())
		}
		authURL, ok := m["authorize"].(string)
		if !ok {
			out = m
			break
		}
		res, err := oauthtest.NewBrowser().Authorize(ctx, authURL, f.prov.User, f.prov.Password, "approve", "http://127.0.0.1:9/ts-callback")
		if err != nil {
			t.Fatalf("browser step: %v", err)
		}
		if _, err := io.WriteString(stdin, res.URL.String()+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	if out == nil {
		t.Fatalf("no result from oauth-client.mjs (stderr: %s)", stderr.String())
	}
	t.Logf("oauth-client.mjs: %v", out)
	want := map[string]any{
		"first_connect":      "unauthorized",
		"connect":            "connected",
		"echo":               "hello oauth from ts",
		"echo_after_refresh": "after refresh",
		"has_refresh_token":  true,
		"refreshed":          true,
		"authorizations":     float64(1),
		"close":              "closed",
	}
	for k, v := range want {
		if fmt.Sprint(out[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, out[k], v)
		}
	}
	if cb, _ := out["callback"].(map[string]any); cb == nil || cb["iss"] != f.base || cb["code"] != "present" {
		t.Errorf("callback %v: want iss %s and a code", out["callback"], f.base)
	}
	if id, _ := out["registered_client"].(string); id == "" {
		t.Error("the client did not register")
	}
}

// goFetcher is the Go SDK's browser step: it runs oauthtest.Browser and
// hands back the code, state and iss of the redirect.
func goFetcher(f *oauthFixture, redirect string) auth.AuthorizationCodeFetcher {
	return func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
		res, err := oauthtest.NewBrowser().Authorize(ctx, args.URL, f.prov.User, f.prov.Password, "approve", redirect)
		if err != nil {
			return nil, err
		}
		if e := res.Query.Get("error"); e != "" {
			return nil, fmt.Errorf("authorization refused: %s", e)
		}
		return &auth.AuthorizationResult{Code: res.Query.Get("code"), State: res.Query.Get("state"), Iss: res.Query.Get("iss")}, nil
	}
}

func callEcho(t *testing.T, f *oauthFixture, h auth.OAuthHandler) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgw-interop-go-oauth", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.url("demo"), OAuthHandler: h,
		HTTPClient: &http.Client{Transport: &http.Transport{}}}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()
	for _, text := range []string{"hello oauth from go", "again"} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": text}})
		if err != nil {
			t.Fatalf("echo: %v", err)
		}
		if got := res.Content[0].(*mcp.TextContent).Text; got != text {
			t.Errorf("echo = %q, want %q", got, text)
		}
	}
}

// TestGoSDKClientOAuth: the Go SDK's authorization code handler with
// dynamic client registration; its token source is handed a token that
// looks expired, so that golang.org/x/oauth2 refreshes it at the first
// request.
func TestGoSDKClientOAuth(t *testing.T) {
	f := newOAuthFixture(t, "", nil)
	const redirect = "http://127.0.0.1:9/go-callback"
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			RedirectURIs: []string{redirect}, ClientName: "mcpgw interop (Go SDK)", TokenEndpointAuthMethod: "none",
			GrantTypes: []string{"authorization_code", "refresh_token"},
		}},
		AuthorizationCodeFetcher: goFetcher(f, redirect),
		NewTokenSource: func(ctx context.Context, cfg *oauth2.Config, tok *oauth2.Token) (oauth2.TokenSource, error) {
			stale := *tok
			stale.Expiry = time.Now().Add(-time.Second)
			return cfg.TokenSource(ctx, &stale), nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	callEcho(t, f, h)
	if n := strings.Count(f.logs.String(), `"msg":"access token issued"`); n < 2 {
		t.Errorf("%d access tokens issued, want at least 2 (the code exchange and a refresh)", n)
	}
	if n := strings.Count(f.logs.String(), `"msg":"OAuth client registered"`); n != 1 {
		t.Errorf("%d registrations, want 1", n)
	}
}

// TestGoSDKClientOAuthMetadataDocument: the Go SDK client identifies
// itself by a Client ID Metadata Document URL, which the authorization
// server fetches (over TLS on loopback here, hence the test-only key
// auth.oauth.unsafe_metadata_private_addresses).
func TestGoSDKClientOAuthMetadataDocument(t *testing.T) {
	const redirect = "http://127.0.0.1:9/cimd-callback"
	var docURL string
	var fetched atomic.Int32
	doc := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"client_id": docURL, "client_name": "Metadata Document Client", "redirect_uris": []string{redirect},
			"grant_types": []string{"authorization_code", "refresh_token"}, "token_endpoint_auth_method": "none",
		})
	}))
	defer doc.Close()
	docURL = doc.URL + "/client-metadata.json"
	f := newOAuthFixture(t, "    unsafe_metadata_private_addresses: true", doc.Client().Transport.(*http.Transport))
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: docURL},
		RedirectURL:                    redirect,
		AuthorizationCodeFetcher:       goFetcher(f, redirect),
	})
	if err != nil {
		t.Fatal(err)
	}
	callEcho(t, f, h)
	if fetched.Load() == 0 {
		t.Error("the metadata document was never fetched")
	}
	if strings.Contains(f.logs.String(), `"msg":"OAuth client registered"`) {
		t.Error("a metadata document client registered dynamically")
	}
}
