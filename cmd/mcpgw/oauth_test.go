package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/oauth/oauthtest"
	"github.com/mcpgw/mcpgw/internal/testutil"
)

// oauthGateway is an "mcpgw serve" process with auth.oauth, logging users
// in at a real OpenID Connect provider on loopback.
type oauthGateway struct {
	t         *testing.T
	bin, cfg  string
	dir, base string
	listen    string
	env       []string
	cmd       *exec.Cmd
	logs      *testutil.Buffer
	prov      *oauthtest.Provider
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func newOAuthGateway(t *testing.T) *oauthGateway {
	t.Helper()
	g := &oauthGateway{t: t, bin: buildBinary(t), dir: filepath.Join(t.TempDir(), "state"), listen: freePort(t)}
	g.base = "http://" + g.listen
	g.prov = oauthtest.NewProvider(t, g.base+"/oauth/callback")
	g.cfg = filepath.Join(t.TempDir(), "mcpgw.yaml")
	yaml := fmt.Sprintf(`public_url: %s
state_dir: %s
auth:
  oauth:
    login: {oidc: {issuer: %s, client_id: %s, client_secret_env: OIDC_SECRET}}
    users: ["*@zitadel.ch"]
servers:
  demo: {command: ["${MCPGW_BIN}", demo-server]}
`, g.base, g.dir, g.prov.Issuer, g.prov.ClientID)
	if err := os.WriteFile(g.cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	g.env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "OIDC_SECRET=" + g.prov.ClientSecret}
	g.start()
	return g
}

func (g *oauthGateway) start() {
	g.t.Helper()
	g.cmd = exec.Command(g.bin, "serve", "--config", g.cfg, "--listen", g.listen)
	g.cmd.Env = g.env
	_, _, g.logs = awaitServe(g.t, g.cmd)
}

// stop ends the gateway with SIGTERM, as an operator's restart does.
func (g *oauthGateway) stop() {
	g.t.Helper()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	if err := g.cmd.Wait(); err != nil {
		g.t.Fatalf("gateway exit: %v (log: %s)", err, g.logs.String())
	}
}

func (g *oauthGateway) run(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(""), &stdout, &stderr, noEnv)
	return stdout.String() + stderr.String(), err
}

