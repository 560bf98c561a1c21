package gateway

import (
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The metrics benchmarks are the raw session-era benchmarks with metrics
// off and on; compare their self-cpu-µs/op in one run (docs/benchmarks.md,
// "Metrics"):
//
//	go test -run '^$' -bench 'RawMetrics' -benchtime 20000x -count 3 ./internal/gateway/

func withMetrics(yaml string) string {
	return strings.Replace(yaml, "log: {level: error}\n", "log: {level: error}\nmetrics: {listen: \"127.0.0.1:0\"}\n", 1)
}

func BenchmarkRawMetricsOffLauncher1Session(b *testing.B) { benchRawGateway(b, benchYAML, 1) }
func BenchmarkRawMetricsOnLauncher1Session(b *testing.B) {
	benchRawGateway(b, withMetrics(benchYAML), 1)
}
func BenchmarkRawMetricsOffDaemon16Sessions(b *testing.B) { benchRawGateway(b, benchDaemonYAML, 16) }
func BenchmarkRawMetricsOnDaemon16Sessions(b *testing.B) {
	benchRawGateway(b, withMetrics(benchDaemonYAML), 16)
}

// BenchmarkRawMetricsOverhead measures what metrics cost per call on the
// session-era path in one process and one run: two gateways over the same
// demo server binary, one with metrics off and one with them on, driven in
// alternating chunks of 200 calls (each round the other goes first) so
// that the machine's drift (other work on shared cores) falls on both
// alike. CPU is this process's user+system
// time from getrusage (the raw client's and the gateway's; the client's is
// the same for both). b.N calls go to each gateway.
func BenchmarkRawMetricsOverhead(b *testing.B) {
	off, on := newHarness(b, benchYAML), newHarness(b, withMetrics(benchYAML))
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	b.Cleanup(hc.CloseIdleConnections)
	clients := [2]*rawHTTP{newRawHTTP(b, off, hc), newRawHTTP(b, on, hc)}
	for range 200 { // warm up both
		clients[0].call()
		clients[1].call()
	}
	const chunk = 200
	var cpu [2]time.Duration
	var ratios []float64 // on/off of each round
	b.ResetTimer()
	for round, done := 0, 0; done < b.N; round, done = round+1, done+chunk {
		n := min(chunk, b.N-done)
		var this [2]time.Duration
		for i := range 2 {
			side := (i + round) % 2 // which goes first alternates: no order bias
			t0 := selfCPU()
			for range n {
				clients[side].call()
			}
			this[side] = selfCPU() - t0
			cpu[side] += this[side]
		}
		if this[0] > 0 {
			ratios = append(ratios, float64(this[1])/float64(this[0]))
		}
	}
	b.StopTimer()
	perOff := float64(cpu[0].Microseconds()) / float64(b.N)
	perOn := float64(cpu[1].Microseconds()) / float64(b.N)
	b.ReportMetric(perOff, "off-cpu-µs/op")
	b.ReportMetric(perOn, "on-cpu-µs/op")
	b.ReportMetric(100*(perOn-perOff)/perOff, "overhead-%")
	// The median of the rounds' ratios is what a burst of other work on
	// the machine during a few rounds does not move.
	if len(ratios) > 0 {
		slices.Sort(ratios)
		b.ReportMetric(100*(ratios[len(ratios)/2]-1), "median-overhead-%")
	}
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
