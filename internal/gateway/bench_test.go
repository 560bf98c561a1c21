package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/enginetest"
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
	ctx := context.Background()
	benchRaw(b, len(sessions), func(i int) {
		if _, err := sessions[i].CallTool(ctx, echoArgs()); err != nil {
			panic(err) // b.Fatal must not be called from the callers' goroutines
		}
	})
}

// BenchmarkSessionSetup measures initialize (process start included) to
// the first answered call, through the gateway.
func BenchmarkSessionSetup(b *testing.B) {
	benchSetup(b, newHarness(b, benchYAML), "demo")
}

// Native versus container: the same test server (whose echo
// tool matches the demo server's) as a native process and in a container
// of the test image, through the gateway.
func benchRuntimesYAML(image string) string {
	return `listen: 127.0.0.1:0
log: {level: error}
servers:
  native:
    command: ["${TESTBIN}"]
    env: {MCPGW_TESTSERVER: "1"}
    max_concurrent: 64
    max_processes: 64
  container:
    runtime: container
    max_concurrent: 64
    max_processes: 64
    timeouts: {kill_grace: 1s}
    container: {image: ` + image + `}
`
}

// BenchmarkLaunchNative is launch-to-first-response of a native test server.
func BenchmarkLaunchNative(b *testing.B) {
	benchSetup(b, newHarness(b, benchRuntimesYAML("unused")), "native")
}

// BenchmarkLaunchContainer is launch-to-first-response of the test server
// in a container: create, attach, start, initialize, first call.
func BenchmarkLaunchContainer(b *testing.B) {
	image := enginetest.TestImage(b)
	benchSetup(b, newHarness(b, benchRuntimesYAML(image)), "container")
}

// BenchmarkEchoNative1Session is the per-call round trip to a native test
// server through the gateway.
func BenchmarkEchoNative1Session(b *testing.B) {
	h := newHarness(b, benchRuntimesYAML("unused"))
	benchCalls(b, h.connect("native", nil))
}

// BenchmarkEchoContainer1Session is the per-call round trip to the test
// server in a container (stdio over the engine's attach stream).
func BenchmarkEchoContainer1Session(b *testing.B) {
	image := enginetest.TestImage(b)
	h := newHarness(b, benchRuntimesYAML(image))
	benchCalls(b, h.connect("container", nil))
}

func benchSetup(b *testing.B, h *harness, server string) {
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.url(server), HTTPClient: hc}, sessionEra)
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

// demoCommand runs this test binary as the demo server (TestMain).
func demoCommand(b *testing.B) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = []string{"MCPGW_TEST_DEMO=1", "PATH=" + os.Getenv("PATH")}
	return cmd
}

// directSession starts the demo server and connects to it over stdio, with
// the protocol version the gateway benchmarks' clients use (2025-11-25).
func directSession(b *testing.B) *mcp.ClientSession { return directSessionVersion(b, sessionEra) }

// directSessionVersion is directSession with session options so (nil: the
// client's default, 2026-07-28).
func directSessionVersion(b *testing.B, so *mcp.ClientSessionOptions) *mcp.ClientSession {
	cmd := demoCommand(b)
	client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, so)
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
	benchSetup(b, h, "demo")
}

// The raw benchmarks take the SDK client out of the measurement: in
// production the clients run elsewhere, so their CPU is not the gateway's.
// A minimal client speaks JSON-RPC over stdio (direct) or plain HTTP
// (through the gateway), and both sides reach the same demo server.

const rawEcho = `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"benchmark payload"}}}`

// rawStdio multiplexes concurrent callers over one server's stdio.
type rawStdio struct {
	mu      sync.Mutex
	stdin   io.Writer
	nextID  int
	waiters map[int]chan []byte
}

