package gateway

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// The aggregate benchmarks (docs/benchmarks.md): five demo servers d1…d5
// (launcher) and dd1…dd5 (daemon), and an aggregate of each five, agg and
// aggd. Raw clients (plain net/http, 2025-11-25) as in the Raw…
// benchmarks, so that the SDK client's own CPU stays out.
//
//	go test -run '^$' -bench 'Aggregate' -benchtime 400x ./internal/gateway/
func benchAggregateYAML() string {
	y := "listen: 127.0.0.1:0\nlog: {level: error}\nlimits: {max_processes: 256, max_sessions: 4096}\nservers:\n"
	var launchers, daemons []string
	for i := 1; i <= 5; i++ {
		y += fmt.Sprintf("  d%d:\n    command: [\"${TESTBIN}\"]\n    env: {MCPGW_TEST_DEMO: \"1\"}\n    max_processes: 64\n", i)
		y += fmt.Sprintf("  dd%d:\n    command: [\"${TESTBIN}\"]\n    env: {MCPGW_TEST_DEMO: \"1\"}\n    mode: daemon\n    max_processes: 1\n", i)
		launchers = append(launchers, fmt.Sprintf("d%d", i))
		daemons = append(daemons, fmt.Sprintf("dd%d", i))
	}
	return y + "  agg:\n    aggregate: [" + strings.Join(launchers, ", ") + "]\n" +
		"  aggd:\n    aggregate: [" + strings.Join(daemons, ", ") + "]\n"
}

const rawToolsList = `{"jsonrpc":"2.0","id":%d,"method":"tools/list","params":{}}`

// rawSessionOn opens a raw session on server.
func rawSessionOn(b *testing.B, h *harness, hc *http.Client, server string) *rawHTTP {
	b.Helper()
	c := &rawHTTP{url: h.url(server), hc: hc}
	resp := c.post(fmt.Sprintf(initBody, "2025-11-25"))
	if c.sid = resp.Header.Get("Mcp-Session-Id"); c.sid == "" {
		b.Fatalf("initialize %s: %s, no session", server, resp.Status)
	}
	c.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return c
}

// body posts a request of the session and returns the response body.
func (c *rawHTTP) body(b *testing.B, format string) string {
	req, _ := http.NewRequest(http.MethodPost, c.url, strings.NewReader(fmt.Sprintf(format, c.nextID.Add(1))))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	resp, err := c.hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("%s: %s", resp.Status, data)
	}
	return string(data)
}

// end deletes the session.
func (c *rawHTTP) end() {
	req, _ := http.NewRequest(http.MethodDelete, c.url, nil)
	req.Header.Set("Mcp-Session-Id", c.sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if resp, err := c.hc.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// checkMerged fails unless a tools/list answer holds every member's echo.
func checkMerged(b *testing.B, body, prefix string) {
	b.Helper()
	for i := 1; i <= 5; i++ {
		if name := fmt.Sprintf(`"%s%d__echo"`, prefix, i); !strings.Contains(body, name) {
			b.Fatalf("tools/list lacks %s: %.300s", name, body)
		}
	}
}

// reportCPU records CPU time per operation (this process: the raw client
// and the gateway) under unit.
func reportCPU(b *testing.B, cpu time.Duration, n int, unit string) {
	if n > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), unit)
	}
}