func (g *oauthGateway) initialize(token string) int {
	g.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, g.base+"/mcp/demo",
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestOAuthCommandsBesideRunningGateway: the oauth commands read and
// change the state directory while a gateway holds it; a restart keeps
// clients, grants and keys; a revocation refuses refresh at once.
func TestOAuthCommandsBesideRunningGateway(t *testing.T) {
	g := newOAuthGateway(t)
	ctx := context.Background()
	// The log is copied from the process's stderr by a goroutine of
	// exec.Cmd: wait for it.
	for _, want := range []string{"OAuth authorization server enabled", "OAuth dynamic client registration is open", "OAuth redirect hosts accepted"} {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(g.logs.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("the startup log does not say %q: %s", want, g.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	c := &oauthtest.Client{Base: g.base}
	if err := c.Register(ctx, "CLI Test Client"); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Token(ctx, g.base+"/mcp/demo", "", g.prov.User, g.prov.Password)
	if err != nil {
		t.Fatal(err)
	}
	if st := g.initialize(tok.AccessToken); st != http.StatusOK {
		t.Fatalf("initialize with the access token: %d", st)
	}
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken, g.prov.ClientSecret} {
		if strings.Contains(g.logs.String(), secret) {
			t.Error("a secret reached the gateway's log")
		}
	}

	out, err := g.run("oauth", "clients", "--state-dir", g.dir)
	if err != nil || !strings.Contains(out, c.ID) || !strings.Contains(out, "CLI Test Client") {
		t.Fatalf("oauth clients beside a running gateway: %v\n%s", err, out)
	}
	if _, err := g.run("oauth", "grants", "--config", g.cfg); err == nil {
		t.Errorf("oauth grants --config without the secret's variable should fail to load the config")
	}
	out, err = g.run("oauth", "grants", "--state-dir", g.dir)
	m := regexp.MustCompile(`(?m)^(\S+)\s+` + regexp.QuoteMeta(g.prov.UserEmail) + `\s+` + regexp.QuoteMeta(c.ID) + `\s+\S+/mcp/demo\s+.*active$`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("oauth grants: %v\n%s", err, out)
	}
	grant := m[1]

	// A restart keeps clients, grants and keys: the refresh token and the
	// access token from before it work after it.
	g.stop()
	g.start()
	if st := g.initialize(tok.AccessToken); st != http.StatusOK {
		t.Errorf("access token from before the restart: %d", st)
	}
	tok2, err := c.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh token from before the restart: %v", err)
	}

	if st := g.initialize(tok2.AccessToken); st != http.StatusOK {
		t.Fatalf("refreshed access token: %d", st) // now verified and cached by the gateway
	}
	out, err = g.run("oauth", "rotate-key", "--state-dir", g.dir)
	if err != nil || !strings.Contains(out, "new signing key") {
		t.Errorf("rotate-key: %v %s", err, out)
	}
	out, err = g.run("oauth", "revoke", "--state-dir", g.dir, grant)
	if err != nil || !strings.Contains(out, "grant "+grant+" revoked") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if _, err := c.Refresh(ctx, tok2.RefreshToken); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("refresh after the revocation: %v, want invalid_grant", err)
	}
	out, _ = g.run("oauth", "grants", "--state-dir", g.dir)
	if !strings.Contains(out, "revoked by the operator") {
		t.Errorf("grants after revoke:\n%s", out)
	}
	out, err = g.run("oauth", "revoke", "--state-dir", g.dir, "--client", c.ID)
	if err != nil {
		t.Fatalf("revoke --client: %v %s", err, out)
	}
	if _, err := c.Refresh(ctx, tok2.RefreshToken); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("a deleted client at the token endpoint: %v, want 401 invalid_client", err)
	}
	if out, _ := g.run("oauth", "clients", "--state-dir", g.dir); strings.Contains(out, c.ID) {
		t.Errorf("the deleted client is still listed:\n%s", out)
	}
	// The access token's grant is revoked; the gateway, which verified
	// and cached it before, refuses it once it rechecks the grant (within
	// 30 s). Poll with a deadline.
	deadline := time.Now().Add(45 * time.Second)
	for g.initialize(tok2.AccessToken) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the revoked grant's access token still works after 45 s")
		}
		time.Sleep(500 * time.Millisecond) // polling interval, not synchronisation
	}
}

func TestOAuthCommandUsage(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"oauth"}, 2, "Subcommands:"},
		{[]string{"oauth", "frob"}, 2, "unknown subcommand"},
		{[]string{"oauth", "clients", "--state-dir", dir}, 0, "CLIENT_ID"},
		{[]string{"oauth", "grants", "--state-dir", dir}, 0, "GRANT_ID"},
		{[]string{"oauth", "revoke", "--state-dir", dir}, 2, "name grant ids"},
		{[]string{"oauth", "revoke", "--state-dir", dir, "nosuch"}, 1, "not found"},
		{[]string{"oauth", "clients", "--state-dir", dir, "--config", "x"}, 2, "not both"},
		{[]string{"oauth", "clients", "extra"}, 2, "no arguments"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), c.args, strings.NewReader(""), &stdout, &stderr, noEnv)
			if got := exitCode(err); got != c.code {
				t.Errorf("exit %d, want %d (%v)", got, c.code, err)
			}
			all := stdout.String() + stderr.String()
			if err != nil {
				all += err.Error()
			}
			if !strings.Contains(all, c.out) {
				t.Errorf("output %q lacks %q", all, c.out)
			}
		})
	}
}
