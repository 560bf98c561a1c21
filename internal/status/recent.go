package status

import (
	"sync"
	"time"
)

// Error is one recent error as the status page shows it.
type Error struct {
	Time      time.Time `json:"time"`
	Server    string    `json:"server,omitempty"`
	RequestID string    `json:"request_id"`
	Status    int       `json:"status"`
	Message   string    `json:"message"`
}

// Recent keeps the last N errors in a ring: adding is O(1) and never
// allocates beyond the ring, so that a flood of errors costs nothing but
// the oldest entries. Safe for concurrent use.
type Recent struct {
	mu   sync.Mutex
	ring []Error
	next int  // where the next error goes
	full bool // the ring has wrapped
}

// NewRecent returns a ring of n errors (n ≥ 1).
func NewRecent(n int) *Recent { return &Recent{ring: make([]Error, max(n, 1))} }

// Add records e.
func (r *Recent) Add(e Error) {
	r.mu.Lock()
	r.ring[r.next] = e
	r.next++
	if r.next == len(r.ring) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// List returns the recorded errors, newest first.
func (r *Recent) List() []Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.ring)
	}
	out := make([]Error, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.ring[(r.next-i+len(r.ring))%len(r.ring)])
	}
	return out
}