// BenchmarkAggregateList: tools/list of an aggregate of five members.
// cold is the first list of a new session (initialize and the DELETE are
// not timed; in launcher mode each session starts five processes, which
// are asked for their lists; in daemon mode the processes' lists are
// cached for every session), warm a later list of one session (the
// session's merged list). CPU per list is this process's, summed over the
// timed lists only (getrusage).
func BenchmarkAggregateList(b *testing.B) {
	h := newHarness(b, benchAggregateYAML())
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(hc.CloseIdleConnections)
	for _, c := range []struct{ name, server, prefix string }{{"cold/launcher", "agg", "d"}, {"cold/daemon", "aggd", "dd"}} {
		b.Run(c.name, func(b *testing.B) {
			warm := rawSessionOn(b, h, hc, c.server) // the daemon processes are up and have listed once
			checkMerged(b, warm.body(b, rawToolsList), c.prefix)
			warm.end()
			samples := make([]time.Duration, 0, b.N)
			var cpu time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				s := rawSessionOn(b, h, hc, c.server)
				b.StartTimer()
				c0, t0 := selfCPU(), time.Now()
				body := s.body(b, rawToolsList)
				samples = append(samples, time.Since(t0))
				cpu += selfCPU() - c0
				b.StopTimer()
				if !strings.Contains(body, c.prefix+"5__echo") {
					b.Fatalf("tools/list: %.300s", body)
				}
				s.end()
				b.StartTimer()
			}
			b.StopTimer()
			reportLatency(b, samples)
			reportCPU(b, cpu, b.N, "self-cpu-µs/op")
		})
	}
	b.Run("warm", func(b *testing.B) {
		s := rawSessionOn(b, h, hc, "agg")
		checkMerged(b, s.body(b, rawToolsList), "d")
		samples := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		self0, c0 := cpuTicks(os.Getpid()), selfCPU()
		for range b.N {
			t0 := time.Now()
			s.body(b, rawToolsList)
			samples = append(samples, time.Since(t0))
		}
		self1, cpu := cpuTicks(os.Getpid()), selfCPU()-c0
		b.StopTimer()
		reportLatency(b, samples)
		reportCPU(b, cpu, b.N, "self-cpu-µs/op")
		if self0 >= 0 && self1 >= 0 {
			b.ReportMetric(float64(self1-self0)*1e4/float64(b.N), "stat-cpu-µs/op") // 100 ticks/s
		}
		s.end()
	})
}

// BenchmarkAggregateCall: tools/call echo through the aggregate (to its
// member d1, or dd1) against the same call on d1's (dd1's) own URL, call
// by call in one loop so that the machine's load falls on both alike.
// CPU per call is this process's (the raw client and the gateway), summed
// around each call of each side (getrusage); the member processes' own CPU
// is the same work on both sides.
func BenchmarkAggregateCall(b *testing.B) {
	h := newHarness(b, benchAggregateYAML())
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	b.Cleanup(hc.CloseIdleConnections)
	for _, c := range []struct{ mode, agg, member string }{{"launcher", "agg", "d1"}, {"daemon", "aggd", "dd1"}} {
		b.Run(c.mode, func(b *testing.B) {
			sides := [2]*rawHTTP{rawSessionOn(b, h, hc, c.member), rawSessionOn(b, h, hc, c.agg)}
			calls := [2]string{rawEcho, strings.Replace(rawEcho, `"name":"echo"`, `"name":"`+c.member+`__echo"`, 1)}
			for i := range 2 {
				if body := sides[i].body(b, calls[i]); !strings.Contains(body, "benchmark payload") || strings.Contains(body, "isError\":true") {
					b.Fatalf("echo: %.300s", body)
				}
				for range 50 { // warm up
					sides[i].body(b, calls[i])
				}
			}
			samples := [2][]time.Duration{}
			var cpu [2]time.Duration
			b.ResetTimer()
			for i := range 2 * b.N {
				side := i % 2
				if (i/2)%2 == 1 {
					side = 1 - side // which goes first alternates
				}
				c0, t0 := selfCPU(), time.Now()
				sides[side].body(b, calls[side])
				samples[side] = append(samples[side], time.Since(t0))
				cpu[side] += selfCPU() - c0
			}
			b.StopTimer()
			p50 := func(s []time.Duration) float64 {
				s = slices.Clone(s)
				slices.Sort(s)
				return float64(s[len(s)/2].Microseconds())
			}
			direct, agg := p50(samples[0]), p50(samples[1])
			b.ReportMetric(direct, "direct-p50-µs")
			b.ReportMetric(agg, "aggregate-p50-µs")
			b.ReportMetric(agg/direct, "p50-ratio")
			reportCPU(b, cpu[0], b.N, "direct-cpu-µs/op")
			reportCPU(b, cpu[1], b.N, "aggregate-cpu-µs/op")
			if cpu[0] > 0 {
				b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "cpu-ratio")
			}
		})
	}
}
