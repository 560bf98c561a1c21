package redisrate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/clustertest"
	"github.com/mcpgw/mcpgw/internal/config"
)

func newLimiter(t *testing.T, url string) *Limiter {
	t.Helper()
	l, err := New(&config.Redis{URL: url, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestGCRA(t *testing.T) {
	srv := clustertest.StartRedis(t)
	// Two limiters on one Redis are two replicas.
	a, b := newLimiter(t, srv.URL()), newLimiter(t, srv.URL())
	slow := &config.Rate{RequestsPerSecond: 0.01, Burst: 5, Per: "identity"}
	ctx := context.Background()
	passed := 0
	for i := range 12 {
		l := a
		if i%2 == 1 {
			l = b
		}
		ok, retry, err := l.Take(ctx, Check{Limit: "rate", Key: "alice", Rate: slow, N: 1})
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			passed++
		} else if retry < 90*time.Second || retry > 100*time.Second {
			t.Errorf("retry %s, want about one emission interval (100s)", retry)
		}
	}
	if passed != 5 {
		t.Errorf("%d of 12 passed across two limiters, want the burst, 5", passed)
	}
	// Another identity has its own bucket.
	if ok, _, err := a.Take(ctx, Check{Limit: "rate", Key: "bob", Rate: slow, N: 1}); !ok || err != nil {
		t.Errorf("bob: %t, %v; want a pass", ok, err)
	}
	// All or none: a refused check takes nothing from the others.
	carol := Check{Limit: "rate", Key: "carol", Rate: slow, N: 1}
	if ok, _, _ := a.Take(ctx, carol, Check{Limit: "servers.x.rate", Key: "alice", Rate: slow, N: 1}); !ok {
		t.Fatal("carol and a fresh server limit: refused")
	}
	for range 4 {
		_, _, _ = a.Take(ctx, Check{Limit: "servers.x.rate", Key: "alice", Rate: slow, N: 1})
	}
	if ok, _, _ := a.Take(ctx, carol, Check{Limit: "servers.x.rate", Key: "alice", Rate: slow, N: 1}); ok {
		t.Fatal("an exhausted limit passed")
	}
	for i := range 4 { // carol still has her four
		if ok, _, _ := a.Take(ctx, carol); !ok {
			t.Errorf("carol's request %d refused: the refused step took from her bucket", i)
		}
	}
	// More than the burst at once never passes.
	if ok, _, _ := a.Take(ctx, Check{Limit: "rate", Key: "dave", Rate: slow, N: 6}); ok {
		t.Error("6 tokens passed a burst of 5")
	}
	// Refill: a fast limit admits again after its interval.
	fast := &config.Rate{RequestsPerSecond: 20, Burst: 1, Per: "identity"}
	if ok, _, _ := a.Take(ctx, Check{Limit: "fast", Key: "e", Rate: fast, N: 1}); !ok {
		t.Fatal("first fast request refused")
	}
	ok, retry, _ := a.Take(ctx, Check{Limit: "fast", Key: "e", Rate: fast, N: 1})
	if ok || retry <= 0 || retry > 50*time.Millisecond {
		t.Fatalf("second fast request: %t, retry %s; want a refusal for at most 50ms", ok, retry)
	}
	time.Sleep(retry + 5*time.Millisecond) // the limit's own clock, not synchronisation
	if ok, _, _ := a.Take(ctx, Check{Limit: "fast", Key: "e", Rate: fast, N: 1}); !ok {
		t.Error("after the interval: refused")
	}
}

func TestRedisDown(t *testing.T) {
	srv := clustertest.StartRedis(t)
	l := newLimiter(t, srv.URL())
	c := Check{Limit: "rate", Key: "alice", Rate: &config.Rate{RequestsPerSecond: 100, Burst: 100, Per: "identity"}, N: 1}
	if ok, _, err := l.Take(t.Context(), c); !ok || err != nil {
		t.Fatalf("up: %t, %v", ok, err)
	}
	srv.Stop()
	start := time.Now()
	_, _, err := l.Take(t.Context(), c)
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("down: err = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("down: Take took %s, want at most about the 300ms timeout", d)
	}
	srv.Start()
	if ok, _, err := l.Take(t.Context(), c); !ok || err != nil {
		t.Errorf("back up: %t, %v; want a pass", ok, err)
	}
}

func TestNoSecretInErrors(t *testing.T) {
	_, err := New(&config.Redis{URL: "redis://:hunter2@[bad", Timeout: time.Second})
	if err == nil || contains(err.Error(), "hunter2") {
		t.Errorf("err = %v, want an error without the password", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
