package interop

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/mcpgw/mcpgw/internal/browsertest"
	"github.com/mcpgw/mcpgw/internal/oauth/oauthtest"
)

// newChromium starts headless Chromium for the test (package browsertest).
func newChromium(t *testing.T) context.Context { return browsertest.New(t) }

// TestConsentInChromium: a person's browser logs in at the provider, reads
// the consent page (client name, where it returns to, which server, as
// whom), approves, and lands on the client's redirect URI with a code that
// the client exchanges for a working token.
func TestConsentInChromium(t *testing.T) {
	ctx := newChromium(t)
	f := newOAuthFixture(t, "", nil)

	codes := make(chan url.Values, 1)
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case codes <- r.URL.Query():
		default:
		}
		_, _ = w.Write([]byte("<!DOCTYPE html><title>done</title><p id=done>back at the client</p>"))
	}))
	defer cb.Close()
	client := &oauthtest.Client{Base: f.base, Redirect: cb.URL + "/callback"}
	if err := client.Register(context.Background(), "Chromium Test Client"); err != nil {
		t.Fatal(err)
	}
	verifier := oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {client.ID}, "redirect_uri": {client.Redirect}, "state": {"chromium-state"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}, "resource": {f.url("demo")}}

	fail := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser, %s: %v\ngateway log:\n%s", step, err, f.logs.String())
		}
	}
	fail("login", chromedp.Do(ctx,
		chromedp.Navigate(f.base+"/oauth/authorize?"+q.Encode()),
		// The provider's login page.
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), f.prov.User),
		chromedp.SendKeys(chromedp.ID("password"), f.prov.Password),
		chromedp.Submit(chromedp.ID("password")),
		// mcpgw's consent page.
		chromedp.WaitVisible(chromedp.ID("approve")),
	))
	text := func(id string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		fail("reading #"+id, err)
		return v
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	fail("title", err)
	clientName, redirectHost, server, user := text("client"), text("redirect-host"), text("server"), text("user")
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	fail("screenshot", err)
	if dir := os.Getenv("MCPGW_SCREENSHOT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "consent.png"), shot, 0o644)
	}
	fail("approve", chromedp.Do(ctx, chromedp.Click(chromedp.ID("approve")), chromedp.WaitVisible(chromedp.ID("done"))))
	cbHost := strings.TrimPrefix(cb.URL, "http://")
	for _, c := range []struct{ name, got, want string }{
		{"client name", clientName, "Chromium Test Client"},
		{"redirect host", redirectHost, cbHost},
		{"server", server, "demo"},
		{"user", user, f.prov.UserEmail},
		{"title", title, "Allow access to demo?"},
	} {
		if c.got != c.want {
			t.Errorf("consent page %s = %q, want %q", c.name, c.got, c.want)
		}
	}
	var got url.Values
	select {
	case got = <-codes:
	case <-ctx.Done():
		t.Fatal("the browser never reached the redirect URI")
	}
	if got.Get("state") != "chromium-state" || got.Get("iss") != f.base || got.Get("code") == "" {
		t.Fatalf("redirect query %v", got)
	}
	tok, err := exchange(ctx, f.base, client, got.Get("code"), verifier)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, f.url("demo"), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the token approved in Chromium: status %d", resp.StatusCode)
	}
}

func exchange(ctx context.Context, base string, c *oauthtest.Client, code, verifier string) (string, error) {
	oc := &oauth2.Config{ClientID: c.ID, RedirectURL: c.Redirect,
		Endpoint: oauth2.Endpoint{TokenURL: base + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := oc.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}
