package config

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const oauthBase = `public_url: https://mcp.example.com
state_dir: /var/lib/mcpgw
auth:
  oauth:
    login: {oidc: {issuer: https://accounts.google.com, client_id: abc, client_secret_env: GOOGLE_SECRET}}
    users: ["*@Example.com"]
`

func TestOAuthDefaults(t *testing.T) {
	c := mustParse(t, oauthBase+"servers: {a: {command: [x]}}", map[string]string{"GOOGLE_SECRET": "s3cret"})
	want := &OAuth{
		Login: Login{OIDC: &OIDCLogin{Issuer: "https://accounts.google.com", ClientID: "abc", ClientSecret: "s3cret",
			ClientSecretEnv: "GOOGLE_SECRET", Scopes: []string{"email", "profile"}}},
		Users:                   []string{"*@example.com"},
		AccessTokenTTL:          15 * time.Minute,
		RefreshTokenTTL:         720 * time.Hour,
		CodeTTL:                 time.Minute,
		Registration:            "open",
		RegistrationRate:        &Rate{RequestsPerSecond: 0.1, Burst: 10, Per: "ip"},
		MaxClients:              1000,
		RedirectHosts:           []string{"claude.ai", "claude.com", "chatgpt.com", "localhost", "127.0.0.1", "::1"},
		ClientMetadataDocuments: true,
	}
	if diff := cmp.Diff(want, c.Auth.OAuth); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if c.Auth.Mode != AuthRequired || !c.Auth.Advertise || c.StateDir != "/var/lib/mcpgw" {
		t.Errorf("mode %q, advertise %t, state_dir %q", c.Auth.Mode, c.Auth.Advertise, c.StateDir)
	}
	// A registration rate without per is per address.
	c = mustParse(t, oauthBase+"    registration_rate: {requests_per_second: 1}\nservers: {a: {command: [x]}}", map[string]string{"GOOGLE_SECRET": "s"})
	if c.Auth.OAuth.RegistrationRate.Per != "ip" {
		t.Errorf("registration_rate.per = %q, want ip", c.Auth.OAuth.RegistrationRate.Per)
	}
}

func TestStateDirDefault(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"HOME": "/home/a"}, "/home/a/.local/state/mcpgw"},
		{map[string]string{"HOME": "/home/a", "XDG_STATE_HOME": "/st"}, "/st/mcpgw"},
		{map[string]string{"HOME": "relative"}, ""},
		{nil, ""},
	} {
		if got := mustParse(t, "servers: {a: {command: [x]}}", c.env).StateDir; got != c.want {
			t.Errorf("env %v: state_dir %q, want %q", c.env, got, c.want)
		}
	}
}

func TestOAuthProblems(t *testing.T) {
	env := map[string]string{"GOOGLE_SECRET": "s", "GH": "g"}
	srv := "servers: {a: {command: [x]}}"
	cases := []struct {
		name, yaml string
		env        map[string]string
		want       []string
	}{
		{"public_url required", strings.Replace(oauthBase, "public_url: https://mcp.example.com\n", "", 1) + srv, env,
			[]string{"public_url: is required with auth.oauth: it is the authorization server's issuer and the base of every server's resource URL"}},
		{"public_url https", strings.Replace(oauthBase, "https://mcp.example.com", "http://mcp.example.com", 1) + srv, env,
			[]string{"public_url: must be https with auth.oauth (http only for a loopback address): tokens and codes travel in it (line 1)"}},
		{"state_dir required", strings.Replace(oauthBase, "state_dir: /var/lib/mcpgw\n", "", 1) + srv, env,
			[]string{"state_dir: is required with auth.oauth (no HOME or XDG_STATE_HOME to derive a default from): the directory where clients, grants and signing keys persist"}},
		{"state_dir relative", strings.Replace(oauthBase, "/var/lib/mcpgw", "state", 1) + srv, env,
			[]string{`state_dir: must be an absolute path (got "state") (line 2)`}},
		{"secret unset", oauthBase + srv, nil,
			[]string{"auth.oauth.login.oidc.client_secret_env: environment variable GOOGLE_SECRET is not set (line 5)"}},
		{"no login", "public_url: https://m.example.com\nstate_dir: /s\nauth: {oauth: {users: [a@b.example]}}\n" + srv, nil,
			[]string{"auth.oauth.login: needs oidc: {issuer, client_id, client_secret_env} or github: {client_id, client_secret_env} (line 3)"}},
		{"both logins", strings.Replace(oauthBase, "client_secret_env: GOOGLE_SECRET}}", "client_secret_env: GOOGLE_SECRET}, github: {client_id: x, client_secret_env: GH}}", 1) + srv, env,
			[]string{"auth.oauth.login: set oidc or github, not both (line 5)"}},
		{"no users", strings.Replace(oauthBase, `    users: ["*@Example.com"]`+"\n", "", 1) + srv, env,
			[]string{`auth.oauth.users: at least one identity or pattern is required, e.g. ["*@example.com"]: without it anyone with an account at the provider could log in (line 4)`}},
		{"bad values", oauthBase + `    access_token_ttl: 1s
    registration: maybe
    registration_rate: {requests_per_second: 1, per: identity}
    max_clients: 0
    redirect_hosts: ["https://claude.ai"]
    scopes: [offline_access, "a b"]
` + srv, env, []string{
			"auth.oauth.access_token_ttl: must be between 1m and 24h (line 7)",
			`auth.oauth.registration: must be one of open, off (got "maybe") (line 8)`,
			"auth.oauth.registration_rate.per: must be ip or global: a registering client has no identity yet (line 9)",
			"auth.oauth.max_clients: must be between 1 and 1000000 (line 10)",
			`auth.oauth.redirect_hosts[0]: must be a host name or an IP address without scheme or port, e.g. claude.ai (got "https://claude.ai") (line 11)`,
			"auth.oauth.scopes[0]: must be a scope token (printable ASCII without spaces, quotes or backslashes; not offline_access) (got \"offline_access\") (line 12)",
			"auth.oauth.scopes[1]: must be a scope token (printable ASCII without spaces, quotes or backslashes; not offline_access) (got \"a b\") (line 12)",
		}},
		{"unknown key", oauthBase + "    user: [x]\n" + srv, env, nil},
		{"mode none with oauth", strings.Replace(oauthBase, "auth:\n", "auth:\n  mode: none\n", 1) + srv, env,
			[]string{"auth.mode: none turns authentication off, but tokens, jwt or oauth are set: remove mode: none to require them (line 4)"}},
		{"advertise not a bool", "auth: {mode: none, advertise: yes}\n" + srv, nil,
			[]string{`auth.advertise: must be true or false (got "yes") (line 1)`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), envOf(c.env))
			got := problemsOf(t, err)
			if c.want == nil {
				if len(got) != 1 || !strings.HasPrefix(got[0], "auth.oauth.user:") {
					t.Errorf("problems %q, want one naming auth.oauth.user", got)
				}
				return
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
