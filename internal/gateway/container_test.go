package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/enginetest"
	"github.com/mcpgw/mcpgw/internal/spawn"
	"github.com/mcpgw/mcpgw/internal/testserver"
)

// The container runtime through the gateway, against a real engine. Each
// test skips without an engine, or fails when MCPGW_REQUIRE_DOCKER=1.

// containerYAML is a container server running the test image; container
// is extra YAML for its container block, extra for the server.
func containerYAML(name, image, container, extra string) string {
	return fmt.Sprintf(`  %s:
    runtime: container
    timeouts: {kill_grace: 1s}
    container:
      image: %s
%s%s`, name, image, container, extra)
}

// ours lists this test process's containers of server.
func ours(t testing.TB, cli *client.Client, server string) []string {
	t.Helper()
	var ids []string
	for _, c := range enginetest.Containers(t, cli, spawn.LabelOwner+"="+spawn.Owner(), spawn.LabelServer+"="+server) {
		ids = append(ids, c.ID[:12]+" "+string(c.State))
	}
	return ids
}

func noContainersLeft(t testing.TB, cli *client.Client, server string) {
	t.Helper()
	eventually(t, 20*time.Second, "no container of "+server+" left", func() bool { return len(ours(t, cli, server)) == 0 })
}

func probe[T any](t testing.TB, cs *mcp.ClientSession, tool string, args map[string]any) T {
	t.Helper()
	var v T
	text := callText(t, cs, tool, args)
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("%s answered %q: %v", tool, text, err)
	}
	return v
}

// TestContainerDefaults proves the default hardening from inside a running
// container: uid 65534, no effective capabilities, no-new-privileges,
// seccomp filtering, read-only root with a writable /tmp, no network.
func TestContainerDefaults(t *testing.T) {
	image := enginetest.TestImage(t)
	cli := enginetest.Client(t)
	h := newHarness(t, "servers:\n"+containerYAML("cdefault", image, "", ""))
	cs := h.connect("cdefault", nil)

	st := probe[testserver.ProcStatus](t, cs, "proc_status", nil)
	if st.UID != 65534 || st.GID != 65534 {
		t.Errorf("uid:gid = %d:%d, want 65534:65534", st.UID, st.GID)
	}
	if st.CapEff != "0000000000000000" {
		t.Errorf("CapEff = %s, want 0", st.CapEff)
	}
	if st.NoNewPrivs != "1" {
		t.Errorf("NoNewPrivs = %s, want 1", st.NoNewPrivs)
	}
	if st.Seccomp != "2" {
		t.Errorf("Seccomp = %s, want 2 (filtering: the default profile)", st.Seccomp)
	}
	if st.NoFile != 1024 {
		t.Errorf("open file limit = %d, want 1024", st.NoFile)
	}
	if st.PID == 1 {
		t.Errorf("the server is PID 1; want an init process as PID 1")
	}
	if r := probe[testserver.ProbeResult](t, cs, "write_file", map[string]any{"path": "/probe"}); r.OK || !strings.Contains(r.Error, "read-only file system") {
		t.Errorf("writing /probe: %+v, want a read-only file system error", r)
	}
	if r := probe[testserver.ProbeResult](t, cs, "write_file", map[string]any{"path": "/tmp/probe"}); !r.OK {
		t.Errorf("writing /tmp/probe: %+v, want it to work", r)
	}
	ln := listenAll(t)
	for _, addr := range []string{"127.0.0.1:" + ln, "gateway:" + ln, "1.1.1.1:53"} {
		if r := probe[testserver.ProbeResult](t, cs, "dial", map[string]any{"addr": addr}); r.OK {
			t.Errorf("dial %s with network none worked", addr)
		}
	}

	// Logs carry runtime=container and the short container id.
	ids := ours(t, cli, "cdefault")
	if len(ids) != 1 {
		t.Fatalf("containers of cdefault: %v, want 1", ids)
	}
	short := strings.Fields(ids[0])[0]
	if got := h.logs.find("container started", map[string]any{"runtime": "container", "container": short}); len(got) != 1 {
		t.Errorf("no log line for container %s with runtime=container", short)
	}

	// Readiness reports the engine and the image.
	rr := h.do(mustReq(t, http.MethodGet, h.base+"/readyz"))
	var rd readiness
	if err := json.Unmarshal(rr.Body, &rd); err != nil || rr.Status != http.StatusOK || rd.Engine == nil || rd.Engine.Version == "" || rd.Servers["cdefault"].Image != image {
		t.Errorf("readyz: %d %s, want 200 with the engine version and the image", rr.Status, rr.Body)
	}

	_ = cs.Close() // DELETE
	noContainersLeft(t, cli, "cdefault")
}

