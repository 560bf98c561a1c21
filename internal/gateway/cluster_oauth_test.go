package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/auth"
	"github.com/mcpgw/mcpgw/internal/clustertest"
	"github.com/mcpgw/mcpgw/internal/oauth"
	"github.com/mcpgw/mcpgw/internal/oauth/oauthtest"
	"github.com/mcpgw/mcpgw/internal/oauth/redisstore"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

// oauthCluster is n replicas with auth.oauth whose state is in one Redis,
// behind haproxy (round-robin, no affinity), public_url being haproxy's.
type oauthCluster struct {
	rds  *clustertest.Redis
	lb   *clustertest.HAProxy
	prov *oauthtest.Provider
	hs   []*harness
	base string // public_url
}

const testRedisPassword = "redis-password-of-the-cluster-tests"

func startOAuthCluster(t *testing.T, n int) *oauthCluster {
	t.Helper()
	rds := clustertest.StartRedisWith(t, clustertest.RedisOptions{Password: testRedisPassword, Persist: true})
	t.Setenv("MCPGW_TEST_REDIS_URL", rds.URL())
	t.Setenv("MCPGW_TEST_CLUSTER_KEY", testClusterKey)
	lns := make([]net.Listener, n)
	peers, addrs := make([]string, n), make([]string, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i], addrs[i], peers[i] = ln, ln.Addr().String(), `"http://`+ln.Addr().String()+`"`
	}
	lb := clustertest.StartHAProxy(t, addrs)
	oc := &oauthCluster{rds: rds, lb: lb, base: lb.URL()}
	oc.prov = oauthtest.NewProvider(t, oc.base+"/oauth/callback")
	t.Setenv("MCPGW_TEST_OIDC_SECRET", oc.prov.ClientSecret)
	for i, ln := range lns {
		yaml := fmt.Sprintf(`public_url: %s
state_dir: %s
auth:
  oauth:
    login: {oidc: {issuer: %s, client_id: %s, client_secret_env: MCPGW_TEST_OIDC_SECRET}}
    users: ["*@zitadel.ch"]
cluster:
  replica_id: r%d
  key_env: MCPGW_TEST_CLUSTER_KEY
  peers: [%s]
  refresh: 500ms
  redis: {url_env: MCPGW_TEST_REDIS_URL, timeout: 300ms}
servers:
%s`, oc.base, t.TempDir(), oc.prov.Issuer, oc.prov.ClientID, i, strings.Join(peers, ", "), serverYAML("t", ""))
		cfg := testConfig(t, yaml)
		logs := &logBuffer{}
		log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		conn, err := redisconn.New(cfg.Cluster.Redis)
		if err != nil {
			t.Fatal(err)
		}
		st, err := redisstore.New(conn, cfg.Cluster.Key)
		if err != nil {
			t.Fatal(err)
		}
		as, err := oauth.New(context.Background(), cfg, st, &oauth.Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		// A short recheck: a cached token's grant is looked at again
		// within the Redis-down test.
		g := New(cfg, &Options{Logger: log, Getenv: os.LookupEnv, Version: "test", OAuth: as, Auth: &auth.Options{Recheck: 100 * time.Millisecond}})
		h := &harness{t: t, g: g, base: "http://" + ln.Addr().String(), logs: logs, cfg: cfg, done: make(chan error, 1)}
		go func() { h.done <- g.Serve(ln) }()
		t.Cleanup(func() {
			h.shutdown(10 * time.Second)
			as.Close()
			_ = st.Close()
			if t.Failed() {
				for _, l := range logs.Lines()[max(0, len(logs.Lines())-30):] {
					t.Logf("r%d log: %.400v", i, l)
				}
			}
		})
		oc.hs = append(oc.hs, h)
	}
	return oc
}

