package interop

import (
	"slices"
	"strings"
	"testing"
)

// TestResumeTypeScript: the TypeScript SDK client's POST stream of a tool
// call with progress, cut after its priming event and first progress
// notification, is resumed by the SDK itself with a GET carrying
// Last-Event-ID (the id of the last event it got); the resumed stream
// brings the rest of the progress and the response, which reaches the
// client exactly once. server-everything in launcher mode.
func TestResumeTypeScript(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	out := runTS(t, f, "streamable", "ev", "resume")
	if v := field[string](t, out, "protocolVersion"); v != "2025-11-25" {
		t.Fatalf("negotiated %q, want 2025-11-25 (a session: resumable streams)", v)
	}
	text := field[[]string](t, out, "call")
	if len(text) != 1 || !strings.HasPrefix(text[0], "Long running operation completed.") {
		t.Fatalf("call result %q", text)
	}
	wire := field[struct {
		Cut      *struct{ AfterEvents int }
		Resumes  []string
		Progress []float64
		// Responses counts every response to the call's id the transport
		// handed to the client, over the call and 1.5 s after it.
		Responses int
		Errors    []string
	}](t, out, "wire")
	if wire.Cut == nil {
		t.Fatal("the call's POST stream was never cut: the test proves nothing")
	}
	if len(wire.Resumes) != 1 {
		t.Fatalf("GETs with Last-Event-ID: %q, want exactly one resumption", wire.Resumes)
	}
	if wire.Responses != 1 {
		t.Errorf("the call's response reached the client %d times, want exactly once", wire.Responses)
	}
	if want := []float64{1, 2, 3, 4}; !slices.Equal(wire.Progress, want) {
		t.Errorf("progress notifications %v, want %v: each once, in order, across the cut", wire.Progress, want)
	}
	// The gateway saw it as a resumption of that POST stream, from the id
	// the SDK sent: the id of the event before the cut.
	stream, _, _ := strings.Cut(wire.Resumes[0], "-")
	resumed := 0
	for _, l := range f.logs.JSONLines() {
		if l["msg"] == "request" && l["method"] == "GET stream (resumed POST stream)" && l["tool"] == "ev" {
			resumed++
		}
	}
	if resumed != 1 {
		t.Errorf("%d resumed POST streams in the access log, want 1 (stream %s)", resumed, stream)
	}
}
