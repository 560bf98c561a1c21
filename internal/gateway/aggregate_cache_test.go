package gateway

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/testserver"
)

// describedYAML is a gateway with a test server m (in mode) whose echo
// description is descFile's content, and an aggregate of it, all. With
// live, each tools/list reads the file again (a server whose tools change
// while it runs); without, each start does.
func describedYAML(mode, descFile string, live bool, extra string) string {
	env := fmt.Sprintf("MCPGW_TESTSERVER: \"1\", %s: %q", testserver.EnvEchoDescriptionFile, descFile)
	if live {
		env += fmt.Sprintf(", %s: \"1\"", testserver.EnvEchoDescriptionLive)
	}
	return fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  m:\n    mode: %s\n    command: [\"${TESTBIN}\"]\n    env: {%s}\n    read_paths: [%q]\n%s  all:\n    aggregate: [m]\n",
		mode, env, filepath.Dir(descFile), extra)
}

// echoDescription is the description tools/list gives the tool named echo.
func echoDescription(t testing.TB, cs *mcp.ClientSession, echo string) string {
	t.Helper()
	for tool, err := range cs.Tools(context.Background(), nil) {
		if err != nil {
			t.Fatalf("tools/list: %v", err)
		}
		if tool.Name == echo {
			return tool.Description
		}
	}
	t.Fatalf("tools/list has no %s", echo)
	return ""
}

func writeFile(t testing.TB, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAggregateListCache: an aggregate keeps each member's list until the
// member says it changed. A daemon member's list is kept for every
// aggregate session on its process (a second session gets the first one's
// list, even though the server would now answer otherwise); a launcher
// member's only for the session whose process it is. After the member's
// list_changed, the next list is the server's new one.
func TestAggregateListCache(t *testing.T) {
	for _, mode := range []string{"launcher", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			desc := filepath.Join(t.TempDir(), "echo.txt")
			writeFile(t, desc, "one")
			h := newHarness(t, describedYAML(mode, desc, true, ""))
			changed := make(chan struct{}, 16)
			first := h.connect("all", &mcp.ClientOptions{
				ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
			})
			if got := echoDescription(t, first, "m__echo"); got != "one" {
				t.Fatalf("first list: echo is %q, want one", got)
			}

			writeFile(t, desc, "two")
			if got := echoDescription(t, h.connect("m", nil), "echo"); got != "two" {
				t.Fatalf("the server's own URL lists echo as %q, want two", got)
			}
			if got := echoDescription(t, first, "m__echo"); got != "one" {
				t.Errorf("second list of the same session: echo is %q, want one (kept until list_changed)", got)
			}
			second := h.connect("all", nil)
			want := map[string]string{"launcher": "two", "daemon": "one"}[mode]
			if got := echoDescription(t, second, "m__echo"); got != want {
				t.Errorf("another aggregate session: echo is %q, want %q", got, want)
			}

			callText(t, first, "m__list_changed", nil)
			select {
			case <-changed:
			case <-time.After(10 * time.Second):
				t.Fatal("no notifications/tools/list_changed through the aggregate")
			}
			if got := echoDescription(t, first, "m__echo"); got != "two" {
				t.Errorf("after list_changed: echo is %q, want two", got)
			}
			if got := echoDescription(t, second, "m__echo"); got != "two" {
				t.Errorf("after list_changed, the other session: echo is %q, want two", got)
			}
		})
	}
}

// TestAggregateListCacheProcessReplaced: when a daemon member's process is
// replaced, the aggregate's next list is the new process's, though no
// list_changed was sent.
func TestAggregateListCacheProcessReplaced(t *testing.T) {
	desc := filepath.Join(t.TempDir(), "echo.txt")
	writeFile(t, desc, "one")
	h := newHarness(t, describedYAML("daemon", desc, false, ""))
	cs := h.connect("all", nil)
	if got := echoDescription(t, cs, "m__echo"); got != "one" {
		t.Fatalf("first list: echo is %q, want one", got)
	}
	writeFile(t, desc, "two") // read by the next process when it starts
	before := callText(t, cs, "m__whoami", nil)
	_, _ = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "m__crash", Arguments: map[string]any{"code": 3}})
	if got := echoDescription(t, cs, "m__echo"); got != "two" {
		t.Errorf("after the process was replaced: echo is %q, want two", got)
	}
	if after := callText(t, cs, "m__whoami", nil); after == before {
		t.Errorf("whoami = %q before and after the crash: the process was not replaced", after)
	}
}

// TestAggregateListCachePerCaller: what a member lists to one client never
// reaches another through the cache. A launcher member's list may differ
// by client (here echo's description names the client); a daemon
// member's cached list is filtered by the member's policy for each
// caller, whichever caller filled the cache.
func TestAggregateListCachePerCaller(t *testing.T) {
	t.Run("launcher", func(t *testing.T) {
		h := newHarness(t, fmt.Sprintf("listen: 127.0.0.1:0\nservers:\n  m:\n    command: [\"${TESTBIN}\"]\n    env: {MCPGW_TESTSERVER: \"1\", %s: \"1\"}\n  all:\n    aggregate: [m]\n",
			testserver.EnvEchoDescribeClient))
		for _, name := range []string{"alice-client", "bob-client", "alice-client"} {
			client := mcp.NewClient(&mcp.Implementation{Name: name, Version: "1"}, nil)
			tr := &http.Transport{}
			cs, err := client.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: h.url("all"), HTTPClient: &http.Client{Transport: tr}}, sessionEra)
			if err != nil {
				t.Fatal(err)
			}
			if got := echoDescription(t, cs, "m__echo"); got != "for "+name {
				t.Errorf("%s's list: echo is %q", name, got)
			}
			_ = cs.Close()
			tr.CloseIdleConnections()
		}
	})
	t.Run("daemon", func(t *testing.T) {
		h := newHarness(t, authYAML(nil, "")+serverYAML("m", "    mode: daemon\n    policy: [{deny: 'identity.name == \"laptop\" && tool.name == \"crash\"'}]\n")+
			"  all:\n    aggregate: [m]\n")
		for _, who := range []struct{ name, token string }{{"laptop", laptopToken}, {"ci", ciToken}, {"laptop", laptopToken}, {"ci", ciToken}} {
			cs := h.connectAs("all", http.Header{"Authorization": {"Bearer " + who.token}}, sessionEra)
			names := toolNames(t, cs)
			if !slices.Contains(names, "m__echo") || slices.Contains(names, "m__crash") != (who.name == "ci") {
				t.Errorf("%s's list = %s", who.name, strings.Join(names, " "))
			}
			_ = cs.Close()
		}
	})
}