// client is a registered public client whose base URL is base (haproxy's,
// or one replica's).
func (oc *oauthCluster) client(t *testing.T, base, id string) *oauthtest.Client {
	c := &oauthtest.Client{Base: base, Redirect: "http://127.0.0.1:9/callback", ID: id}
	if id == "" {
		if err := c.Register(t.Context(), "Cluster Test"); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// code runs a login through haproxy up to the authorization code, and
// returns it with its PKCE verifier.
func (oc *oauthCluster) code(t *testing.T, c *oauthtest.Client) (code, verifier string) {
	t.Helper()
	var b [48]byte
	_, _ = rand.Read(b[:])
	verifier = base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.Redirect}, "state": {"s"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"resource": {oc.base + "/mcp/t"}}
	res, err := oauthtest.NewBrowser().Authorize(t.Context(), oc.base+"/oauth/authorize?"+q.Encode(),
		oc.prov.User, oc.prov.Password, "approve", c.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	if res.Query.Get("code") == "" {
		t.Fatalf("authorization ended without a code: %v", res.Query)
	}
	return res.Query.Get("code"), verifier
}

// exchange posts a code to the token endpoint of base.
func exchange(t *testing.T, base, clientID, code, verifier string) (*http.Response, string) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {code},
		"redirect_uri": {"http://127.0.0.1:9/callback"}, "code_verifier": {verifier}}
	resp, err := http.PostForm(base+"/oauth/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = fmt.Fprint(&sb, readAll(resp))
	return resp, sb.String()
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

// initialize opens a session on replica h with token, and returns the
// status.
func initialize(h *harness, token string) *rawResponse {
	return h.post("t", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
		map[string]string{"Authorization": "Bearer " + token})
}

// TestClusterOAuthInRedis: with the authorization server's state in
// Redis, a client registers, logs in and gets tokens through haproxy
// (each step landing on any replica), and its tokens work on every
// replica: access tokens open sessions on each, refresh tokens rotate on
// any, a replayed one is refused on all. An authorization code redeemed
// on two replicas at once is redeemed once.
func TestClusterOAuthInRedis(t *testing.T) {
	oc := startOAuthCluster(t, 3)
	ctx := t.Context()
	c := oc.client(t, oc.base, "")
	tok, err := c.Token(ctx, oc.base+"/mcp/t", "", oc.prov.User, oc.prov.Password)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range oc.hs {
		if r := initialize(h, tok.AccessToken); r.Status != http.StatusOK {
			t.Errorf("access token on r%d: %d %s", i, r.Status, r.Body)
		}
	}
	// Refresh on r1, then on r2 with the rotated token; the first one
	// replayed on r0 is refused, and its grant revoked everywhere.
	t1, err := oc.client(t, oc.hs[1].base, c.ID).Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh on r1: %v", err)
	}
	t2, err := oc.client(t, oc.hs[2].base, c.ID).Refresh(ctx, t1.RefreshToken)
	if err != nil {
		t.Fatalf("refresh on r2 with r1's rotated token: %v", err)
	}
	if r := initialize(oc.hs[0], t2.AccessToken); r.Status != http.StatusOK {
		t.Errorf("r2's access token on r0: %d %s", r.Status, r.Body)
	}
	if got, err := oc.client(t, oc.hs[0].base, c.ID).Refresh(ctx, tok.RefreshToken); err == nil || got.Error != "invalid_grant" {
		t.Errorf("replayed refresh token on r0: %+v, %v; want invalid_grant", got, err)
	}
	if got, err := oc.client(t, oc.hs[1].base, c.ID).Refresh(ctx, t2.RefreshToken); err == nil || got.Error != "invalid_grant" {
		t.Errorf("the newest refresh token after a replay: %+v, %v; want invalid_grant (the grant is revoked)", got, err)
	}

	// One code, redeemed on two replicas at once: once.
	code, verifier := oc.code(t, c)
	var wg sync.WaitGroup
	statuses := make([]int, 2)
	bodies := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := exchange(t, oc.hs[i].base, c.ID, code, verifier)
			statuses[i], bodies[i] = resp.StatusCode, body
		}()
	}
	wg.Wait()
	ok := 0
	for i, s := range statuses {
		switch {
		case s == http.StatusOK:
			ok++
		case s != http.StatusBadRequest || !strings.Contains(bodies[i], "invalid_grant"):
			t.Errorf("code on r%d: %d %s", i, s, bodies[i])
		}
	}
	if ok != 1 {
		t.Errorf("one code redeemed on two replicas: %d successes (%v), want 1", ok, statuses)
	}
	if resp, body := exchange(t, oc.hs[2].base, c.ID, code, verifier); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "already used") {
		t.Errorf("the code a third time, on r2: %d %s; want invalid_grant, already used", resp.StatusCode, body)
	}
}

