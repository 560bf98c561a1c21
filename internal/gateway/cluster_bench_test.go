package gateway

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ownerOrPeer sends a session's initialize to the owner and, when hop is
// set, every later request (those with Mcp-Session-Id) to the peer, which
// forwards them.
type ownerOrPeer struct {
	owner, peer, token string
	hop                bool
	tr                 *http.Transport
}

func (o *ownerOrPeer) RoundTrip(req *http.Request) (*http.Response, error) {
	out := req.Clone(req.Context())
	host := o.owner
	if o.hop && req.Header.Get("Mcp-Session-Id") != "" {
		host = o.peer
	}
	out.URL.Host, out.Host = host, host
	out.Header.Set("Authorization", "Bearer "+o.token)
	return o.tr.RoundTrip(out)
}

// BenchmarkClusterHop: tools/call echo on a session-era session, sent to
// the replica that owns the session ("owner") or to another one that
// forwards it ("hop"). Run with -count to interleave the two; CPU per call
// is the whole test process's (client, both replicas) and the server's.
func BenchmarkClusterHop(b *testing.B) {
	hs := startReplicas(b, 2, replicaYAML{})
	connect := func(b *testing.B, hop bool) *mcp.ClientSession {
		rt := &ownerOrPeer{owner: strings.TrimPrefix(hs[0].base, "http://"), peer: strings.TrimPrefix(hs[1].base, "http://"),
			token: testTokenA, hop: hop, tr: &http.Transport{}}
		client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
		cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: hs[0].url("t"), HTTPClient: &http.Client{Transport: rt}}, sessionEra)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cs.Close(); rt.tr.CloseIdleConnections() })
		return cs
	}
	// Both paths in one loop, call by call, so that the machine's load
	// falls on both alike: the latency comparison.
	b.Run("interleaved", func(b *testing.B) {
		css := []*mcp.ClientSession{connect(b, false), connect(b, true)}
		ctx := context.Background()
		samples := [2][]time.Duration{}
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			if _, err := css[i%2].CallTool(ctx, echoArgs()); err != nil {
				b.Fatal(err)
			}
			samples[i%2] = append(samples[i%2], time.Since(t0))
		}
		b.StopTimer()
		if len(samples[1]) == 0 {
			return // b.N == 1: the probe run
		}
		p50 := func(s []time.Duration) float64 {
			slices.Sort(s)
			return float64(s[len(s)/2].Microseconds())
		}
		owner, hop := p50(samples[0]), p50(samples[1])
		b.ReportMetric(owner, "owner-p50-µs")
		b.ReportMetric(hop, "hop-p50-µs")
		b.ReportMetric(hop/owner, "hop/owner")
	})
	for _, mode := range []string{"owner", "hop"} {
		b.Run(mode, func(b *testing.B) {
			cs := connect(b, mode == "hop")
			ctx := context.Background()
			for range 20 {
				if _, err := cs.CallTool(ctx, echoArgs()); err != nil {
					b.Fatal(err)
				}
			}
			samples := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			self0, children0 := cpuTicks(os.Getpid()), childrenCPUTicks()
			for range b.N {
				t0 := time.Now()
				if _, err := cs.CallTool(ctx, echoArgs()); err != nil {
					b.Fatal(err)
				}
				samples = append(samples, time.Since(t0))
			}
			self1, children1 := cpuTicks(os.Getpid()), childrenCPUTicks()
			b.StopTimer()
			if self0 >= 0 && self1 >= 0 {
				const µsPerTick = 1e6 / 100 // USER_HZ
				b.ReportMetric(float64(self1-self0)*µsPerTick/float64(b.N), "self-cpu-µs/op")
				b.ReportMetric(float64(children1-children0)*µsPerTick/float64(b.N), "servers-cpu-µs/op")
			}
			reportLatency(b, samples)
		})
	}
}
