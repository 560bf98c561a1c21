package gateway

import (
	"net/http"
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
