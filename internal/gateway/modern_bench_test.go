package gateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The 2026-07-28 (stateless) path, which the Go SDK client takes by
// default: each call is a request of its own, validated and run on a
// throw-away session (session/stateless.go). Same server and pool as
// BenchmarkEchoDaemon1Session and BenchmarkEchoDaemon16Sessions.

// BenchmarkEchoDirectStdioModern is their baseline: the same client
// speaking 2026-07-28 to the demo server directly over stdio.
func BenchmarkEchoDirectStdioModern(b *testing.B) {
	benchCalls(b, directSessionVersion(b, nil))
}

// BenchmarkEchoDirectStdioModern1Proc16Callers: 16 concurrent callers of
// one server process over stdio, 2026-07-28.
func BenchmarkEchoDirectStdioModern1Proc16Callers(b *testing.B) {
	cs := directSessionVersion(b, nil)
	callers := make([]*mcp.ClientSession, 16)
	for i := range callers {
		callers[i] = cs
	}
	benchConcurrent(b, callers)
}

// BenchmarkEchoDaemonModern1Client: one modern client, daemon mode.
func BenchmarkEchoDaemonModern1Client(b *testing.B) {
	h := newHarness(b, benchDaemonYAML)
	benchCalls(b, h.connectVersion("demo", nil, &http.Transport{}, nil))
}

// BenchmarkEchoDaemonModern16Clients: 16 modern clients sharing one
// process.
func BenchmarkEchoDaemonModern16Clients(b *testing.B) {
	h := newHarness(b, benchDaemonYAML)
	clients := make([]*mcp.ClientSession, 16)
	for i := range clients {
		clients[i] = h.connectVersion("demo", nil, &http.Transport{}, nil)
	}
	benchConcurrent(b, clients)
}

// rawModernEcho is a 2026-07-28 tools/call echo as a raw client sends it.
const rawModernEcho = `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"benchmark payload"},` +
	`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"raw","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}}}`

// BenchmarkRawDaemonModern1Caller and …16Callers: the stateless path with
// the raw client of the Raw… benchmarks (bench_test.go), against the same
// daemon pool; compare with RawDaemon… (session era) and RawMinimalProxy…
// in the same run, CPU per call first.
func BenchmarkRawDaemonModern1Caller(b *testing.B)   { benchRawModern(b, 1) }
func BenchmarkRawDaemonModern16Callers(b *testing.B) { benchRawModern(b, 16) }

func benchRawModern(b *testing.B, n int) {
	h := newHarness(b, benchDaemonYAML)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	b.Cleanup(hc.CloseIdleConnections)
	call := rawModernCaller(h, hc)
	call(0)
	benchRaw(b, n, call)
}

// rawModernCaller returns a raw 2026-07-28 caller of h's demo server (any
// number of goroutines may call it at once).
func rawModernCaller(h *harness, hc *http.Client) func(int) {
	var next atomic.Int64
	return func(int) {
		req, _ := http.NewRequest(http.MethodPost, h.url("demo"), strings.NewReader(fmt.Sprintf(rawModernEcho, next.Add(1))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", "tools/call")
		req.Header.Set("Mcp-Name", "echo")
		resp, err := hc.Do(req)
		if err != nil {
			panic(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			panic(resp.Status)
		}
	}
}
