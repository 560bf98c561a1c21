package session

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestReplayBounds(t *testing.T) {
	// A session's replay buffer keeps at most limits.replay_bytes (the
	// oldest events go first) and nothing older than limits.replay_age; a
	// POST stream cut before its responses can be resumed until then, a
	// finished one not at all.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
limits: {replay_events: 100, replay_bytes: 25, replay_age: 1m}
servers:
  l:
    command: [fake]
`, &fakeLauncher{scripts: holding})
		s := ly.initialize("l")
		g := s.NewStream(false, nil)
		var ids []string
		for i := range 5 {
			ids = append(ids, g.Record([]byte(strings.Repeat("x", 10)+string(rune('a'+i)))))
		}
		g.Detach(false)
		st, err := s.Resume(ids[0])
		if err != nil {
			t.Fatal(err)
		}
		replay := st.TakeReplay()
		if len(replay) != 2 || replay[0].ID != ids[3] || replay[1].ID != ids[4] {
			t.Fatalf("replayed %d events, want the last 2 (25 bytes of 11-byte events)", len(replay))
		}
		if ly.logCount("dropping SSE events kept for resumption") < 2 {
			t.Error("drops at replay_bytes and the gap at resumption were not logged")
		}
		st.Detach(false)

		p := s.NewStream(true, NewSink(0))
		pid := p.Record([]byte("progress"))
		p.Detach(false) // cut before its response
		time.Sleep(59 * time.Second)
		if _, err := s.Resume(pid); err != nil {
			t.Fatalf("a cut POST stream 59s later: %v, want it resumable", err)
		}
		p.Detach(true) // its responses were delivered
		if _, err := s.Resume(pid); err == nil {
			t.Fatal("a finished POST stream was resumed")
		}
		time.Sleep(2 * time.Second) // the GET stream was left 61s ago
		if _, err := s.Resume(ids[4]); err == nil || !strings.Contains(err.Error(), "replay_age") {
			t.Fatalf("a stream left longer than replay_age: %v, want it unknown", err)
		}
		for _, bad := range []string{"", "nope", "g1-x", "g1--1", "zz-1"} {
			if _, err := s.Resume(bad); err == nil {
				t.Errorf("Last-Event-ID %q resumed something", bad)
			}
		}
	})
}

// FuzzResume: a Last-Event-ID is untrusted input; no value panics, and only
// an id the gateway gave resumes a stream.
func FuzzResume(f *testing.F) {
	for _, s := range []string{"g1-0", "p2-3", "g1-", "-1", "g1-99999999999999999999", "\x00-\xff"} {
		f.Add(s)
	}
	ly := newLayer(f, "servers:\n  l:\n    command: [fake]\n", &fakeLauncher{scripts: holding})
	s := ly.initialize("l")
	g := s.NewStream(false, nil)
	id := g.Record([]byte("x"))
	g.Detach(false)
	f.Fuzz(func(t *testing.T, lei string) {
		st, err := s.Resume(lei)
		if err != nil {
			return
		}
		if name, _, _ := strings.Cut(lei, "-"); name != "g1" {
			t.Fatalf("Last-Event-ID %q (gave %s) resumed stream %q", lei, id, name)
		}
		st.TakeReplay()
		st.Detach(false)
	})
}
