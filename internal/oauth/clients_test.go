package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/oauth2"

	"github.com/mcpgw/mcpgw/internal/config"
)

func TestPublicAddress(t *testing.T) {
	cases := map[string]bool{
		"8.8.8.8": true, "2606:4700::1111": true, "1.1.1.1": true,
		"127.0.0.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "fc00::1": false, "100.64.0.1": false, "0.0.0.0": false,
		"::": false, "224.0.0.1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false, "64:ff9b::a00:1": false,
		"240.0.0.1": false, "2002:a00:1::": false,
	}
	for addr, want := range cases {
		t.Run(addr, func(t *testing.T) {
			if got := PublicAddress(netip.MustParseAddr(addr)); got != want {
				t.Errorf("PublicAddress(%s) = %t, want %t", addr, got, want)
			}
		})
	}
}

func testServer(unsafe bool) *Server {
	return &Server{cfg: &config.OAuth{RedirectHosts: []string{"claude.ai", "127.0.0.1", "localhost"}, ClientMetadataDocuments: true,
		UnsafeMetadataPrivateAddresses: unsafe}}
}

// docServer serves a client metadata document over TLS on loopback; body
// may name the document's own URL as %s.
func docServer(t *testing.T, body func(self string) string) (*httptest.Server, string) {
	t.Helper()
	var self string
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/client.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body(self))
	}))
	t.Cleanup(ts.Close)
	self = ts.URL + "/client.json"
	return ts, self
}

func TestMetadataDocument(t *testing.T) {
	good := func(self string) string {
		return fmt.Sprintf(`{"client_id":%q,"client_name":"Doc Client","redirect_uris":["http://127.0.0.1:33418/cb"],"grant_types":["authorization_code","refresh_token"]}`, self)
	}
	t.Run("fetched when private addresses are allowed (test-only key)", func(t *testing.T) {
		ts, self := docServer(t, good)
		s := testServer(true)
		f := newMetadataFetcher(true, ts.Client().Transport.(*http.Transport))
		defer f.close()
		c, err := f.client(context.Background(), self, func(b []byte) (*Client, error) { return s.parseRegistration(b, true) })
		if err != nil {
			t.Fatal(err)
		}
		if c.Name != "Doc Client" || c.AuthMethod != "none" || !c.Document {
			t.Errorf("client %+v", c)
		}
		// Cached: a second lookup does not fetch.
		ts.Close()
		if _, err := f.client(context.Background(), self, nil); err != nil {
			t.Errorf("second lookup fetched again: %v", err)
		}
	})
	t.Run("never from a private address", func(t *testing.T) {
		ts, self := docServer(t, good)
		s := testServer(false)
		f := newMetadataFetcher(false, ts.Client().Transport.(*http.Transport))
		defer f.close()
		_, err := f.client(context.Background(), self, func(b []byte) (*Client, error) { return s.parseRegistration(b, true) })
		if !errors.Is(err, errPrivateAddress) {
			t.Errorf("fetch from 127.0.0.1: %v, want the private address refusal", err)
		}
	})
	refused := []struct {
		name string
		body func(self string) string
		want string
	}{
		{"client_id not its URL", func(string) string {
			return `{"client_id":"https://other.example/c.json","redirect_uris":["http://127.0.0.1/cb"]}`
		}, "not its own URL"},
		{"too large", func(self string) string {
			return fmt.Sprintf(`{"client_id":%q,"redirect_uris":["http://127.0.0.1/cb"],"client_name":"%s"}`, self, strings.Repeat("x", maxMetadataBytes))
		}, "larger than"},
		{"confidential", func(self string) string {
			return fmt.Sprintf(`{"client_id":%q,"redirect_uris":["http://127.0.0.1/cb"],"token_endpoint_auth_method":"client_secret_basic"}`, self)
		}, "not supported"},
		{"redirect host not allowed", func(self string) string {
			return fmt.Sprintf(`{"client_id":%q,"redirect_uris":["https://evil.example/cb"]}`, self)
		}, "not allowed"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			ts, self := docServer(t, c.body)
			s := testServer(true)
			f := newMetadataFetcher(true, ts.Client().Transport.(*http.Transport))
			defer f.close()
			_, err := f.client(context.Background(), self, func(b []byte) (*Client, error) { return s.parseRegistration(b, true) })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want one containing %q", err, c.want)
			}
		})
	}
	t.Run("slow server times out", func(t *testing.T) {
		block := make(chan struct{})
		ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		defer ts.Close()
		defer close(block)
		f := newMetadataFetcher(true, ts.Client().Transport.(*http.Transport))
		defer f.close()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := f.client(ctx, ts.URL+"/client.json", nil)
		if err == nil || time.Since(start) > metadataTimeout+time.Second {
			t.Errorf("slow document: %v after %s", err, time.Since(start))
		}
	})
}

