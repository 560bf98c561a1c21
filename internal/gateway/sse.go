package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mcpgw/mcpgw/internal/session"
)

// sseWriteTimeout bounds each write (and flush) of an SSE stream, and the
// write of a request's plain JSON answer, so that a client that stops
// reading cannot pin a handler. (net/http clears the connection's write
// deadline once the response is finished.) A variable only so that tests
// can shorten it.
var sseWriteTimeout = 30 * time.Second

// sseWriter writes Server-Sent Events, flushing each and bounding each
// write in time.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no") // proxies: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, rc: http.NewResponseController(w)}
	_ = s.flush()
	return s
}

func (s *sseWriter) flush() error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	return s.rc.Flush()
}

// event writes one "message" event carrying a JSON-RPC message.
func (s *sseWriter) event(data []byte) error { return s.named("message", data) }

// named writes an event of the given name.
func (s *sseWriter) named(name string, data []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	buf := make([]byte, 0, len(name)+len(data)+17)
	buf = append(buf, "event: "...)
	buf = append(buf, name...)
	buf = append(buf, "\ndata: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	if _, err := s.w.Write(buf); err != nil {
		return err
	}
	return s.flush()
}

// eventID writes one "message" event with an id (resume.go).
func (s *sseWriter) eventID(id string, data []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	buf := make([]byte, 0, len(id)+len(data)+32)
	buf = append(buf, "id: "...)
	buf = append(buf, id...)
	buf = append(buf, "\nevent: message\ndata: "...)
	buf = append(buf, data...)
	buf = append(buf, "\n\n"...)
	if _, err := s.w.Write(buf); err != nil {
		return err
	}
	return s.flush()
}

// prime writes a priming event: an id, the reconnection delay, empty data
// (MCP spec 2025-11-25, basic/transports, "Resumability and Redelivery").
func (s *sseWriter) prime(id string, retry time.Duration) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := fmt.Fprintf(s.w, "id: %s\nretry: %d\ndata: \n\n", id, retry.Milliseconds()); err != nil {
		return err
	}
	return s.flush()
}

func (s *sseWriter) comment(text string) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout))
	if _, err := io.WriteString(s.w, ": "+text+"\n\n"); err != nil {
		return err
	}
	return s.flush()
}

// streamKind says how stream writes a sink out.
type streamKind uint8

const (
	// postStream answers a POST's requests: plain JSON when every response
	// is in before anything else (and before the first keep-alive is due),
	// else an SSE stream that ends after the last response.
	postStream streamKind = iota
	// listenStream is a long-lived SSE stream (a session's GET stream, a
	// subscriptions/listen stream) that ends when its sink does or the
	// client goes away. What it could not write goes back to the sink.
	listenStream
	// legacyStream is the HTTP+SSE transport's one stream: it opens with
	// the endpoint event and also ends when the gateway drains.
	legacyStream
)

// resumable is a session's stream that gets event ids (session/resume.go):
// st is created when the SSE stream starts (a POST answered with plain JSON
// has none), or is the stream a GET resumes.
type resumable struct {
	sess *session.Session
	st   *session.Stream
}

// errPolled ends a POST stream after its priming event
// (limits.sse_close_after_priming).
var errPolled = errors.New("closed after the priming event (limits.sse_close_after_priming)")

// stream writes sink out as the response of r until it is done, with
// keep-alive comments, and reports whether it ended with an interim outcome
// (a modern request's input_required result: the request goes on). It is
// the one writer of every SSE transport. With rs, the events carry ids and
// are kept for resumption, a POST stream starts with a priming event, and
// a POST stream cut before its responses is left for a resuming GET.
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, sink *session.Sink, kind streamKind, isBatch bool, endpoint string, rs *resumable) (paused bool) {
	ri := info(r.Context())
	lim := g.conf().Limits
	keepalive := time.NewTicker(lim.SSEKeepAlive)
	defer keepalive.Stop()
	var sse *sseWriter
	var drain <-chan struct{}
	finished := false // a POST stream's responses were all written
	if rs != nil {
		defer func() {
			if rs.st != nil {
				rs.st.Detach(finished)
			}
		}()
	}
	open := func() error {
		sse = startSSE(w)
		if rs == nil {
			return nil
		}
		if rs.st == nil {
			rs.st = rs.sess.NewStream(true, sink)
			if id, retry, ok := rs.st.Priming(); ok {
				if err := sse.prime(id, retry); err != nil {
					return err
				}
				if lim.SSECloseAfterPriming {
					return errPolled
				}
			}
		}
		for _, ev := range rs.st.TakeReplay() {
			if err := sse.eventID(ev.ID, ev.Data); err != nil {
				return err
			}
		}
		return nil
	}
	write := func(m []byte) error {
		if rs == nil {
			return sse.event(m)
		}
		return sse.eventID(rs.st.Record(m), m)
	}
	switch kind {
	case listenStream:
		if err := open(); err != nil {
			return false
		}
	case legacyStream:
		sse = startSSE(w)
		if sse.named("endpoint", []byte(endpoint)) != nil {
			return false
		}
		drain = g.drainCh()
	}
	gone := func(err error) bool {
		if errors.Is(err, errPolled) {
			return false // the response comes on the resuming GET
		}
		if kind == postStream {
			ri.errMsg = "client went away: " + err.Error()
		}
		return false
	}
	for {
		select {
		case <-sink.Wake():
		case <-keepalive.C:
			if sse == nil {
				if err := open(); err != nil {
					return gone(err)
				}
			}
			if err := sse.comment("keep-alive"); err != nil {
				return gone(err)
			}
			continue
		case <-r.Context().Done():
			if kind == postStream {
				ri.errMsg = "client closed the response stream before the response"
			}
			return false
		case <-drain:
			return false
		}
		if sse == nil && sink.JSONReady() {
			// An answer may be as large as limits.max_message_bytes.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(sseWriteTimeout))
			msgs, _, paused, _ := sink.TakeAll()
			noteErrors(ri, msgs)
			switch {
			case len(msgs) == 0:
				w.WriteHeader(http.StatusAccepted) // every request was cancelled by the client
			case isBatch:
				writeJSON(w, http.StatusOK, append(append([]byte("["), bytes.Join(msgs, []byte(","))...), ']'))
			default:
				status := http.StatusOK
				if k := sink.ErrorKind(); k != 0 {
					status = statusOf(k) // an error outcome before the first byte
				}
				writeJSON(w, status, msgs[0])
			}
			finished = true
			return paused
		}
		if sse == nil {
			if !sink.Related() {
				continue // only some of a batch's responses are in: keep waiting for plain JSON
			}
			if err := open(); err != nil {
				return gone(err)
			}
		}
		msgs, done, paused, dropped := sink.TakeAll()
		if dropped > 0 {
			g.log.Warn("client stream too slow: dropped messages", "request_id", ri.id, "tool", ri.tool,
				"session_id", ri.sessionID, "method", ri.method, "dropped", dropped)
		}
		if kind == postStream {
			noteErrors(ri, msgs)
		}
		for i, m := range msgs {
			if err := write(m); err != nil {
				if kind == listenStream || rs != nil {
					sink.Requeue(msgs[i+1:]) // m itself is kept for replay when rs is set
				}
				return gone(err)
			}
		}
		if done {
			finished = true
			return paused
		}
	}
}
