package interop

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// corsPage is a browser MCP client: it initializes a session at the
// gateway URL given in the query with fetch (a preflighted request: JSON
// body, MCP headers), reads Mcp-Session-Id from the answer, and calls echo.
const corsPage = `<!DOCTYPE html><title>cors</title><script>
async function mcp(gw) {
  const base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"};
  try {
    let r = await fetch(gw, {method: "POST", headers: base, body: JSON.stringify(
      {jsonrpc: "2.0", id: 1, method: "initialize", params: {protocolVersion: "2025-11-25", capabilities: {}, clientInfo: {name: "browser", version: "1"}}})});
    const sid = r.headers.get("Mcp-Session-Id");
    await r.text();
    const h = Object.assign({"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}, base);
    r = await fetch(gw, {method: "POST", headers: h, body: JSON.stringify({jsonrpc: "2.0", method: "notifications/initialized"})});
    r = await fetch(gw, {method: "POST", headers: h, body: JSON.stringify(
      {jsonrpc: "2.0", id: 2, method: "tools/call", params: {name: "echo", arguments: {text: "from the browser"}}})});
    return JSON.stringify({sid: sid, status: r.status, body: await r.text()});
  } catch (e) {
    return JSON.stringify({error: String(e)});
  }
}
</script>`

// TestCORSInChromium: a web page at an origin listed in allowed_origins
// calls a server through the gateway from Chromium (preflight, session id
// read from the response, a tool call); a page at another origin is
// stopped by the browser, since the gateway gives it no CORS headers.
func TestCORSInChromium(t *testing.T) {
	ctx := newChromium(t)
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(corsPage))
	})
	listed := httptest.NewServer(page)
	defer listed.Close()
	other := httptest.NewServer(page)
	defer other.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("listen: 127.0.0.1:0\nallowed_origins: [%q]\nservers:\n  demo:\n    command: [\"${TESTBIN}\"]\n    env: {MCPGW_TEST_DEMO: \"1\"}\n", listed.URL)
	f := startFixture(t, nil, yaml, map[string]string{"TESTBIN": self}, "")

	call := func(pageURL string) map[string]any {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
			t.Fatalf("browser at %s: %v", pageURL, err)
		}
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf("mcp(%q)", f.url("demo")), chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("browser at %s: %v\ngateway log:\n%s", pageURL, err, f.logs.String())
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatalf("page result %q: %v", raw, err)
		}
		return out
	}
	got := call(listed.URL)
	if got["error"] != nil || got["sid"] == nil || got["status"] != float64(200) || !strings.Contains(fmt.Sprint(got["body"]), "from the browser") {
		t.Errorf("page at a listed origin: %v; want a session id and the echo", got)
	}
	if got := call(other.URL); got["error"] == nil {
		t.Errorf("page at an origin not listed: %v; want the browser to refuse (no CORS headers)", got)
	}
	if !strings.Contains(f.logs.String(), `"method":"CORS preflight"`) {
		t.Errorf("no preflight in the gateway's log:\n%s", f.logs.String())
	}
}
