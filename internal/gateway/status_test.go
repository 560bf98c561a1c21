package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mcpgw/mcpgw/internal/browsertest"
	"github.com/mcpgw/mcpgw/internal/status"
)

// statusYAML is a healthy daemon server and one whose every process dies
// at once, so that it is in crash back-off.
func statusYAML(extra string) string {
	return "listen: 127.0.0.1:0\n" + extra + "servers:\n" + serverYAML("healthy", "    mode: daemon\n") + `  broken:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1", MCPGW_TESTSERVER_CRASH_IF_EXISTS: "${TESTBIN}"}
    mode: daemon
    min_processes: 1
`
}

// getStatus fetches /status with accept and headers.
func (h *harness) getStatus(accept string, hdr map[string]string) *rawResponse {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.base+"/status", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return h.do(req)
}

// waitBackoff waits until the broken server is in crash back-off.
func waitBackoff(t *testing.T, h *harness) {
	t.Helper()
	eventually(t, 20*time.Second, "the broken server to enter back-off", func() bool {
		failing, _ := h.g.mgr.Server("broken").Failing()
		return failing
	})
}

func TestStatusJSON(t *testing.T) {
	h := newHarness(t, statusYAML(""))
	cs := h.connect("healthy", nil)
	callText(t, cs, "echo", map[string]any{"text": "x"})
	waitBackoff(t, h)
	h.post("broken", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`, nil)

	r := h.getStatus("application/json", nil)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	var p status.Page
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	if !p.Detail || p.Version != "test" || len(p.Servers) != 2 {
		t.Fatalf("page: %+v", p)
	}
	byName := map[string]status.Server{}
	for _, s := range p.Servers {
		byName[s.Name] = s
	}
	good, bad := byName["healthy"], byName["broken"]
	if !good.Ready || len(good.Processes) != 1 || good.Sessions["2025-11-25"] != 1 || good.Identities["anonymous"] != 1 || good.Starts != 1 {
		t.Errorf("healthy server: %+v", good)
	}
	if bad.Ready || !bad.Backoff || bad.Crashes < 2 || !strings.Contains(bad.Reason, "crash loop") {
		t.Errorf("broken server: %+v", bad)
	}
	found := false
	for _, e := range p.Errors {
		if e.Server == "broken" && e.Status == http.StatusServiceUnavailable && e.RequestID != "" && strings.Contains(e.Message, "keeps failing") {
			found = true
		}
	}
	if !found {
		t.Errorf("recent errors lack the refused initialize: %+v", p.Errors)
	}
	if strings.Contains(string(r.Body), cs.ID()) {
		t.Errorf("the status page shows a session id")
	}
}

func TestStatusNeedsCredentialsForDetail(t *testing.T) {
	h := newHarness(t, authYAML(nil, "status: {enabled: true}\n")+serverYAML("t", ""))
	r := h.getStatus("application/json", nil)
	var p status.Page
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Detail || len(p.Servers) != 0 || p.Status != "ready" || strings.Contains(string(r.Body), `"t"`) {
		t.Errorf("anonymous caller got %s", r.Body)
	}
	r = h.getStatus("application/json", bearerHdr(laptopToken))
	p = status.Page{}
	_ = json.Unmarshal(r.Body, &p)
	if !p.Detail || len(p.Servers) != 1 {
		t.Errorf("authenticated caller got %s", r.Body)
	}
	r = h.getStatus("text/html", map[string]string{"Origin": "https://evil.example"})
	if r.Status != http.StatusForbidden {
		t.Errorf("a foreign Origin got %d", r.Status)
	}
}

func TestStatusOffByDefaultOffLoopback(t *testing.T) {
	h := newHarness(t, "listen: 0.0.0.0:0\nauth: {mode: none}\nservers:\n"+serverYAML("t", ""))
	if r := h.getStatus("", nil); r.Status != http.StatusNotFound {
		t.Errorf("status on a non-loopback listener without status.enabled: %d", r.Status)
	}
}

// TestStatusPageInChromium renders the page in headless Chromium with a
// crash-looping server and a healthy one, at a phone's width, and checks
// what a person sees. MCPGW_UPDATE_SCREENSHOT=1 writes docs/status.png.
func TestStatusPageInChromium(t *testing.T) {
	ctx := browsertest.New(t)
	h := newHarness(t, statusYAML(""))
	cs := h.connect("healthy", nil)
	callText(t, cs, "echo", map[string]any{"text": "x"})
	waitBackoff(t, h)
	h.post("broken", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`, nil)

	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(h.base+"/status"),
		chromedp.WaitVisible(chromedp.ID("server-broken"))); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	if got := text("#gateway-status"); got != "ready" {
		t.Errorf("gateway status shows %q", got)
	}
	if got := text("#server-healthy .state"); got != "ready" {
		t.Errorf("healthy server shows %q", got)
	}
	if got := text("#server-broken .state"); got != "crash loop" {
		t.Errorf("broken server shows %q", got)
	}
	if got := text("#server-broken .reason"); !strings.Contains(got, "consecutive failures") {
		t.Errorf("broken server's reason: %q", got)
	}
	if got := text("#errors"); !strings.Contains(got, "keeps failing") {
		t.Errorf("recent errors: %q", got)
	}
	// Readable on a phone: nothing wider than the screen.
	wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if err != nil || wide {
		t.Errorf("the page is wider than a 390px screen (%v)", err)
	}
	// No script on the page.
	scripts, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.scripts.length`))
	if err != nil || scripts != 0 {
		t.Errorf("the page has %d scripts (%v)", scripts, err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil || len(shot) < 1000 {
		t.Fatalf("screenshot: %d bytes, %v", len(shot), err)
	}
	if os.Getenv("MCPGW_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile("../../docs/status.png", shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReloadAndObservability: metrics and tracing are built at start, so a
// reload that changes them is refused with what to do; a reload that goes
// through is when the status page says the config was loaded.
func TestReloadAndObservability(t *testing.T) {
	v1 := "listen: 127.0.0.1:0\nservers:\n" + serverYAML("t", "")
	h := newHarness(t, v1)
	for key, extra := range map[string]string{
		"metrics: changed": "metrics: {listen: 127.0.0.1:9464}\n",
		"tracing: changed": "tracing: {otlp_endpoint: \"http://127.0.0.1:4318\"}\n",
	} {
		_, err := h.g.Reload(context.Background(), testConfig(t, extra+v1))
		if !errors.Is(err, ErrRestartNeeded) || !strings.Contains(err.Error(), key) {
			t.Errorf("reload adding %q: %v, want a refusal naming %s", extra, err, key)
		}
	}
	before := time.Now()
	if _, err := h.g.Reload(context.Background(), testConfig(t, "listen: 127.0.0.1:0\nstatus: {enabled: true}\nservers:\n"+serverYAML("t", ""))); err != nil {
		t.Fatalf("reload: %v", err)
	}
	var p status.Page
	if err := json.Unmarshal(h.getStatus("application/json", nil).Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.ConfigLoaded.Before(before) {
		t.Errorf("config loaded %s, want after the reload at %s", p.ConfigLoaded, before)
	}
}
