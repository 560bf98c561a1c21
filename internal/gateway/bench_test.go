package gateway

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The benchmarks compare a tools/call echo round trip through the gateway
// with the same server (the demo server, started from this test binary)
// called directly over stdio by the same Go SDK client. Run them all in one
// go (see docs/benchmarks.md):
//
//	go test -run '^$' -bench . -benchtime 2000x ./internal/gateway/
//
// The setup benchmarks take longer per iteration; 300x is plenty for them.

const benchYAML = `listen: 127.0.0.1:0
log: {level: error}
limits: {max_processes: 64}
servers:
  demo:
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
    max_concurrent: 64
    max_processes: 64
`

func echoArgs() *mcp.CallToolParams {
	return &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "benchmark payload"}}
}

// reportLatency records p50/p99 of samples in microseconds.
func reportLatency(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	p := func(q float64) float64 {
		return float64(samples[int(q*float64(len(samples)-1))].Microseconds())
	}
	b.ReportMetric(p(0.50), "p50-µs")
	b.ReportMetric(p(0.99), "p99-µs")
}

func benchCalls(b *testing.B, cs *mcp.ClientSession) {
	ctx := context.Background()
	for range 20 { // warm up
		if _, err := cs.CallTool(ctx, echoArgs()); err != nil {
			b.Fatal(err)
		}
	}
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := cs.CallTool(ctx, echoArgs()); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, samples)
}

func BenchmarkEchoDirectStdio(b *testing.B) {
	benchCalls(b, directSession(b))
}

// BenchmarkEchoDirectStdio16 is the 16-process baseline for the gateway's
// 16-session throughput: the same client calls 16 directly spawned servers.
func BenchmarkEchoDirectStdio16(b *testing.B) {
	sessions := make([]*mcp.ClientSession, 16)
	for i := range sessions {
		sessions[i] = directSession(b)
	}
	benchConcurrent(b, sessions)
}

func BenchmarkEchoGateway1Session(b *testing.B) {
	h := newHarness(b, benchYAML)
	cs := h.connect("demo", nil)
	benchCalls(b, cs)
}

// BenchmarkEchoGateway16Sessions reports throughput: calls per second over
// 16 sessions (16 processes) calling concurrently.
func BenchmarkEchoGateway16Sessions(b *testing.B) {
	h := newHarness(b, benchYAML)
	const n = 16
	sessions := make([]*mcp.ClientSession, n)
	for i := range sessions {
		sessions[i] = h.connect("demo", nil)
	}
	benchConcurrent(b, sessions)
}

// benchConcurrent spreads b.N calls over the sessions, one goroutine each,
// and reports calls per second and per-call latency.
func benchConcurrent(b *testing.B, sessions []*mcp.ClientSession) {
	n := len(sessions)
	ctx := context.Background()
	var mu sync.Mutex
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	per := (b.N + n - 1) / n
	for _, cs := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, per)
			for range per {
				t0 := time.Now()
				if _, err := cs.CallTool(ctx, echoArgs()); err != nil {
					b.Error(err)
					return
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(per*n)/elapsed.Seconds(), "calls/s")
	reportLatency(b, samples)
}

// BenchmarkSessionSetup measures initialize (process start included) to
// the first answered call, through the gateway.
func BenchmarkSessionSetup(b *testing.B) {
	h := newHarness(b, benchYAML)
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.url("demo"), HTTPClient: hc}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cs.CallTool(context.Background(), echoArgs()); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
		_ = cs.Close()
	}
	b.StopTimer()
	reportLatency(b, samples)
}

const benchDaemonYAML = `listen: 127.0.0.1:0
log: {level: error}
servers:
  demo:
    command: ["${TESTBIN}"]
    env: {MCPGW_TEST_DEMO: "1"}
    mode: daemon
    max_processes: 1
    max_concurrent: 128
    max_inflight_per_process: 128
    queue_timeout: 10s
`

// directSession starts the demo server and connects to it over stdio.
func directSession(b *testing.B) *mcp.ClientSession {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{"MCPGW_TEST_DEMO=1", "PATH=" + os.Getenv("PATH")}
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs
}

// BenchmarkEchoDirectStdio1Proc16Callers is daemon mode's baseline: one
// server process answering 16 concurrent callers over its stdio.
func BenchmarkEchoDirectStdio1Proc16Callers(b *testing.B) {
	cs := directSession(b)
	callers := make([]*mcp.ClientSession, 16)
	for i := range callers {
		callers[i] = cs
	}
	benchConcurrent(b, callers)
}

func BenchmarkEchoDaemon1Session(b *testing.B) {
	h := newHarness(b, benchDaemonYAML)
	benchCalls(b, h.connect("demo", nil))
}

func benchDaemonSessions(b *testing.B, n int) {
	h := newHarness(b, benchDaemonYAML)
	sessions := make([]*mcp.ClientSession, n)
	for i := range sessions {
		sessions[i] = h.connect("demo", nil)
	}
	benchConcurrent(b, sessions)
}

// BenchmarkEchoDaemon16Sessions: 16 sessions sharing one process.
func BenchmarkEchoDaemon16Sessions(b *testing.B) { benchDaemonSessions(b, 16) }

// BenchmarkEchoDaemon64Sessions: 64 sessions sharing one process.
func BenchmarkEchoDaemon64Sessions(b *testing.B) { benchDaemonSessions(b, 64) }

// BenchmarkEchoGateway64Sessions: launcher mode, 64 sessions = 64 processes.
func BenchmarkEchoGateway64Sessions(b *testing.B) {
	h := newHarness(b, benchYAML)
	sessions := make([]*mcp.ClientSession, 64)
	for i := range sessions {
		sessions[i] = h.connect("demo", nil)
	}
	benchConcurrent(b, sessions)
}

// BenchmarkSessionSetupDaemon: initialize answered from the pooled
// process's cached handshake, then the first call.
func BenchmarkSessionSetupDaemon(b *testing.B) {
	h := newHarness(b, benchDaemonYAML)
	h.connect("demo", nil) // the pool's process is up before timing starts
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.url("demo"), HTTPClient: hc}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := cs.CallTool(context.Background(), echoArgs()); err != nil {
			b.Fatal(err)
		}
		samples = append(samples, time.Since(start))
		_ = cs.Close()
	}
	b.StopTimer()
	reportLatency(b, samples)
}