// listenAll listens on every interface of the host and returns the port;
// a container on the bridge can reach it only through the bridge gateway.
func listenAll(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestContainerSettings proves each configurable setting from inside a
// container.
func TestContainerSettings(t *testing.T) {
	image := enginetest.TestImage(t)
	cli := enginetest.Client(t)
	port := listenAll(t)
	tests := []struct {
		name      string
		container string
		check     func(t *testing.T, cs *mcp.ClientSession)
	}{
		{
			name:      "bridge",
			container: "      network: bridge\n",
			check: func(t *testing.T, cs *mcp.ClientSession) {
				// The host's loopback is not the container's.
				if r := probe[testserver.ProbeResult](t, cs, "dial", map[string]any{"addr": "127.0.0.1:" + port}); r.OK {
					t.Errorf("dial of the host's loopback worked from the bridge")
				}
				// The network works: the host is reachable via the bridge.
				if r := probe[testserver.ProbeResult](t, cs, "dial", map[string]any{"addr": "gateway:" + port}); !r.OK {
					t.Errorf("dial of the bridge gateway: %s, want it to work", r.Error)
				}
			},
		},
		{
			name:      "read_only false as root",
			container: "      read_only: false\n      user: \"0:0\"\n",
			check: func(t *testing.T, cs *mcp.ClientSession) {
				if r := probe[testserver.ProbeResult](t, cs, "write_file", map[string]any{"path": "/probe"}); !r.OK {
					t.Errorf("writing /probe: %s, want it to work", r.Error)
				}
				if st := probe[testserver.ProcStatus](t, cs, "proc_status", nil); st.UID != 0 || st.CapEff != "0000000000000000" {
					t.Errorf("uid %d CapEff %s, want 0 and no capabilities even as root", st.UID, st.CapEff)
				}
			},
		},
		{
			name:      "read_only true as root",
			container: "      user: \"0:0\"\n",
			check: func(t *testing.T, cs *mcp.ClientSession) {
				if r := probe[testserver.ProbeResult](t, cs, "write_file", map[string]any{"path": "/probe"}); r.OK || !strings.Contains(r.Error, "read-only") {
					t.Errorf("writing /probe: %+v, want read-only file system", r)
				}
			},
		},
		{
			name:      "user, cap_add and nofile",
			container: "      user: \"1234:2345\"\n      cap_add: [NET_BIND_SERVICE]\n      nofile: 64\n",
			check: func(t *testing.T, cs *mcp.ClientSession) {
				st := probe[testserver.ProcStatus](t, cs, "proc_status", nil)
				if st.NoFile != 64 {
					t.Errorf("open file limit = %d, want 64", st.NoFile)
				}
				if st.UID != 1234 || st.GID != 2345 {
					t.Errorf("uid:gid = %d:%d, want 1234:2345", st.UID, st.GID)
				}
				// A non-root process has no effective capabilities; the
				// bounding set holds exactly the one added back.
				if st.CapBnd != "0000000000000400" {
					t.Errorf("CapBnd = %s, want only NET_BIND_SERVICE (0x400)", st.CapBnd)
				}
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("cset%d", i)
			h := newHarness(t, "servers:\n"+containerYAML(name, image, tt.container, ""))
			cs := h.connect(name, nil)
			tt.check(t, cs)
			_ = cs.Close()
			noContainersLeft(t, cli, name)
		})
	}
}

// TestContainerLimits: pids_limit stops a fork loop and memory OOM-kills an
// allocation loop; the client gets one JSON-RPC error and the gateway stays
// up.
func TestContainerLimits(t *testing.T) {
	image := enginetest.TestImage(t)
	cli := enginetest.Client(t)
	h := newHarness(t, "servers:\n"+
		containerYAML("cpids", image, "      pids_limit: 48\n", "")+
		containerYAML("cmem", image, "      memory: 32m\n", ""))

	t.Run("pids_limit", func(t *testing.T) {
		cs := h.connect("cpids", nil)
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "fork_loop", Arguments: map[string]any{"count": 500}})
		// The loop must stop short of 500; the Go runtime of the server
		// may itself fail to create a thread at the limit and die, which
		// is one JSON-RPC error.
		if err == nil {
			var fr testserver.ForkResult
			if jerr := json.Unmarshal([]byte(res.Content[0].(*mcp.TextContent).Text), &fr); jerr != nil {
				t.Fatal(jerr)
			}
			if fr.Started >= 500 || fr.Error == "" {
				t.Errorf("fork loop: %+v, want it stopped by the pids limit", fr)
			}
			t.Logf("fork loop stopped after %d children: %s", fr.Started, fr.Error)
		} else {
			t.Logf("the server died at the pids limit: %v", err)
		}
		// The gateway is unharmed: a new session works.
		cs2 := h.connect("cpids", nil)
		if got := callText(t, cs2, "echo", map[string]any{"text": "alive"}); got != "alive" {
			t.Errorf("echo after the fork loop = %q", got)
		}
	})

	t.Run("memory", func(t *testing.T) {
		sid := h.rawSession("cmem", "2025-06-18")
		r := h.post("cmem", `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"alloc","arguments":{"mb":512}}}`,
			map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-06-18"})
		// Exactly one JSON-RPC error for the request, as the status of
		// the POST since nothing was streamed yet.
		var msg struct {
			ID    int `json:"id"`
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(r.Body, &msg); err != nil || r.Status != http.StatusBadGateway || msg.ID != 7 || msg.Error.Code != -32002 {
			t.Fatalf("alloc 512 MiB with memory 32m: %d %s, want 502 with one -32002 error for id 7", r.Status, r.Body)
		}
		t.Logf("client got: %s", msg.Error.Message)
		eventually(t, 10*time.Second, "the OOM kill in the log", func() bool {
			for _, l := range h.logs.Lines() {
				if strings.Contains(fmt.Sprint(l["error"]), "memory limit") {
					return true
				}
			}
			return false
		})
		cs2 := h.connect("cmem", nil)
		if got := callText(t, cs2, "echo", map[string]any{"text": "alive"}); got != "alive" {
			t.Errorf("echo after the OOM kill = %q", got)
		}
	})
	h.shutdown(20 * time.Second)
	noContainersLeft(t, cli, "cpids")
	noContainersLeft(t, cli, "cmem")
}

// TestContainerMissingImage: 503 before any stream, naming the image and
// the command that gets it; readiness says the same.
func TestContainerMissingImage(t *testing.T) {
	enginetest.Client(t)
	const img = "mcpgw-test-missing-image:none"
	h := newHarness(t, "servers:\n"+containerYAML("cmissing", img, "", ""))
	r := h.post("cmissing", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if r.Status != http.StatusServiceUnavailable || r.errorCode() != -32004 ||
		!strings.Contains(string(r.Body), img) || !strings.Contains(string(r.Body), "docker pull "+img) {
		t.Errorf("initialize: %d %s, want 503 -32004 naming the image and docker pull", r.Status, r.Body)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("503 without Retry-After")
	}
	rr := h.do(mustReq(t, http.MethodGet, h.base+"/readyz"))
	if rr.Status != http.StatusServiceUnavailable || !strings.Contains(string(rr.Body), img) {
		t.Errorf("readyz: %d %s, want 503 naming the image", rr.Status, rr.Body)
	}
}

// TestContainerEngineDown: with no engine answering (DOCKER_HOST pointing
// at a socket nobody serves, which is what a stopped engine looks like to
// the gateway), readiness is 503, container servers answer 503 and native
// servers keep working. The real engine is not stopped: that would break
// container tests running in parallel in other packages.
func TestContainerEngineDown(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+t.TempDir()+"/docker.sock")
	h := newHarness(t, "servers:\n"+containerYAML("cdown", "mcpgw-testserver:test", "", "")+serverYAML("t", ""))
	r := h.post("cdown", fmt.Sprintf(initBody, "2025-06-18"), nil)
	if r.Status != http.StatusServiceUnavailable || r.errorCode() != -32004 {
		t.Errorf("initialize with the engine down: %d %s, want 503 -32004", r.Status, r.Body)
	}
	rr := h.do(mustReq(t, http.MethodGet, h.base+"/readyz"))
	var rd readiness
	if err := json.Unmarshal(rr.Body, &rd); err != nil || rr.Status != http.StatusServiceUnavailable || rd.Engine == nil || rd.Engine.Ready || rd.Engine.Error == "" {
		t.Errorf("readyz with the engine down: %d %s, want 503 with an engine error", rr.Status, rr.Body)
	}
	if !rd.Servers["t"].Ready || rd.Servers["cdown"].Ready {
		t.Errorf("readyz servers: %+v, want t ready and cdown not", rd.Servers)
	}
	cs := h.connect("t", nil)
	if got := callText(t, cs, "echo", map[string]any{"text": "native"}); got != "native" {
		t.Errorf("native echo = %q", got)
	}
}

// TestContainerCleanup: no container is left after a session ends by
// DELETE, idle timeout, crash, or gateway shutdown.
func TestContainerCleanup(t *testing.T) {
	image := enginetest.TestImage(t)
	cli := enginetest.Client(t)
	tests := []struct {
		name  string
		extra string
		end   func(t *testing.T, h *harness, cs *mcp.ClientSession)
	}{
		{name: "delete", end: func(t *testing.T, h *harness, cs *mcp.ClientSession) { _ = cs.Close() }},
		{name: "idle", extra: "    timeouts: {idle: 2s, kill_grace: 1s}\n", end: func(t *testing.T, h *harness, cs *mcp.ClientSession) {}},
		{name: "crash", end: func(t *testing.T, h *harness, cs *mcp.ClientSession) {
			_, _ = cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "crash", Arguments: map[string]any{"code": 3}})
		}},
		{name: "shutdown", end: func(t *testing.T, h *harness, cs *mcp.ClientSession) { h.shutdown(20 * time.Second) }},
		{name: "stdin ignored", extra: "    env: {MCPGW_TESTSERVER_IGNORE_TERM: \"1\"}\n", end: func(t *testing.T, h *harness, cs *mcp.ClientSession) { _ = cs.Close() }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("cclean%d", i)
			yaml := "servers:\n" + containerYAML(name, image, "", "")
			if tt.extra != "" {
				// The extra keys replace the default timeouts line.
				yaml = strings.Replace(yaml, "    timeouts: {kill_grace: 1s}\n", tt.extra, 1)
				if !strings.Contains(tt.extra, "timeouts") {
					yaml += "    timeouts: {kill_grace: 1s}\n"
				}
			}
			h := newHarness(t, yaml)
			cs := h.connect(name, nil)
			callText(t, cs, "echo", map[string]any{"text": "x"})
			if got := ours(t, cli, name); len(got) != 1 {
				t.Fatalf("containers: %v, want 1", got)
			}
			tt.end(t, h, cs)
			noContainersLeft(t, cli, name)
		})
	}
}

