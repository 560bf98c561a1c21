package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/clustertest"
)

// TestClusterRateLimitInRedis: a per-identity limit of N holds across
// three replicas together when they share Redis; with Redis down a
// rate-limited request gets 503 at once, and the limit works again when
// Redis is back.
func TestClusterRateLimitInRedis(t *testing.T) {
	rds := clustertest.StartRedis(t)
	t.Setenv("MCPGW_TEST_REDIS_URL", rds.URL())
	hs := startReplicas(t, 3, replicaYAML{
		cluster: "  redis: {url_env: MCPGW_TEST_REDIS_URL, timeout: 300ms}\n",
		server:  "    rate: {requests_per_second: 0.01, burst: 5, per: identity}\n",
	})
	// Requests for a session nobody has: counted against the limit, then
	// 404 from the replica that took them (no process is started).
	send := func(i int, tok string) *rawResponse {
		return hs[i%3].post("t", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, map[string]string{
			"Authorization": "Bearer " + tok, "Mcp-Session-Id": "no-such-session", "Mcp-Protocol-Version": "2025-11-25"})
	}
	statuses := map[int]int{}
	for i := range 15 {
		statuses[send(i, testTokenA).Status]++
	}
	if statuses[http.StatusNotFound] != 5 || statuses[http.StatusTooManyRequests] != 10 {
		t.Errorf("15 requests over 3 replicas with a burst of 5: statuses %v, want 5×404 and 10×429", statuses)
	}
	if r := send(0, testTokenB); r.Status != http.StatusNotFound {
		t.Errorf("another identity: %d %s, want its own bucket (404)", r.Status, r.Body)
	}

	rds.Stop()
	start := time.Now()
	r := send(1, testTokenB)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "Redis") || r.Header.Get("Retry-After") == "" {
		t.Errorf("Redis down: %d %s, want 503 naming Redis with Retry-After", r.Status, r.Body)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Redis down: the answer took %s, want about the 300ms timeout", d)
	}
	if n := len(hs[1].logs.find("request", map[string]any{"status": 503})); n != 1 {
		t.Errorf("%d access lines with 503 on r1, want 1", n)
	}
	for _, l := range hs[1].logs.Lines() {
		if b := fmt.Sprint(l); strings.Contains(b, rds.URL()) {
			t.Errorf("a log line holds the Redis URL: %s", b)
		}
	}

	rds.Start() // empty: every bucket is full again
	eventually(t, 5*time.Second, "requests to pass again once Redis is back", func() bool {
		return send(2, testTokenA).Status == http.StatusNotFound
	})
}
