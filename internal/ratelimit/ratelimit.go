// Package ratelimit owns the gateway's rate limits: token buckets
// from golang.org/x/time/rate, one per key (the empty key for a global
// limit, an identity or a client address otherwise), with a bounded number
// of buckets so that a flood of distinct keys cannot grow memory.
package ratelimit

import (
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys bounds the buckets one Limiter keeps.
const DefaultMaxKeys = 10000

// sweepEvery is how often, at most, idle buckets are looked for when the
// Limiter is not full.
const sweepEvery = time.Minute

// Limiter is a set of token buckets, each refilled at rps up to burst.
//
// Invariant: it holds at most maxKeys buckets. A bucket idle for at least
// burst/rps is full again, indistinguishable from a new one, so dropping it
// loses nothing; when the Limiter is full of busy buckets, the least
// recently used quarter goes, which can only be lenient to those keys.
// Safe for concurrent use; it starts no goroutines (eviction is done by
// the calls that insert).
type Limiter struct {
	rps      rate.Limit
	burst    int
	fillTime time.Duration
	maxKeys  int

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time // last Take; guarded by Limiter.mu
}

// New returns a Limiter of rps tokens per second and burst capacity per
// key, keeping at most maxKeys buckets (0 means DefaultMaxKeys).
func New(rps float64, burst, maxKeys int) *Limiter {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	fill := time.Duration(math.Ceil(float64(burst) / rps * float64(time.Second)))
	return &Limiter{
		rps: rate.Limit(rps), burst: burst, fillTime: fill, maxKeys: maxKeys,
		buckets: make(map[string]*bucket),
	}
}

// Len is the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Check is n tokens to take from key's bucket of L.
type Check struct {
	L   *Limiter
	Key string
	N   int
}

// Take takes every check's tokens at now, or none of them: when a bucket
// is short, the tokens already reserved from the others are given back
// and retry is how long until all of them could be served. A check whose
// N exceeds its burst can never pass; its retry is the time to refill the
// whole bucket.
func Take(now time.Time, checks ...Check) (ok bool, retry time.Duration) {
	var taken []*rate.Reservation
	for _, c := range checks {
		if c.L == nil || c.N <= 0 {
			continue
		}
		r := c.L.reserve(now, c.Key, c.N)
		if !r.OK() {
			retry = max(retry, c.L.fillTime)
			continue
		}
		taken = append(taken, r)
		if d := r.DelayFrom(now); d > 0 {
			retry = max(retry, d)
		}
	}
	if retry == 0 {
		return true, 0
	}
	for _, r := range slices.Backward(taken) {
		r.CancelAt(now)
	}
	return false, retry
}

func (l *Limiter) reserve(now time.Time, key string, n int) *rate.Reservation {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		l.makeRoom(now)
		b = &bucket{lim: rate.NewLimiter(l.rps, l.burst)}
		l.buckets[key] = b
	}
	b.last = now
	return b.lim.ReserveN(now, n)
}

// makeRoom drops full buckets every sweepEvery or when the Limiter is
// full, and the least recently used quarter if it is still full. l.mu is
// held.
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.buckets) < l.maxKeys && now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	for k, b := range l.buckets {
		if now.Sub(b.last) >= l.fillTime {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) < l.maxKeys {
		return
	}
	type aged struct {
		key  string
		last time.Time
	}
	all := make([]aged, 0, len(l.buckets))
	for k, b := range l.buckets {
		all = append(all, aged{k, b.last})
	}
	slices.SortFunc(all, func(a, b aged) int { return a.last.Compare(b.last) })
	for _, a := range all[:len(all)-l.maxKeys*3/4] {
		delete(l.buckets, a.key)
	}
}