// TestClusterOAuthRedisDown: with Redis stopped, the OAuth endpoints
// answer 503 temporarily_unavailable with Retry-After within about the
// timeout; an access token already verified on a replica keeps working
// there, one new to a replica gets 503 (not 401); once Redis is back
// (with its data) logins, refreshes and tokens work again. No log line
// holds the Redis password, the cluster key or a token.
func TestClusterOAuthRedisDown(t *testing.T) {
	oc := startOAuthCluster(t, 2)
	ctx := t.Context()
	c := oc.client(t, oc.base, "")
	seen, err := c.Token(ctx, oc.base+"/mcp/t", "", oc.prov.User, oc.prov.Password)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := c.Token(ctx, oc.base+"/mcp/t", "", oc.prov.User, oc.prov.Password)
	if err != nil {
		t.Fatal(err)
	}
	if r := initialize(oc.hs[0], seen.AccessToken); r.Status != http.StatusOK {
		t.Fatalf("access token on r0: %d %s", r.Status, r.Body)
	}

	oc.rds.Stop()
	bounded := func(what string, f func()) {
		t.Helper()
		start := time.Now()
		f()
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s with Redis down took %s, want about the 300ms timeout", what, d)
		}
	}
	r1 := oc.client(t, oc.hs[1].base, c.ID)
	bounded("refresh", func() {
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {c.ID}, "refresh_token": {seen.RefreshToken}}
		resp, err := http.PostForm(oc.hs[1].base+"/oauth/token", form)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") || resp.Header.Get("Retry-After") == "" {
			t.Errorf("refresh with Redis down: %d %s (Retry-After %q), want 503 temporarily_unavailable with Retry-After",
				resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	})
	bounded("registration", func() {
		resp, err := http.Post(oc.hs[0].base+"/oauth/register", "application/json",
			strings.NewReader(`{"redirect_uris":["http://127.0.0.1:9/callback"],"token_endpoint_auth_method":"none"}`))
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") || resp.Header.Get("Retry-After") == "" {
			t.Errorf("registration with Redis down: %d %s, want 503 temporarily_unavailable with Retry-After", resp.StatusCode, body)
		}
	})
	bounded("authorize", func() {
		q := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {c.Redirect}, "state": {"s"},
			"code_challenge": {strings.Repeat("a", 43)}, "code_challenge_method": {"S256"}, "resource": {oc.base + "/mcp/t"}}
		resp, err := oauthtest.NewBrowser().HTTP.Get(oc.hs[1].base + "/oauth/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("authorize with Redis down: %d, want 503 with Retry-After", resp.StatusCode)
		}
	})
	time.Sleep(150 * time.Millisecond) // past the recheck of the token r0 verified (a deadline, not synchronisation)
	bounded("a token seen before", func() {
		if r := initialize(oc.hs[0], seen.AccessToken); r.Status != http.StatusOK {
			t.Errorf("a token r0 verified before, Redis down: %d %s; want it still served", r.Status, r.Body)
		}
	})
	bounded("a token new to the replica", func() {
		r := initialize(oc.hs[1], fresh.AccessToken)
		if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" || r.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("a token new to r1, Redis down: %d %s; want 503 with Retry-After and no challenge", r.Status, r.Body)
		}
	})

	oc.rds.Start()
	eventually(t, 5*time.Second, "the token endpoint to answer again once Redis is back", func() bool {
		_, err := r1.Refresh(ctx, fresh.RefreshToken)
		return err == nil
	})
	if r := initialize(oc.hs[1], fresh.AccessToken); r.Status != http.StatusOK {
		t.Errorf("a token new to r1, Redis back: %d %s", r.Status, r.Body)
	}
	if _, err := c.Token(ctx, oc.base+"/mcp/t", "", oc.prov.User, oc.prov.Password); err != nil {
		t.Errorf("a login once Redis is back: %v", err)
	}

	secrets := []string{testRedisPassword, testClusterKey, seen.AccessToken, seen.RefreshToken, fresh.AccessToken, fresh.RefreshToken}
	for i, h := range oc.hs {
		for _, l := range h.logs.Lines() {
			line := fmt.Sprint(l)
			for _, s := range secrets {
				if strings.Contains(line, s) {
					t.Errorf("a log line of r%d holds a secret (%.12s…): %.300s", i, s, line)
				}
			}
		}
	}
	if n := len(oc.hs[1].logs.find("OAuth state store unavailable: answered 503", nil)); n == 0 {
		t.Error("r1 did not log the 503s of the OAuth endpoints")
	}
}
