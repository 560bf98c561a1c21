package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sseEvent is one parsed SSE event, with its id and retry fields.
type sseEvent struct {
	id, retry, data string
}

// readEvents parses an SSE body into events until it ends.
func readEvents(resp *http.Response) <-chan sseEvent {
	ch := make(chan sseEvent, 256)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev sseEvent
		seen := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if seen {
					ch <- ev
				}
				ev, seen = sseEvent{}, false
			case strings.HasPrefix(line, ":"):
			default:
				k, v, _ := strings.Cut(line, ":")
				v = strings.TrimPrefix(v, " ")
				seen = true
				switch k {
				case "id":
					ev.id = v
				case "retry":
					ev.retry = v
				case "data":
					ev.data = v
				}
			}
		}
	}()
	return ch
}

func nextEvent(t *testing.T, ch <-chan sseEvent, what string) (sseEvent, bool) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		return ev, ok
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s within 10s", what)
	}
	return sseEvent{}, false
}

// sessionRequest sends a request of session sid and returns the response
// open; cancel cuts it.
func (h *harness) sessionRequest(method, sid, body string, hdr map[string]string) (*http.Response, context.CancelFunc) {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(ctx, method, h.url("t"), nil)
	if rd != nil {
		req, _ = http.NewRequestWithContext(ctx, method, h.url("t"), rd)
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", sid)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { cancel(); resp.Body.Close() })
	return resp, cancel
}

// seqOf is the sequence number of an event id "<stream>-<seq>".
func seqOf(t *testing.T, id, stream string) int {
	t.Helper()
	s, ok := strings.CutPrefix(id, stream+"-")
	n, err := strconv.Atoi(s)
	if !ok || err != nil {
		t.Fatalf("event id %q is not of stream %s", id, stream)
	}
	return n
}

// TestResumeCutPostStream: a POST stream starts with a priming event (an id,
// empty data, a retry field); cut after its first progress notification,
// it is resumed by a GET with Last-Event-ID, which delivers the rest of its
// events and its response exactly once, then ends. Resuming it again finds
// nothing to resume.
func TestResumeCutPostStream(t *testing.T) {
	h := newHarness(t, "limits: {sse_retry: 1500ms}\nservers:\n"+serverYAML("t", ""))
	sid := h.rawSession("t", "2025-11-25")
	call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":600},"_meta":{"progressToken":"tok"}}}`
	resp, cut := h.sessionRequest(http.MethodPost, sid, call, nil)
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	ev := readEvents(resp)
	prime, _ := nextEvent(t, ev, "the priming event")
	if prime.data != "" || prime.retry != "1500" || prime.id == "" {
		t.Fatalf("first event %+v, want an id, retry 1500 and empty data", prime)
	}
	stream, _, _ := strings.Cut(prime.id, "-")
	first, _ := nextEvent(t, ev, "the first progress")
	if !strings.Contains(first.data, "notifications/progress") || seqOf(t, first.id, stream) != 1 {
		t.Fatalf("second event %+v, want progress with id %s-1", first, stream)
	}
	cut()
	resp.Body.Close()
	eventually(t, 5*time.Second, "the gateway to see the POST stream cut", func() bool {
		return len(h.logs.find("request", map[string]any{"method": "tools/call"})) == 1
	})

	// The client resumes after its last event.
	got, _ := h.sessionRequest(http.MethodGet, sid, "", map[string]string{"Last-Event-ID": first.id, "Accept": "text/event-stream"})
	if got.StatusCode != http.StatusOK {
		t.Fatalf("resuming GET: status %d", got.StatusCode)
	}
	last := 1
	responses := 0
	for e := range readEvents(got) {
		if n := seqOf(t, e.id, stream); n <= last {
			t.Errorf("event %s after %s-%d: replayed twice or out of order", e.id, stream, last)
		} else {
			last = n
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(e.data), &m)
		if m["id"] == float64(7) {
			responses++
			if m["result"] == nil {
				t.Errorf("response %s, want the result", e.data)
			}
		}
	}
	if responses != 1 {
		t.Fatalf("%d responses on the resumed stream, want exactly 1", responses)
	}
	// Its responses are delivered: nothing is left to resume.
	again, _ := h.sessionRequest(http.MethodGet, sid, "", map[string]string{"Last-Event-ID": first.id, "Accept": "text/event-stream"})
	if again.StatusCode != http.StatusOK {
		t.Fatalf("second resumption: %d, want a fresh stream", again.StatusCode)
	}
	eventually(t, 5*time.Second, "the refused resumption's log line", func() bool {
		return len(h.logs.find("cannot resume a stream; opening a new one", nil)) == 1
	})
}

// TestResumeClosedAfterPriming: with limits.sse_close_after_priming a POST
// that does not answer at once gets only its priming event; the client's
// resuming GET gets the response.
func TestResumeClosedAfterPriming(t *testing.T) {
	h := newHarness(t, "limits: {sse_close_after_priming: true, sse_keepalive: 100ms}\nservers:\n"+serverYAML("t", ""))
	sid := h.rawSession("t", "2025-11-25")
	call := `{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"sleep","arguments":{"ms":500}}}`
	resp, _ := h.sessionRequest(http.MethodPost, sid, call, nil)
	var events []sseEvent
	for e := range readEvents(resp) {
		events = append(events, e)
	}
	if len(events) != 1 || events[0].data != "" || events[0].id == "" {
		t.Fatalf("POST stream: %+v, want the priming event alone", events)
	}
	got, _ := h.sessionRequest(http.MethodGet, sid, "", map[string]string{"Last-Event-ID": events[0].id, "Accept": "text/event-stream"})
	n := 0
	for e := range readEvents(got) {
		if strings.Contains(e.data, `"id":"s"`) && strings.Contains(e.data, `"result"`) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d responses on the resuming GET, want 1", n)
	}
}

// TestTwoGetStreams: two GET streams of one session are both kept open
// (a second no longer replaces the first); each server message goes on
// exactly one of them.
func TestTwoGetStreams(t *testing.T) {
	h := newHarness(t, "servers:\n"+serverYAML("t", ""))
	sid := h.rawSession("t", "2025-11-25")
	hdr := map[string]string{"Accept": "text/event-stream"}
	a, _ := h.sessionRequest(http.MethodGet, sid, "", hdr)
	b, _ := h.sessionRequest(http.MethodGet, sid, "", hdr)
	evA, evB := readEvents(a), readEvents(b) // both registered before their headers were written
	const n = 6
	for i := range n {
		r := h.post("t", fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"list_changed","arguments":{}}}`, 100+i),
			map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"})
		if r.Status != http.StatusOK {
			t.Fatalf("list_changed call: %d %s", r.Status, r.Body)
		}
	}
	ids := map[string]string{}
	count := map[string]int{}
	deadline := time.After(10 * time.Second)
	for len(ids) < n {
		var e sseEvent
		var from string
		select {
		case e = <-evA:
			from = "a"
		case e = <-evB:
			from = "b"
		case <-deadline:
			t.Fatalf("got %d of %d notifications: %v", len(ids), n, ids)
		}
		if !strings.Contains(e.data, "list_changed") {
			continue
		}
		if prev, dup := ids[e.id]; dup {
			t.Fatalf("event %s on stream %s and %s", e.id, prev, from)
		}
		ids[e.id] = from
		count[from]++
	}
	select {
	case e := <-evA:
		t.Errorf("a 7th event on stream a: %+v", e)
	case e := <-evB:
		t.Errorf("a 7th event on stream b: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
	if count["a"] == 0 || count["b"] == 0 {
		t.Errorf("messages per stream %v: both streams are open, both should get some", count)
	}
}

// TestResumeGetStreamBounds: a GET stream resumed after a cut replays what
// the client missed as far as the replay buffer still holds it
// (limits.replay_events), and says in the log what it no longer has.
func TestResumeGetStreamBounds(t *testing.T) {
	h := newHarness(t, "limits: {replay_events: 2}\nservers:\n"+serverYAML("t", ""))
	sid := h.rawSession("t", "2025-11-25")
	hdr := map[string]string{"Accept": "text/event-stream"}
	g, cut := h.sessionRequest(http.MethodGet, sid, "", hdr)
	ev := readEvents(g)
	var seen []sseEvent
	for i := range 5 {
		r := h.post("t", fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"list_changed","arguments":{}}}`, i),
			map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"})
		if r.Status != http.StatusOK {
			t.Fatal(r.Status)
		}
		e, _ := nextEvent(t, ev, "a notification")
		seen = append(seen, e)
	}
	cut()
	g.Body.Close()
	eventually(t, 5*time.Second, "the gateway to see the GET stream cut", func() bool {
		return len(h.logs.find("request", map[string]any{"method": "GET stream"})) == 1
	})
	stream, _, _ := strings.Cut(seen[0].id, "-")
	// The client says it got only the first: 2..5 were missed, 4 and 5 are kept.
	r, _ := h.sessionRequest(http.MethodGet, sid, "", map[string]string{"Accept": "text/event-stream", "Last-Event-ID": seen[0].id})
	rev := readEvents(r)
	var replayed []int
	for range 2 {
		e, _ := nextEvent(t, rev, "a replayed event")
		replayed = append(replayed, seqOf(t, e.id, stream))
	}
	if replayed[0] != 4 || replayed[1] != 5 {
		t.Errorf("replayed %v, want [4 5] (replay_events 2)", replayed)
	}
	eventually(t, 5*time.Second, "the log of what could not be replayed", func() bool {
		for _, l := range h.logs.find("dropping SSE events kept for resumption", nil) {
			if l["reason"] == "a resumed stream's events are no longer kept" && l["events"] == float64(2) {
				return true
			}
		}
		return false
	})
	if len(h.logs.find("dropping SSE events kept for resumption", map[string]any{"reason": "limits.replay_events or limits.replay_bytes reached"})) == 0 {
		t.Error("the drops at the bound were not logged")
	}
}

