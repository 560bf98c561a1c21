package gateway

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/mcpgw/mcpgw/internal/session"
)

// sseWriteTimeout bounds each write (and flush) of an SSE stream, so that a
// client that stops reading cannot pin a handler.
const sseWriteTimeout = 30 * time.Second

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

// stream writes sink out as the response of r until it is done, with
// keep-alive comments, and reports whether it ended with an interim outcome
// (a modern request's input_required result: the request goes on). It is
// the one writer of every SSE transport.
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, sink *session.Sink, kind streamKind, isBatch bool, endpoint string) (paused bool) {
	ri := info(r.Context())
	keepalive := time.NewTicker(g.conf().Limits.SSEKeepAlive)
	defer keepalive.Stop()
	var sse *sseWriter
	var drain <-chan struct{}
	switch kind {
	case listenStream:
		sse = startSSE(w)
	case legacyStream:
		sse = startSSE(w)
		if sse.named("endpoint", []byte(endpoint)) != nil {
			return false
		}
		drain = g.drainCh()
	}
	gone := func(err error) bool {
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
				sse = startSSE(w)
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
			return paused
		}
		if sse == nil {
			if !sink.Related() {
				continue // only some of a batch's responses are in: keep waiting for plain JSON
			}
			sse = startSSE(w)
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
			if err := sse.event(m); err != nil {
				if kind == listenStream {
					sink.Requeue(msgs[i+1:])
				}
				return gone(err)
			}
		}
		if done {
			return paused
		}
	}
}
