package session

import (
	"encoding/json"
	"sync"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// Sink collects the messages bound for one HTTP response stream: a POST's
// stream (responses and the messages related to its requests) or a
// session's GET stream. Producers never block: the backend's reader must not
// wait on a slow client. Final responses are always kept; other messages
// beyond the bound are dropped and counted, and the drop is logged by the
// consumer.
type Sink struct {
	mu        sync.Mutex
	msgs      [][]byte
	expect    int  // responses (or local cancellations) still awaited
	closed    bool // no more messages will come (session ended, stream replaced)
	max       int
	dropped   int
	related   bool         // a non-final message was queued at some point
	kind      problem.Kind // problem kind of a lone error outcome (0 = a plain response)
	wake      chan struct{}
	stream    bool            // a GET stream's sink: it ends only when closed
	paused    bool            // an interim outcome was queued: the current reader stops after it (mrtr.go)
	interimAt int             // while paused: the index in msgs of that interim outcome
	finalID   json.RawMessage // when set, the id given to outcomes (a modern request's retry)

	// rewrite, when set, rewrites every message before it is queued (an
	// aggregate's modern request routed to a member: aggregate_modern.go).
	// Set before the sink is handed to a producer; it must not block.
	rewrite func([]byte) []byte
}

// NewSink returns a sink that holds at most max non-final messages.
func NewSink(max int) *Sink {
	if max <= 0 {
		max = 1024
	}
	return &Sink{max: max, wake: make(chan struct{}, 1)}
}

func newStreamSink(max int) *Sink {
	s := NewSink(max)
	s.stream = true
	return s
}

// drain removes what was queued but not taken, for a detached GET stream.
func (s *Sink) drain() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	msgs := s.msgs
	s.msgs = nil
	return msgs
}

func (s *Sink) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Push queues a message on the stream (the legacy SSE front-end delivers
// initialize responses this way); it reports false if the sink is closed
// or full.
func (s *Sink) Push(msg []byte) bool { return s.push(msg) }

// NewStreamSink returns a sink for a long-lived stream that ends only when
// closed (GET streams, legacy SSE streams).
func NewStreamSink() *Sink { return newStreamSink(1024) }

// ErrorKind is the problem kind of an error outcome (a backend that died,
// a timeout, or a modern request's error the transport gives a status), or
// 0. The front-end uses it for a single request answered with plain JSON:
// before the first byte, a failure is an HTTP status.
func (s *Sink) ErrorKind() problem.Kind {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kind
}

// Related reports whether a non-final message (progress, logging, a
// server request) was ever queued: the response must then be a stream.
func (s *Sink) Related() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.related
}

// Wake is signalled whenever something changes.
func (s *Sink) Wake() <-chan struct{} { return s.wake }

// expectOne registers one more awaited response.
func (s *Sink) expectOne() {
	s.mu.Lock()
	s.expect++
	s.mu.Unlock()
}

// push queues a non-final message; it reports false if the sink is closed
// or full.
func (s *Sink) push(msg []byte) bool {
	if s.rewrite != nil {
		msg = s.rewrite(msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if len(s.msgs) >= s.max {
		s.dropped++
		return false
	}
	s.msgs = append(s.msgs, msg)
	s.related = true
	s.signal()
	return true
}

// final queues the outcome of one awaited request: a response, or nil when
// the request ended without one (cancelled by the client).
//
// kind is the problem kind that an error outcome has before streaming, or
// 0 for a plain response.
func (s *Sink) final(msg []byte, kind problem.Kind) {
	if s.rewrite != nil && msg != nil {
		msg = s.rewrite(msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind != 0 {
		s.kind = kind
	}
	if msg != nil {
		s.msgs = append(s.msgs, s.withFinalID(msg))
	}
	s.expect--
	s.signal()
}

// interim queues an outcome that ends the current response without ending
// the request: a modern request's InputRequiredResult. The request goes on,
// and its next response (the client's retry) reads on from this sink.
func (s *Sink) interim(msg []byte) {
	if s.rewrite != nil {
		msg = s.rewrite(msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, s.withFinalID(msg))
	if !s.paused {
		s.paused = true
		s.interimAt = len(s.msgs) - 1
	}
	s.signal()
}

// setFinalID makes outcomes carry id (the retry's own), including one
// already queued.
func (s *Sink) setFinalID(id json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finalID = id
	for i, m := range s.msgs {
		s.msgs[i] = s.withFinalID(m)
	}
}

// withFinalID rewrites a response's id to finalID when one is set. Called
// with s.mu held.
func (s *Sink) withFinalID(msg []byte) []byte {
	if s.finalID == nil {
		return msg
	}
	m, err := jsonrpc.Parse(msg)
	if err != nil || m.Kind != jsonrpc.KindResponse {
		return msg
	}
	m.ID = s.finalID
	return jsonrpc.Encode(m)
}

// close marks the sink finished; Take reports done once it is drained.
func (s *Sink) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.signal()
}

// Take removes and returns the queued messages. done reports that nothing
// more will come: every awaited response has been taken (POST sinks) or the
// sink was closed. dropped is the count of messages dropped since the last
// call.
func (s *Sink) Take() (msgs [][]byte, done bool, dropped int) {
	msgs, done, _, dropped = s.TakeAll()
	return msgs, done, dropped
}

// TakeAll is Take that also reports whether what it returned ends with an
// interim outcome: the response is then complete, but the request is not.
func (s *Sink) TakeAll() (msgs [][]byte, done, paused bool, dropped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msgs, s.msgs = s.msgs, nil
	dropped, s.dropped = s.dropped, 0
	paused, s.paused = s.paused, false
	if paused {
		// The response ends with the interim outcome; what came after it
		// is for the next response (the client's retry).
		msgs, s.msgs = msgs[:s.interimAt+1], append([][]byte(nil), msgs[s.interimAt+1:]...)
		if len(s.msgs) > 0 {
			s.signal()
		}
	}
	done = s.closed || (!s.stream && s.expect <= 0) || paused
	return msgs, done, paused, dropped
}

// JSONReady reports whether every awaited response is in and nothing else
// was ever queued; the POST handler then answers with plain JSON instead of
// opening a stream.
func (s *Sink) JSONReady() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return (s.expect <= 0 || s.paused) && !s.related
}

// Reject records the outcome of a request that was never forwarded (a batch
// element refused by a limit): it counts as an awaited response.
func (s *Sink) Reject(msg []byte) {
	s.expectOne()
	s.final(msg, 0)
}

// Requeue puts back messages a GET stream could not write, ahead of the
// rest, so that CloseStream holds them for the next stream.
func (s *Sink) Requeue(msgs [][]byte) {
	if len(msgs) == 0 {
		return
	}
	s.mu.Lock()
	s.msgs = append(append([][]byte{}, msgs...), s.msgs...)
	s.mu.Unlock()
}
