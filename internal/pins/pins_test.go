package pins

import (
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestRecordApprove(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Record(Pin{Server: "s", Tool: "echo", Approved: "d1", ApprovedDef: []byte("v1"), Seen: "d1", SeenDef: []byte("v1")})
	st.Record(Pin{Server: "s", Tool: "echo", Approved: "d1", Seen: "d1", SeenDef: []byte("v1")}) // seen again: no change
	st.Record(Pin{Server: "s", Tool: "echo", Approved: "ignored", Seen: "d2", SeenDef: []byte("v2")})
	st.Record(Pin{Server: "other", Tool: "echo", Approved: "x", Seen: "x"})
	if err := st.Close(); err != nil { // writes what is queued
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	st, err = Open(t.Context(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Load(t.Context(), "s")
	if err != nil {
		t.Fatal(err)
	}
	p := got["echo"]
	if len(got) != 1 || p == nil || p.Approved != "d1" || p.Seen != "d2" || string(p.ApprovedDef) != "v1" || string(p.SeenDef) != "v2" || !p.Pending() {
		t.Fatalf("pins of s = %+v (echo %+v), want echo approved d1, seen d2", got, p)
	}
	if was, err := st.Approve(t.Context(), "s", "echo"); !was || err != nil {
		t.Fatalf("Approve = %v, %v; want true, nil", was, err)
	}
	if was, err := st.Approve(t.Context(), "s", "echo"); was || err != nil {
		t.Fatalf("second Approve = %v, %v; want false, nil", was, err)
	}
	if _, err := st.Approve(t.Context(), "s", "nosuch"); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Approve of an unknown tool = %v, want ErrUnknown", err)
	}
	list, err := st.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Server != "other" || list[1].Server != "s" || list[1].Pending() || list[1].Approved != "d2" {
		t.Fatalf("List = %+v", list)
	}
}

// TestSetModes: the modes a gateway declares are what List reports, and a
// later declaration replaces the earlier one whole.
func TestSetModes(t *testing.T) {
	st, err := Open(t.Context(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Record(Pin{Server: "a", Tool: "t", Approved: "1", Seen: "1"})
	st.Record(Pin{Server: "b", Tool: "t", Approved: "1", Seen: "1"})
	modes := func() map[string]string {
		t.Helper()
		list, err := st.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range list {
			out[p.Server] = p.Mode
		}
		return out
	}
	for i := 0; len(modes()) < 2; i++ { // Record writes in the background
		if i == 1000 {
			t.Fatal("the pins were never written")
		}
		time.Sleep(time.Millisecond)
	}
	if got := modes(); got["a"] != "" || got["b"] != "" {
		t.Errorf("modes before any declaration = %v", got)
	}
	if err := st.SetModes(t.Context(), map[string]string{"a": "enforce", "b": "warn"}); err != nil {
		t.Fatal(err)
	}
	if got := modes(); got["a"] != "enforce" || got["b"] != "warn" {
		t.Errorf("modes = %v, want a enforce, b warn", got)
	}
	if err := st.SetModes(t.Context(), map[string]string{"b": "enforce"}); err != nil {
		t.Fatal(err)
	}
	if got := modes(); got["a"] != "" || got["b"] != "enforce" {
		t.Errorf("modes after the second declaration = %v, want a none, b enforce", got)
	}
}

// TestRecordQueueBound: Record never blocks; what does not fit in the
// queue is dropped (and logged) rather than waited for.
func TestRecordQueueBound(t *testing.T) {
	st := &Store{queue: make(chan Pin, 1), log: nil}
	st.log = discard()
	st.Record(Pin{Tool: "a"})
	st.Record(Pin{Tool: "b"}) // would block: dropped
	if len(st.queue) != 1 || (<-st.queue).Tool != "a" {
		t.Fatal("the queue does not hold exactly the first pin")
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
