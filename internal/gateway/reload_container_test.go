package gateway

import (
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/enginetest"
)

// TestReloadAddsContainerServer: a gateway started without any container
// server connects to the engine when a reload adds one, which then serves;
// a reload that removes it leaves no container once the drain is over.
func TestReloadAddsContainerServer(t *testing.T) {
	image := enginetest.TestImage(t)
	cli := enginetest.Client(t)
	const head = "listen: 127.0.0.1:0\nlimits: {shutdown_timeout: 2s}\nservers:\n"
	native := markedServer("n", "k", "")
	h := newHarness(t, head+native)
	h.reload(head + native + containerYAML("rcont", image, "", ""))
	cs := h.connect("rcont", nil)
	if got := callText(t, cs, "echo", map[string]any{"text": "in a container"}); got != "in a container" {
		t.Errorf("echo: %q", got)
	}
	if got := ours(t, cli, "rcont"); len(got) != 1 {
		t.Fatalf("containers of the added server: %v, want 1", got)
	}
	res := h.reload(head + native)
	if len(res.Removed) != 1 || res.Removed[0] != "rcont" {
		t.Fatalf("reload: %+v", res.ReloadResult)
	}
	eventually(t, 2*time.Second+20*time.Second, "the removed server's container gone", func() bool { return len(ours(t, cli, "rcont")) == 0 })
}
