// Package browsertest starts headless Chromium for tests that check what a
// person sees in a browser (the OAuth consent page, the status page),
// driven over the DevTools protocol with chromedp.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// RequireEnv turns a missing Chromium from a skip into a failure;
// .ci/run installs Debian's chromium and sets it.
const RequireEnv = "MCPGW_REQUIRE_CHROMIUM"

// Require returns the path of a Chromium binary, or skips the test (fails
// it under MCPGW_REQUIRE_CHROMIUM=1).
func Require(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("chromium is not on PATH (%s=1)", RequireEnv)
	}
	t.Skipf("skipping browser test: chromium is not on PATH (apt-get install chromium, or set %s=1 to make this a failure)", RequireEnv)
	return ""
}

// New starts headless Chromium with a fresh profile, stopped with the
// test, and returns a context for chromedp.Run bounded to 90 seconds.
// Flags keep it off the network (no background services, no QUIC) and in
// a container-friendly mode; more adds flags (a window size).
func New(t *testing.T, more ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	path := Require(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, more...)...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser; its context must have no
	// deadline (a deadline would stop the browser), later ones may.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	tctx, tcancel := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(tcancel)
	return tctx
}
