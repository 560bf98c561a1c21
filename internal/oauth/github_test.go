package oauth_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/oauth"
	"github.com/mcpgw/mcpgw/internal/oauth/oauthtest"
)

// newGitHubEnv is newEnv logging in with GitHub: its OAuth endpoints and
// REST API are a local stand-in (oauthtest.GitHub), since github.com
// cannot be reached from tests.
func newGitHubEnv(t *testing.T, gh *oauthtest.GitHub) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), opts: &oauth.Options{Logger: slog.New(slog.DiscardHandler)}}
	e.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { e.srv.ServeHTTP(w, r) }))
	e.url = "http://" + e.ts.Listener.Addr().String()
	yaml := fmt.Sprintf(`public_url: %s
state_dir: %s
auth:
  oauth:
    login: {github: {client_id: %s, client_secret_env: GH_SECRET, url: %s, api_url: %s}}
    users: ["*@example.com"]
servers: {demo: {command: [x]}}
`, e.url, e.dir, gh.ClientID, gh.URL, gh.URL)
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) { return gh.ClientSecret, k == "GH_SECRET" })
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

func TestGitHubLogin(t *testing.T) {
	cases := []struct {
		name      string
		emails    []oauthtest.GitHubEmail
		wantUser  string
		wantError string
	}{
		{"verified primary address", []oauthtest.GitHubEmail{
			{Email: "octo@other.example", Verified: true},
			{Email: "Octo@Example.com", Primary: true, Verified: true},
		}, "octo@example.com", ""},
		{"primary address not verified", []oauthtest.GitHubEmail{{Email: "octo@example.com", Primary: true}}, "", "access_denied"},
		{"verified address not in users", []oauthtest.GitHubEmail{{Email: "octo@elsewhere.example", Primary: true, Verified: true}}, "", "access_denied"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gh := oauthtest.NewGitHub(t, "octocat", c.emails...)
			e := newGitHubEnv(t, gh)
			id := e.register()
			u, verifier := e.authorizeURL(authReq{clientID: id, resource: e.resource("demo")})
			b := oauthtest.NewBrowser()
			res, err := b.Authorize(context.Background(), u, "", "", "approve", redirect)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Query.Get("error"); got != c.wantError {
				t.Fatalf("error %q, want %q (%v)", got, c.wantError, res.Query)
			}
			if !slices.Contains(gh.Requests(), "/user/emails") {
				t.Errorf("the stand-in saw %v, no /user/emails", gh.Requests())
			}
			if c.wantError != "" {
				return
			}
			resp, tok := e.exchange(id, res.Query.Get("code"), verifier, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("token: %v", tok)
			}
			ident, err := e.authenticate(tok["access_token"].(string), e.resource("demo"))
			if err != nil || ident.Name != c.wantUser {
				t.Errorf("identity %+v %v, want %s", ident, err, c.wantUser)
			}
		})
	}
}