// TestContainerDaemon: in daemon mode the sessions share one container,
// over the same attach stream, and shutdown removes it.
func TestContainerDaemon(t *testing.T) {
	image := enginetest.TestImage(t)
	cli := enginetest.Client(t)
	h := newHarness(t, "servers:\n"+containerYAML("cdaemon", image, "", "    mode: daemon\n    max_processes: 1\n"))
	a := h.connect("cdaemon", nil)
	b := h.connect("cdaemon", nil)
	for i, cs := range []*mcp.ClientSession{a, b} {
		want := fmt.Sprintf("session %d", i)
		if got := callText(t, cs, "echo", map[string]any{"text": want}); got != want {
			t.Errorf("echo = %q, want %q", got, want)
		}
	}
	if got := ours(t, cli, "cdaemon"); len(got) != 1 {
		t.Errorf("containers with two daemon sessions: %v, want 1", got)
	}
	h.shutdown(20 * time.Second)
	noContainersLeft(t, cli, "cdaemon")
}

// TestContainerModern: 2026-07-28 clients (the Go SDK client's default)
// with a container server: in daemon mode on the pooled container; in
// launcher mode on the identity's container, reused by its requests; with
// isolation: request on a container started for each request and removed
// after it.
func TestContainerModern(t *testing.T) {
	image := enginetest.TestImage(t)
	cli := enginetest.Client(t)
	h := newHarness(t, "servers:\n"+containerYAML("cmd", image, "", "    mode: daemon\n    max_processes: 1\n")+
		containerYAML("cml", image, "", "")+containerYAML("cmr", image, "", "    isolation: request\n"))
	for _, name := range []string{"cmd", "cml", "cmr"} {
		cs := h.connectVersion(name, nil, &http.Transport{}, nil)
		if v := cs.InitializeResult().ProtocolVersion; v != "2026-07-28" {
			t.Errorf("%s: negotiated %s, want 2026-07-28", name, v)
		}
		for i := range 2 {
			want := fmt.Sprintf("modern %s %d", name, i)
			if got := callText(t, cs, "echo", map[string]any{"text": want}); got != want {
				t.Errorf("%s: echo = %q", name, got)
			}
		}
	}
	if got := ours(t, cli, "cmd"); len(got) != 1 {
		t.Errorf("daemon containers: %v, want 1", got)
	}
	if got := ours(t, cli, "cml"); len(got) != 1 {
		t.Errorf("launcher containers after one identity's discover and 2 calls: %v, want 1 (kept warm)", got)
	}
	noContainersLeft(t, cli, "cmr") // each request's container is gone after it
	h.shutdown(20 * time.Second)
	noContainersLeft(t, cli, "cmd")
	noContainersLeft(t, cli, "cml")
}
