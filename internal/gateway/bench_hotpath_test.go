package gateway

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkRawHotPathInterleaved measures the three hot-path targets in one
// process and one run: the bare forwarder (the minimal proxy in front of
// its own demo server), the session-era path and the 2026-07-28 path (one
// gateway, its daemon pool's demo server), each driven by 16 concurrent raw
// callers, in alternating chunks of 1000 calls whose order rotates every
// round, so that drift on the shared cores falls on all three alike. b.N
// calls, rounded up to a multiple of the callers in each chunk, go to
// each.
//
// Per target it reports CPU per call of this process (getrusage: the raw
// client's and the gateway's or forwarder's) and throughput; then each
// gateway path against the forwarder, over all rounds and as the median of
// the rounds' ratios:
//
//	go test -run '^$' -bench RawHotPathInterleaved -benchtime 12000x ./internal/gateway/
func BenchmarkRawHotPathInterleaved(b *testing.B) {
	const callers, chunk = 16, 1000
	backend := newRawStdio(b)
	fwd := rawHandlerCallers(b, callers, func() []byte { return backend.call(rawEcho) })

	h := newHarness(b, benchDaemonYAML)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * callers}}
	b.Cleanup(hc.CloseIdleConnections)
	sessions := make([]*rawHTTP, callers)
	for i := range sessions {
		sessions[i] = newRawHTTP(b, h, hc)
	}
	modern := rawModernCaller(h, hc)

	targets := [3]func(int){fwd, func(i int) { sessions[i].call() }, modern}
	names := [3]string{"forwarder", "session", "modern"}
	for _, call := range targets { // warm up: connections, pool, caches
		runRaw(callers, 200, call)
	}
	var cpu, wall [3]time.Duration
	var calls [3]int
	var ratios [2][]float64 // session and modern CPU over the forwarder's, per round
	b.ResetTimer()
	for round, done := 0, 0; done < b.N; round, done = round+1, done+chunk {
		n := min(chunk, b.N-done)
		var this [3]time.Duration
		for k := range 3 {
			t := (k + round) % 3
			made, c, w := runRaw(callers, n, targets[t])
			this[t] = c
			calls[t] += made
			cpu[t] += c
			wall[t] += w
		}
		if this[0] > 0 {
			ratios[0] = append(ratios[0], float64(this[1])/float64(this[0]))
			ratios[1] = append(ratios[1], float64(this[2])/float64(this[0]))
		}
	}
	b.StopTimer()
	var perCall, rate [3]float64
	for t := range 3 {
		perCall[t] = float64(cpu[t].Nanoseconds()) / 1e3 / float64(calls[t])
		rate[t] = float64(calls[t]) / wall[t].Seconds()
		b.ReportMetric(perCall[t], names[t]+"-cpu-µs/op")
		b.ReportMetric(rate[t], names[t]+"-calls/s")
	}
	for i, name := range names[1:] {
		b.ReportMetric(perCall[i+1]/perCall[0], name+"/fwd-cpu")
		b.ReportMetric(rate[i+1]/rate[0], name+"/fwd-calls")
		if r := ratios[i]; len(r) > 0 {
			slices.Sort(r)
			b.ReportMetric(r[len(r)/2], name+"/fwd-cpu-median")
		}
	}
}

// runRaw makes about total calls (total rounded up to a multiple of n)
// over n concurrent callers and returns how many, this process's CPU time
// and the wall time they took.
func runRaw(n, total int, call func(i int)) (made int, cpu, wall time.Duration) {
	per := (total + n - 1) / n
	c0, t0 := selfCPU(), time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { // owner: runRaw, which waits
			for range per {
				call(i)
			}
		})
	}
	wg.Wait()
	return per * n, selfCPU() - c0, time.Since(t0)
}
