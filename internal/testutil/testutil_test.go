package testutil

import (
	"fmt"
	"testing"
	"time"
)

func TestBufferWaitFor(t *testing.T) {
	var b Buffer
	go func() {
		for i := range 3 {
			fmt.Fprintf(&b, `{"n":%d}`+"\n", i)
		}
	}()
	b.WaitFor(t, `{"n":2}`, 5*time.Second)
	if got := len(b.JSONLines()); got != 3 {
		t.Errorf("JSONLines: %d records, want 3", got)
	}
}

func TestWaitUntil(t *testing.T) {
	start := time.Now()
	n := 0
	if !WaitUntil(time.Second, func() bool { n++; return n == 3 }) {
		t.Fatal("WaitUntil gave up on a condition that became true")
	}
	if WaitUntil(30*time.Millisecond, func() bool { return false }) {
		t.Fatal("WaitUntil reported a condition that never held")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
}
