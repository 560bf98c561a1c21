package session

import (
	"errors"
	"time"

	"github.com/mcpgw/mcpgw/internal/backend"
)

// logEnded writes the one "session ended" line of a published session:
// why (the gateway's reason at info, or the process's failure at warn) and
// how long it lived. A session that was never published (its initialize
// failed) has no line: its failure was answered and logged already.
func (s *Session) logEnded() {
	if !s.published.Load() {
		return
	}
	s.closeOnce.Do(func() {}) // closeErr is set before the session can finish
	why := s.closeErr
	attrs := []any{"tool", s.srv.Name, "runtime", s.srv.cfg.Runtime, "session_id", s.id,
		"client", s.caller.logName(), "duration_ms", time.Since(s.created).Milliseconds()}
	switch {
	case why == nil:
		s.srv.m.log.Info("session ended", append(attrs, "reason", "ended", "error", "")...)
	case errors.Is(why, backend.ErrStopped):
		s.srv.m.log.Info("session ended", append(attrs, "reason", backend.StopReason(why), "error", "")...)
	default:
		s.srv.m.log.Warn("session ended", append(attrs, "reason", "the server process ended", "error", why.Error())...)
	}
}