func TestRedirectMatches(t *testing.T) {
	cases := []struct {
		registered, requested string
		want                  bool
	}{
		{"https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback", true},
		{"https://claude.ai/api/mcp/auth_callback", "https://claude.ai/api/mcp/auth_callback/", false},
		{"https://claude.ai/cb", "https://claude.ai/cb?x=1", false},
		{"https://claude.ai:443/cb", "https://claude.ai/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", true}, // RFC 8252, section 7.3
		{"http://127.0.0.1:1/cb", "http://127.0.0.1:2/cb", true},
		{"http://127.0.0.1/cb", "http://localhost:2/cb", false},
		{"http://127.0.0.1/cb", "http://127.0.0.1:2/other", false},
		{"http://localhost/cb", "http://localhost:9/cb", true},
		{"https://localhost/cb", "https://localhost:9/cb", false},
	}
	for _, c := range cases {
		if got := redirectMatches(c.registered, c.requested); got != c.want {
			t.Errorf("redirectMatches(%q, %q) = %t, want %t", c.registered, c.requested, got, c.want)
		}
	}
}

func TestVerifyPKCE(t *testing.T) {
	v := strings.Repeat("a", 43)
	challenge := oauth2.S256ChallengeFromVerifier(v)
	cases := map[string]bool{v: true, v + "b": false, "short": false, strings.Repeat("a", 129): false, strings.Repeat("!", 43): false}
	for verifier, want := range cases {
		if got := verifyPKCE(verifier, challenge); got != want {
			t.Errorf("verifyPKCE(%.10q…) = %t, want %t", verifier, got, want)
		}
	}
}

// FuzzRegistration: client metadata from anyone (the registration body, a
// fetched document) never crashes the parser, and what it accepts obeys
// the redirect rules.
func FuzzRegistration(f *testing.F) {
	f.Add([]byte(`{"redirect_uris":["https://claude.ai/api/mcp/auth_callback"],"token_endpoint_auth_method":"client_secret_post","client_name":"Claude"}`))
	f.Add([]byte(`{"redirect_uris":["http://127.0.0.1:5/cb"],"grant_types":["refresh_token"]}`))
	f.Add([]byte(`{"redirect_uris":"x"}`))
	f.Add([]byte(`[]`))
	s := testServer(false)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, doc := range []bool{false, true} {
			c, err := s.parseRegistration(body, doc)
			if err != nil {
				continue
			}
			if len(c.RedirectURIs) == 0 || len(c.RedirectURIs) > maxRedirectURIs {
				t.Fatalf("accepted %d redirect URIs", len(c.RedirectURIs))
			}
			for _, u := range c.RedirectURIs {
				if s.checkRedirectURI(u) != nil {
					t.Fatalf("accepted redirect URI %q", u)
				}
				p, _ := url.Parse(u)
				if p.Scheme != "https" && !(p.Scheme == "http" && loopbackHost(p.Hostname())) {
					t.Fatalf("accepted scheme of %q", u)
				}
			}
			if doc && c.AuthMethod != "none" {
				t.Fatalf("a document client with auth method %q", c.AuthMethod)
			}
		}
	})
}

// FuzzAuthorizeQuery: the authorization request's query never crashes
// the parser; a challenge it accepts is 43 base64url characters.
func FuzzAuthorizeQuery(f *testing.F) {
	f.Add("response_type=code&client_id=abc&redirect_uri=https%3A%2F%2Fclaude.ai%2Fcb&code_challenge=2_d6h3zIS_6rG7Z4N51gvFWwX9Oi3dmk8bSXJ4C0M6Q&code_challenge_method=S256&resource=https%3A%2F%2Fmcp.example.com%2Fmcp%2Fdemo&state=x")
	f.Add("client_id=a&client_id=b")
	f.Add("%zz=1&;=")
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		p, err := parseAuthorize(q)
		if err != nil {
			return
		}
		if validChallenge(p.CodeChallenge) && len(p.CodeChallenge) != 43 {
			t.Fatalf("challenge %q accepted", p.CodeChallenge)
		}
		_ = redirectMatches(p.RedirectURI, p.RedirectURI+"x")
		_ = isMetadataURL(p.ClientID)
	})
}

// TestMetadataFetchLimit runs in a bubble: its clock stands still while
// the loop runs, so no token is refilled however slow the machine is.
func TestMetadataFetchLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fetches atomic.Int32
		ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fetches.Add(1)
			http.NotFound(w, r)
		}))
		defer ts.Close()
		defer ts.Client().Transport.(*http.Transport).CloseIdleConnections()
		f := newMetadataFetcher(true, ts.Client().Transport.(*http.Transport))
		defer f.close()
		var limited int
		for i := range metadataFetchBurst + 5 {
			_, err := f.client(context.Background(), fmt.Sprintf("%s/c%d.json", ts.URL, i), nil)
			if errors.Is(err, errFetchLimit) {
				limited++
			}
		}
		if limited == 0 || fetches.Load() > metadataFetchBurst+1 {
			t.Errorf("%d fetches, %d refused by the limit; want at most %d fetched", fetches.Load(), limited, metadataFetchBurst+1)
		}
	})
}

// TestRandomIDsAreNotFlags: operators pass grant ids as arguments to
// "mcpgw oauth revoke"; an id that began with "-" would read as a flag.
func TestRandomIDsAreNotFlags(t *testing.T) {
	for range 2000 {
		if id := randomID(); id == "" || id[0] == '-' || len(id) != 32 {
			t.Fatalf("randomID() = %q: want 32 hex digits", id)
		}
	}
}
