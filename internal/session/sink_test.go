package session

import (
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/internal/problem"

	"github.com/google/go-cmp/cmp"
)

func TestSink(t *testing.T) {
	t.Run("POST sink ends when every awaited response is in", func(t *testing.T) {
		s := NewSink(2)
		s.expectOne()
		s.expectOne()
		if !s.push([]byte("progress")) {
			t.Fatal("push refused")
		}
		s.final([]byte("r1"), 0)
		msgs, done, _ := s.Take()
		if d := cmp.Diff([]string{"progress", "r1"}, strs(msgs)); d != "" || done {
			t.Errorf("(-want +got):\n%s done=%v", d, done)
		}
		s.final(nil, 0) // cancelled by the client: no output, still counted
		if _, done, _ := s.Take(); !done {
			t.Error("not done after the last outcome")
		}
		if s.JSONReady() {
			t.Error("JSONReady after a related message")
		}
	})
	t.Run("non-final messages beyond the bound are dropped and counted, finals never", func(t *testing.T) {
		s := NewSink(1)
		s.expectOne()
		s.push([]byte("a"))
		if s.push([]byte("b")) {
			t.Error("second push accepted over the bound")
		}
		s.final([]byte("resp"), problem.BadGateway)
		msgs, done, dropped := s.Take()
		if d := cmp.Diff([]string{"a", "resp"}, strs(msgs)); d != "" || !done || dropped != 1 {
			t.Errorf("(-want +got):\n%s done=%v dropped=%d", d, done, dropped)
		}
		if s.ErrorKind() != problem.BadGateway {
			t.Errorf("ErrorKind = %v", s.ErrorKind())
		}
	})
	t.Run("stream sink ends only when closed and hands back what it held", func(t *testing.T) {
		s := newStreamSink(8)
		s.push([]byte("x"))
		if _, done, _ := s.Take(); done {
			t.Error("stream sink done before close")
		}
		s.push([]byte("y"))
		if d := cmp.Diff([]string{"y"}, strs(s.drain())); d != "" {
			t.Errorf("drain (-want +got):\n%s", d)
		}
		if s.push([]byte("z")) {
			t.Error("push accepted after drain")
		}
		if _, done, _ := s.Take(); !done {
			t.Error("not done after drain")
		}
	})
}

func strs(b [][]byte) []string {
	out := make([]string, len(b))
	for i, m := range b {
		out[i] = string(m)
	}
	return out
}

// An interim outcome (input_required) ends the current response; the
// final one, even when it is already queued, is for the next response, with
// the retry's id.
func TestSinkInterim(t *testing.T) {
	s := NewSink(8)
	s.expectOne()
	s.push([]byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{}}`))
	s.interim([]byte(`{"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required"}}`))
	s.final([]byte(`{"jsonrpc":"2.0","id":1,"result":{"resultType":"complete"}}`), 0)
	msgs, done, paused, _ := s.TakeAll()
	if len(msgs) != 2 || !done || !paused || !strings.Contains(string(msgs[1]), "input_required") {
		t.Fatalf("first response: %q done=%v paused=%v", msgs, done, paused)
	}
	s.setFinalID([]byte(`2`)) // the retry came after the final was queued
	msgs, done, paused, _ = s.TakeAll()
	if len(msgs) != 1 || !done || paused || string(msgs[0]) != `{"jsonrpc":"2.0","id":2,"result":{"resultType":"complete"}}` {
		t.Fatalf("second response: %q done=%v paused=%v", msgs, done, paused)
	}
}

func TestNegotiate(t *testing.T) {
	cases := []struct{ client, backend, want string }{
		{"2025-06-18", "2025-11-25", "2025-06-18"},
		{"2025-11-25", "2025-06-18", "2025-06-18"},
		{"2099-01-01", "2025-11-25", "2025-11-25"},
		{"", "2025-03-26", "2025-03-26"},
	}
	for _, c := range cases {
		if got := negotiate(c.client, c.backend); got != c.want {
			t.Errorf("negotiate(%q, %q) = %q, want %q", c.client, c.backend, got, c.want)
		}
	}
}