// cuttingTransport cuts the first POST response that is an SSE stream
// after its first two events (the priming event and one more), as a proxy
// or a mobile network would.
type cuttingTransport struct {
	base http.RoundTripper
	cut  atomic.Bool
}

func (c *cuttingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err != nil || r.Method != http.MethodPost || resp.Header.Get("Content-Type") != "text/event-stream" || !c.cut.CompareAndSwap(false, true) {
		return resp, err
	}
	resp.Body = &cutBody{rc: resp.Body, events: 2}
	return resp, nil
}

// cutBody passes events through until it has passed n, then fails.
type cutBody struct {
	rc     io.ReadCloser
	events int
	buf    []byte
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.events == 0 {
		b.rc.Close()
		return 0, io.ErrUnexpectedEOF
	}
	n, err := b.rc.Read(p)
	for i := 0; i < n; i++ {
		b.buf = append(b.buf, p[i])
		if bytes.HasSuffix(b.buf, []byte("\n\n")) {
			b.buf = b.buf[:0]
			b.events--
			if b.events == 0 {
				return i + 1, nil
			}
		}
	}
	return n, err
}

func (b *cutBody) Close() error { return b.rc.Close() }

// TestResumeGoSDKClient: the Go SDK v1.8 client (2025-11-25) whose POST
// stream is cut after the priming event and one progress notification
// resumes it with Last-Event-ID and gets the tool's result; and with
// limits.sse_close_after_priming it gets its result through the resume of
// a stream the gateway closed itself (SEP-1699).
func TestResumeGoSDKClient(t *testing.T) {
	for _, tc := range []struct{ name, limits string }{
		{"stream cut by the network", "{sse_retry: 100ms}"},
		{"stream closed after priming", "{sse_retry: 100ms, sse_close_after_priming: true, sse_keepalive: 100ms}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "limits: "+tc.limits+"\nservers:\n"+serverYAML("t", ""))
			tr := &cuttingTransport{base: &http.Transport{}}
			client := mcp.NewClient(&mcp.Implementation{Name: "resume-test", Version: "1"}, nil)
			cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: h.url("t"), HTTPClient: &http.Client{Transport: tr}}, sessionEra)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			params := &mcp.CallToolParams{Name: "sleep", Arguments: map[string]any{"ms": 600}}
			params.SetProgressToken("p") // progress makes the response a stream at once
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, err := cs.CallTool(ctx, params)
			if err != nil || res.IsError {
				t.Fatalf("call through a cut stream: %v %+v", err, res)
			}
			eventually(t, 5*time.Second, "the resumed POST stream in the access log", func() bool {
				return len(h.logs.find("request", map[string]any{"method": "GET stream (resumed POST stream)"})) >= 1
			})
		})
	}
}
