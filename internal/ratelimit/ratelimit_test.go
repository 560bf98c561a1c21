package ratelimit

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestTake(t *testing.T) {
	type step struct {
		at     time.Duration // since t0
		checks func(a, b *Limiter) []Check
		ok     bool
		retry  time.Duration
	}
	one := func(key string, n int) func(a, b *Limiter) []Check {
		return func(a, _ *Limiter) []Check { return []Check{{a, key, n}} }
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst then refill", []step{
			{0, one("k", 1), true, 0},
			{0, one("k", 1), true, 0},
			{0, one("k", 1), false, 500 * time.Millisecond},
			{500 * time.Millisecond, one("k", 1), true, 0},
		}},
		{"keys are independent", []step{
			{0, one("a", 2), true, 0},
			{0, one("a", 1), false, 500 * time.Millisecond},
			{0, one("b", 2), true, 0},
		}},
		{"more than burst never passes", []step{
			{0, one("k", 3), false, time.Second},
			{0, one("k", 2), true, 0},
		}},
		{"all or nothing across limiters", []step{
			{0, func(a, b *Limiter) []Check { return []Check{{b, "", 4}} }, true, 0},
			{0, func(a, b *Limiter) []Check { return []Check{{a, "k", 1}, {b, "", 1}} }, false, 250 * time.Millisecond},
			// a's token was given back: a still has its full burst.
			{0, one("k", 2), true, 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(2, 2, 0) // 2/s, burst 2
			b := New(4, 4, 0)
			for i, s := range tt.steps {
				ok, retry := Take(t0.Add(s.at), s.checks(a, b)...)
				if diff := cmp.Diff([2]any{s.ok, s.retry}, [2]any{ok, retry}); diff != "" {
					t.Errorf("step %d (-want +got):\n%s", i, diff)
				}
			}
		})
	}
}

// TestMemoryBounded: 100,000 distinct client addresses leave at most
// DefaultMaxKeys buckets and a few MiB of heap, whether they come faster
// than buckets refill (LRU eviction) or slowly (idle full buckets swept).
func TestMemoryBounded(t *testing.T) {
	for _, tt := range []struct {
		name string
		step time.Duration
	}{
		{"flood", time.Microsecond},
		{"trickle", 10 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			l := New(1, 5, 0)
			ip := netip.MustParseAddr("10.0.0.0")
			now := t0
			maxLen := 0
			for range 100_000 {
				ip = ip.Next()
				now = now.Add(tt.step)
				if ok, _ := Take(now, Check{l, ip.String(), 1}); !ok {
					t.Fatalf("a new key was refused")
				}
				maxLen = max(maxLen, len(l.buckets))
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if maxLen > DefaultMaxKeys {
				t.Errorf("held up to %d buckets, want at most %d", maxLen, DefaultMaxKeys)
			}
			grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			t.Logf("buckets at the end: %d, max %d; heap grew by %d KiB", l.Len(), maxLen, grew/1024)
			if grew > 8<<20 {
				t.Errorf("heap grew by %d bytes for 100,000 keys, want < 8 MiB", grew)
			}
			runtime.KeepAlive(l)
		})
	}
}

// An evicted key comes back with a full bucket: eviction is lenient,
// never stricter.
func TestEvictionDropsOnlyFullOrOldest(t *testing.T) {
	l := New(1, 1, 4)
	for i := range 3 {
		Take(t0, Check{l, fmt.Sprint(i), 1})
	}
	// Key "0" is busy (empty bucket) and recent; the others fill up after 1s.
	Take(t0.Add(2*time.Second), Check{l, "0", 1})
	Take(t0.Add(2*time.Second), Check{l, "3", 1}) // 4th key: full → sweep drops "1", "2"
	if got := l.Len(); got > 4 {
		t.Fatalf("Len = %d, want ≤ 4", got)
	}
	if ok, _ := Take(t0.Add(2*time.Second), Check{l, "0", 1}); ok {
		t.Error(`key "0" lost its state: its empty bucket passed a request`)
	}
}
