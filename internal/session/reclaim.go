package session

import "time"

// The reclaim rule: at a process cap (launcher mode) or at
// limits.max_sessions, the longest-idle reclaimable session is ended to make
// room. A session is reclaimable when nothing of it is in flight and it has
// been idle for its server's reclaim_idle, or for the shorter
// reclaim_unattended when it has no open stream either, counted from its
// last request or the end of its last stream, whichever is later. A client
// that holds a GET stream is still there; a client that left without DELETE
// (the MCP Inspector CLI opens a session per invocation) is not, and its
// process should not block the next one for a minute.

// reclaimable reports whether s may be ended to make room, and since when
// it has been idle (for choosing the longest-idle one).
func (s *Session) reclaimable(now time.Time) (time.Time, bool) {
	if s.isGone() {
		return time.Time{}, false
	}
	s.mu.Lock()
	last, busy := s.lastActive, len(s.inflight) > 0
	unattended := len(s.streams) == 0
	since := last
	if s.detached.After(since) {
		since = s.detached
	}
	s.mu.Unlock()
	if busy {
		return last, false
	}
	to := s.srv.cfg.Timeouts
	if now.Sub(last) >= to.ReclaimIdle {
		return last, true
	}
	return last, unattended && now.Sub(since) >= to.ReclaimUnattended
}
