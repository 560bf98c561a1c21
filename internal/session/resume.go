package session

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Resumable streams (MCP spec 2025-11-25, basic/transports, "Resumability
// and Redelivery"). Every SSE event the gateway writes on a session's
// streams (its GET streams and the SSE responses of its POSTs) carries an
// id unique within the session that names its stream: "<stream>-<seq>",
// where the stream is g<n> for a GET stream and p<n> for a POST's. Written
// events are kept in a replay buffer bounded per session in count, bytes
// and age (limits.replay_events, replay_bytes, replay_age); the oldest go
// first, and drops are logged. A GET with Last-Event-ID resumes the stream
// that id names: the events written on it after that id are written again,
// then the stream continues. A POST stream cut before its responses is
// kept (detached) with what it has not written yet, so that the client's
// resuming GET delivers its response exactly once. An id that is unknown
// or too old gets a fresh stream without replay.

// Stream is one resumable SSE stream of a session. Its methods are called
// by the one HTTP handler writing it at a time.
type Stream struct {
	s    *Session
	id   string // "g3", "p7"
	post bool
	sink *Sink // a POST stream's; nil for a GET stream (each GET has its own)

	// Guarded by s.resume.mu.
	nextSeq  int
	attached bool       // an HTTP response is writing it
	done     bool       // a POST stream whose responses were all written
	left     time.Time  // when it was last detached
	replay   []SSEEvent // what a resuming response writes first
}

// SSEEvent is one written SSE event, as kept for replay.
type SSEEvent struct {
	ID   string
	Data []byte

	stream *Stream
	seq    int
	at     time.Time
}

// resumeState is a session's streams and replay buffer. Its mu is a leaf:
// nothing else is locked while it is held.
type resumeState struct {
	mu      sync.Mutex
	next    int                // stream counter
	streams map[string]*Stream // by id
	events  []SSEEvent         // oldest first
	bytes   int64
	dropped int // events dropped since the last log line
}

// NewStream registers a new stream of s carrying sink: a POST's response
// stream (post) or a GET stream.
func (s *Session) NewStream(post bool, sink *Sink) *Stream {
	rs := &s.resume
	rs.mu.Lock()
	defer rs.mu.Unlock()
	s.pruneLocked(time.Now())
	rs.next++
	prefix := "g"
	if post {
		prefix = "p"
	}
	st := &Stream{s: s, id: prefix + strconv.Itoa(rs.next), post: post, sink: sink, attached: true}
	if rs.streams == nil {
		rs.streams = make(map[string]*Stream)
	}
	rs.streams[st.id] = st
	return st
}

// Sink is the sink the stream carries.
func (st *Stream) Sink() *Sink { return st.sink }

// Post reports whether this is a POST's response stream.
func (st *Stream) Post() bool { return st.post }

// Priming returns the id of the priming event a POST stream starts with
// (an id and empty data, so that a client cut off before the first
// message can resume), and the reconnection delay to announce in its
// retry field; ok is false when the session's protocol version predates
// priming events (2025-11-25), whose clients may not expect empty data.
func (st *Stream) Priming() (id string, retry time.Duration, ok bool) {
	if st.s.protocolVersion < "2025-11-25" {
		return "", 0, false
	}
	return st.id + "-0", st.s.srv.m.conf().Limits.SSERetry, true
}

// Record assigns the next id to an event about to be written and keeps it
// for replay within the session's bounds.
func (st *Stream) Record(data []byte) string {
	rs := &st.s.resume
	lim := st.s.srv.m.conf().Limits
	rs.mu.Lock()
	st.nextSeq++
	ev := SSEEvent{ID: st.id + "-" + strconv.Itoa(st.nextSeq), Data: data, stream: st, seq: st.nextSeq, at: time.Now()}
	rs.events = append(rs.events, ev)
	rs.bytes += int64(len(data))
	for len(rs.events) > 0 && (len(rs.events) > lim.ReplayEvents || rs.bytes > lim.ReplayBytes) {
		rs.bytes -= int64(len(rs.events[0].Data))
		rs.events = rs.events[1:]
		rs.dropped++
	}
	dropped := rs.dropped
	rs.dropped = 0
	rs.mu.Unlock()
	if dropped > 0 {
		st.s.logReplayDrop(dropped, "limit", "limits.replay_events or limits.replay_bytes reached")
	}
	return ev.ID
}

// TakeReplay returns, once, the events a resuming response writes before
// anything new.
func (st *Stream) TakeReplay() []SSEEvent {
	rs := &st.s.resume
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := st.replay
	st.replay = nil
	return r
}

// Detach ends the HTTP response writing the stream. done reports that a
// POST stream wrote all its responses; one that did not is kept, with its
// sink still receiving, for a resuming GET until limits.replay_age.
func (st *Stream) Detach(done bool) {
	rs := &st.s.resume
	rs.mu.Lock()
	defer rs.mu.Unlock()
	st.attached = false
	st.left = time.Now()
	if st.post && done {
		st.done = true
	}
}

// Resume finds the stream named by a Last-Event-ID and prepares its replay:
// the events after that id still in the buffer (TakeReplay). A GET stream
// goes on with the resuming GET's new sink (OpenStream), a detached POST
// stream with its own (Sink). It returns an error, for the log, when the id
// is malformed, unknown, too old, or names a stream that is being written
// or already finished.
func (s *Session) Resume(lastEventID string) (*Stream, error) {
	name, seqText, ok := strings.Cut(lastEventID, "-")
	seq, err := strconv.Atoi(seqText)
	if !ok || err != nil || seq < 0 || name == "" {
		return nil, fmt.Errorf("Last-Event-ID %q is not an id this gateway gave", clipID(lastEventID))
	}
	rs := &s.resume
	rs.mu.Lock()
	defer rs.mu.Unlock()
	s.pruneLocked(time.Now())
	st := rs.streams[name]
	switch {
	case st == nil:
		return nil, fmt.Errorf("Last-Event-ID %q names no stream of this session that can still be resumed (unknown, or older than limits.replay_age)", clipID(lastEventID))
	case st.attached:
		return nil, fmt.Errorf("Last-Event-ID %q names a stream that is still open", clipID(lastEventID))
	case st.post && st.done:
		return nil, fmt.Errorf("Last-Event-ID %q names a POST stream whose responses were all delivered", clipID(lastEventID))
	case seq > st.nextSeq:
		return nil, fmt.Errorf("Last-Event-ID %q is ahead of its stream", clipID(lastEventID))
	}
	var replay []SSEEvent
	oldest := -1
	for _, ev := range rs.events {
		if ev.stream != st {
			continue
		}
		if oldest < 0 {
			oldest = ev.seq
		}
		if ev.seq > seq {
			replay = append(replay, ev)
		}
	}
	if seq < st.nextSeq && (oldest < 0 || oldest > seq+1) {
		// Some of what the client missed is no longer kept: it gets the
		// stream with what is left, and the log says so.
		missing := st.nextSeq - seq - len(replay)
		s.srv.m.wg.Go(func() { s.logReplayDrop(missing, "expired", "a resumed stream's events are no longer kept") }) // owner: the manager; one log line
	}
	st.replay = replay
	st.attached = true
	s.srv.observe(Event{Kind: Resumed, N: len(replay)})
	return st, nil
}

// pruneLocked forgets detached streams and events older than
// limits.replay_age. Called with s.resume.mu held.
func (s *Session) pruneLocked(now time.Time) {
	rs := &s.resume
	age := s.srv.m.conf().Limits.ReplayAge
	i := 0
	for ; i < len(rs.events) && now.Sub(rs.events[i].at) >= age; i++ {
		rs.bytes -= int64(len(rs.events[i].Data))
	}
	rs.events = rs.events[i:]
	for id, st := range rs.streams {
		if !st.attached && (st.done || now.Sub(st.left) >= age) {
			delete(rs.streams, id)
		}
	}
}

// logReplayDrop logs and counts n kept events lost; reason is the
// ResumeDropped event's, why the log line's.
func (s *Session) logReplayDrop(n int, reason, why string) {
	s.srv.observe(Event{Kind: ResumeDropped, N: n, Reason: reason})
	s.srv.m.log.Warn("dropping SSE events kept for resumption", "tool", s.srv.Name, "runtime", s.srv.cfg.Runtime,
		"session_id", s.id, "events", n, "reason", why)
}

// clipID is a client's Last-Event-ID cut for messages.
func clipID(s string) string {
	if len(s) > 40 {
		return s[:40]
	}
	return strings.ToValidUTF8(s, "?")
}
