package pins

import (
	"errors"
	"log/slog"
	"testing"
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
