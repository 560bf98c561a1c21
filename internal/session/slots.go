package session

import (
	"context"
	"time"
)

// slots is a counting semaphore of in-flight requests: a server's
// max_concurrent, or a pooled process's max_inflight_per_process. A nil
// *slots admits everything.
type slots struct {
	ch   chan struct{}
	full func() error // the error of a request that found no slot in time
}

func newSlots(n int, full func() error) *slots {
	return &slots{ch: make(chan struct{}, n), full: full}
}

// acquire takes a slot, waiting up to wait (0: fail fast) or until ctx
// ends; it then fails with the full error.
func (s *slots) acquire(ctx context.Context, wait time.Duration) error {
	if s == nil {
		return nil
	}
	select {
	case s.ch <- struct{}{}:
		return nil
	default:
	}
	if wait <= 0 {
		return s.full()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.ch <- struct{}{}:
		return nil
	case <-t.C:
		return s.full()
	case <-ctx.Done():
		return s.full()
	}
}

// release returns a slot taken by acquire.
func (s *slots) release() {
	if s != nil {
		<-s.ch
	}
}