func newRawStdio(b *testing.B) *rawStdio {
	cmd := demoCommand(b)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	r := &rawStdio{stdin: stdin, waiters: map[int]chan []byte{}}
	done := make(chan struct{})
	go func() { // owner: the benchmark; ends when the server exits
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m struct{ ID int }
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			r.mu.Lock()
			ch := r.waiters[m.ID]
			delete(r.waiters, m.ID)
			r.mu.Unlock()
			if ch != nil {
				ch <- append([]byte(nil), sc.Bytes()...)
			}
		}
	}()
	b.Cleanup(func() { stdin.Close(); <-done; _ = cmd.Wait() })
	r.call(`{"jsonrpc":"2.0","id":%d,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	fmt.Fprintln(stdin, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return r
}

func (r *rawStdio) call(format string) []byte {
	ch := make(chan []byte, 1)
	r.mu.Lock()
	r.nextID++
	id := r.nextID
	r.waiters[id] = ch
	fmt.Fprintf(r.stdin, format+"\n", id)
	r.mu.Unlock()
	return <-ch
}

// rawHTTP is one session through the gateway, spoken with plain net/http.
type rawHTTP struct {
	url, sid string
	hc       *http.Client
	nextID   atomic.Int64
}

func newRawHTTP(b *testing.B, h *harness, hc *http.Client) *rawHTTP {
	c := &rawHTTP{url: h.url("demo"), hc: hc}
	resp := c.post(fmt.Sprintf(initBody, "2025-11-25"))
	c.sid = resp.Header.Get("Mcp-Session-Id")
	if c.sid == "" {
		b.Fatal("no session")
	}
	c.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return c
}

func (c *rawHTTP) post(body string) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.sid != "" {
		req.Header.Set("Mcp-Session-Id", c.sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		panic(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (c *rawHTTP) call() {
	if r := c.post(fmt.Sprintf(rawEcho, c.nextID.Add(1))); r.StatusCode != http.StatusOK {
		panic(r.Status)
	}
}

// benchRaw runs b.N calls spread over n concurrent callers. Besides
// latency and throughput it reports the CPU time spent per call by this
// process (the client, and the gateway when there is one) and by its child
// processes (the servers), from /proc at 10 ms resolution: on two shared
// vCPUs, throughput is bounded by their sum.
func benchRaw(b *testing.B, n int, call func(i int)) {
	var mu sync.Mutex
	samples := make([]time.Duration, 0, b.N)
	per := (b.N + n - 1) / n
	b.ResetTimer()
	self0, children0 := cpuTicks(os.Getpid()), childrenCPUTicks()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, per)
			for range per {
				t0 := time.Now()
				call(i)
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			samples = append(samples, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	self1, children1 := cpuTicks(os.Getpid()), childrenCPUTicks()
	b.StopTimer()
	b.ReportMetric(float64(per*n)/elapsed.Seconds(), "calls/s")
	if self0 >= 0 && self1 >= 0 {
		const µsPerTick = 1e6 / 100 // USER_HZ
		b.ReportMetric(float64(self1-self0)*µsPerTick/float64(per*n), "self-cpu-µs/op")
		b.ReportMetric(float64(children1-children0)*µsPerTick/float64(per*n), "servers-cpu-µs/op")
	}
	reportLatency(b, samples)
}

// cpuTicks is the user+system CPU time of process pid in clock ticks, or
// -1 where /proc cannot tell.
func cpuTicks(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return -1
	}
	f := strings.Fields(s[i+2:]) // from field 3, state
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return utime + stime
}

// childrenCPUTicks sums cpuTicks over this process's running children.
func childrenCPUTicks() int64 {
	var sum int64
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, t := range tasks {
		data, _ := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				if c := cpuTicks(pid); c > 0 {
					sum += c
				}
			}
		}
	}
	return sum
}

// BenchmarkRawBareHTTP is the floor of any HTTP front end on this machine:
// the same raw client and request against a net/http handler that answers
// at once with an echo result, with no server process behind it.
func BenchmarkRawBareHTTP1Caller(b *testing.B)   { benchBareHTTP(b, 1) }
func BenchmarkRawBareHTTP16Callers(b *testing.B) { benchBareHTTP(b, 16) }

func benchBareHTTP(b *testing.B, n int) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"benchmark payload"}]}}`)
	benchRawHandler(b, n, func() []byte { return body })
}

// benchRawHandler runs n raw HTTP callers against a bare net/http server
// whose every answer is reply().
func benchRawHandler(b *testing.B, n int, reply func() []byte) {
	benchRaw(b, n, rawHandlerCallers(b, n, reply))
}

// rawHandlerCallers starts that server and returns the call of raw caller
// i (0 ≤ i < n) against it; the benchmark's cleanup stops it.
func rawHandlerCallers(b *testing.B, n int, reply func() []byte) func(i int) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		writeJSON(w, http.StatusOK, reply())
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }() // owner: the benchmark
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	b.Cleanup(func() { hc.CloseIdleConnections(); _ = srv.Close(); <-done })
	cs := make([]*rawHTTP, n)
	for i := range cs {
		cs[i] = &rawHTTP{url: "http://" + ln.Addr().String() + "/", hc: hc, sid: "bench"}
	}
	return func(i int) { cs[i].call() }
}

// BenchmarkRawMinimalProxy1Session is the least a Go HTTP-to-stdio gateway
// can do: a net/http handler that forwards the call to the same demo server
// over its stdio (rawStdio: a reader goroutine hands each reply over) and
// writes the reply back — no sessions, id rewriting, limits or logging. It
// separates what the HTTP and process hop cost from what mcpgw adds.
func BenchmarkRawMinimalProxy1Session(b *testing.B)   { benchMinimalProxy(b, 1) }
func BenchmarkRawMinimalProxy16Sessions(b *testing.B) { benchMinimalProxy(b, 16) }

func benchMinimalProxy(b *testing.B, n int) {
	backend := newRawStdio(b)
	benchRawHandler(b, n, func() []byte { return backend.call(rawEcho) })
}

func BenchmarkRawDirectStdio1Caller(b *testing.B) {
	r := newRawStdio(b)
	benchRaw(b, 1, func(int) { r.call(rawEcho) })
}

func BenchmarkRawDirectStdio16Callers(b *testing.B) {
	r := newRawStdio(b)
	benchRaw(b, 16, func(int) { r.call(rawEcho) })
}

func benchRawGateway(b *testing.B, yaml string, sessions int) {
	h := newHarness(b, yaml)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: sessions}}
	b.Cleanup(hc.CloseIdleConnections)
	cs := make([]*rawHTTP, sessions)
	for i := range cs {
		cs[i] = newRawHTTP(b, h, hc)
	}
	benchRaw(b, sessions, func(i int) { cs[i].call() })
}

func BenchmarkRawDaemon1Session(b *testing.B)     { benchRawGateway(b, benchDaemonYAML, 1) }
func BenchmarkRawDaemon16Sessions(b *testing.B)   { benchRawGateway(b, benchDaemonYAML, 16) }
func BenchmarkRawDaemon64Sessions(b *testing.B)   { benchRawGateway(b, benchDaemonYAML, 64) }
func BenchmarkRawLauncher1Session(b *testing.B)   { benchRawGateway(b, benchYAML, 1) }
func BenchmarkRawLauncher16Sessions(b *testing.B) { benchRawGateway(b, benchYAML, 16) }
