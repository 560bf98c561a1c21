package interop

import (
	"context"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Launcher mode with server-everything (Node), the Go SDK v1.8 client
// calling echo: 2026-07-28 (stateless: the identity's warm process) against
// 2025-11-25 (a session and its process). Run both in one invocation:
//
//	go test -run '^$' -bench EverythingLauncher -benchtime 300x ./internal/interop/
//
// Results are in docs/benchmarks.md.

func BenchmarkEverythingLauncher20251125(b *testing.B) { benchEverything(b, "2025-11-25") }
func BenchmarkEverythingLauncherModern(b *testing.B)   { benchEverything(b, "") }

func benchEverything(b *testing.B, version string) {
	f := newFixture(b)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	client := mcp.NewClient(&mcp.Implementation{Name: "mcpgw-bench", Version: "1"}, nil)
	var so *mcp.ClientSessionOptions
	if version != "" {
		so = &mcp.ClientSessionOptions{ProtocolVersion: version}
	}
	cs, err := client.Connect(b.Context(), &mcp.StreamableClientTransport{Endpoint: f.url("ev"), HTTPClient: hc}, so)
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	want := "2026-07-28"
	if version != "" {
		want = version
	}
	if v := cs.InitializeResult().ProtocolVersion; v != want {
		b.Fatalf("negotiated %s, want %s", v, want)
	}
	call := func() {
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"message": "benchmark payload"}})
		if err != nil || res.IsError {
			b.Fatalf("echo: %v %v", err, res)
		}
	}
	for range 20 { // warm-up: the process start and the first calls
		call()
	}
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		call()
		samples = append(samples, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	p := func(q float64) float64 { return float64(samples[int(q*float64(len(samples)-1))].Microseconds()) }
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.90), "p90-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}
