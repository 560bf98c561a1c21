package session

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
	"github.com/mcpgw/mcpgw/internal/problem"
)

var (
	bob       = Caller{Identity: "bob", Client: "test/1"}
	anonymous = Caller{Client: "test/1"}
)

func modernMeta(caps string) *modern.Meta {
	return &modern.Meta{ProtocolVersion: modern.Version, ClientInfo: json.RawMessage(`{"name":"test","version":"1"}`),
		ClientCapabilities: json.RawMessage(caps)}
}

// call sends one modern tools/call and, unless it is held, waits for its
// answer and ends it; it returns the call and its sink.
func (ly *layer) call(server string, caller Caller, meta *modern.Meta, id int, tool string) (*Call, *Sink) {
	ly.t.Helper()
	sink := NewSink(0)
	c, err := ly.m.Server(server).Stateless(context.Background(), caller, request(id, "tools/call", fmt.Sprintf(`{"name":%q}`, tool)), meta, sink)
	if err != nil {
		ly.t.Fatalf("%s's call %d: %v", caller.logName(), id, err)
	}
	if tool == "hold" {
		return c, sink
	}
	synctest.Wait()
	if resp, _ := outcomes(sink); len(resp) != 1 || resp[0].Error != nil {
		ly.t.Fatalf("%s's call %d: %s, want one result", caller.logName(), id, encodeAll(resp))
	}
	c.End()
	synctest.Wait()
	return c, sink
}

func TestWarmProcessPerIdentity(t *testing.T) {
	// Launcher mode, isolation: session (the default): an identity's
	// 2026-07-28 requests reuse its process; another identity gets its own;
	// concurrent requests of one identity get one process each; a request
	// that declares other capabilities gets another (a session-era server
	// was initialised with the first's); the server is probed with
	// server/discover once, not per process; idle processes stop after the
	// idle timeout.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
servers:
  l:
    command: [fake]
    max_processes: 8
    timeouts: {idle: 10m, request: 1m, kill_grace: 1s}
`, &fakeLauncher{scripts: holding})
		meta := modernMeta(`{}`)
		for i := range 3 {
			ly.call("l", alice, meta, i, "echo")
		}
		if n := ly.l.starts(); n != 1 {
			t.Fatalf("alice's 3 calls started %d processes, want 1", n)
		}
		if n := len(ly.l.server(1).got("initialize")); n != 1 {
			t.Errorf("alice's process was initialised %d times, want 1", n)
		}
		ly.call("l", bob, meta, 1, "echo")
		if n := ly.l.starts(); n != 2 {
			t.Fatalf("bob's call after alice's: %d processes started, want 2", n)
		}
		if got := ly.l.server(2).got("tools/call"); len(got) != 1 {
			t.Errorf("bob's process got %d calls, want 1 (his own)", len(got))
		}
		if got := ly.l.server(1).got("tools/call"); len(got) != 3 {
			t.Errorf("alice's process got %d calls, want her 3", len(got))
		}
		// The first process answered server/discover with something else
		// than a DiscoverResult: the server is session-era, and later
		// processes are not probed.
		if n := len(ly.l.server(1).got("server/discover")); n != 1 {
			t.Errorf("the first process was probed %d times, want 1", n)
		}
		if n := len(ly.l.server(2).got("server/discover")); n != 0 {
			t.Errorf("the second process was probed %d times, want 0 (the era is known)", n)
		}

		held, heldSink := ly.call("l", alice, meta, 10, "hold")
		ly.call("l", alice, meta, 11, "echo")
		if n := ly.l.starts(); n != 3 {
			t.Fatalf("alice's call while another is in flight: %d processes started, want 3", n)
		}
		ly.l.server(1).reply(ly.l.server(1).got("tools/call")[3], `{"done":true}`)
		synctest.Wait()
		if resp, _ := outcomes(heldSink); len(resp) != 1 {
			t.Fatalf("held call: %s", encodeAll(resp))
		}
		held.End()

		ly.call("l", alice, modernMeta(`{"sampling":{}}`), 12, "echo")
		if n := ly.l.starts(); n != 4 {
			t.Fatalf("alice's call with other capabilities: %d processes started, want 4", n)
		}
		if st := ly.m.Stats("l"); st.Processes != 4 {
			t.Errorf("%d processes, want 4 warm", st.Processes)
		}
		time.Sleep(10*time.Minute + 2*time.Second)
		synctest.Wait()
		if n := ly.l.alive(); n != 0 {
			t.Errorf("%d processes alive after the idle timeout, want 0", n)
		}
		if st := ly.m.Stats("l"); st.Processes != 0 {
			t.Errorf("%d process slots taken after the idle timeout, want 0", st.Processes)
		}
		if n := ly.logCount("stopping an idle process of 2026-07-28 requests"); n != 4 {
			t.Errorf("%d idle stops logged, want 4", n)
		}
	})
}

func TestWarmAnonymousShared(t *testing.T) {
	// Without authentication every caller is anonymous: they share one.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, "servers:\n  l:\n    command: [fake]\n", &fakeLauncher{scripts: holding})
		for i := range 3 {
			ly.call("l", anonymous, modernMeta(`{}`), i, "echo")
		}
		if n := ly.l.starts(); n != 1 {
			t.Fatalf("3 anonymous calls started %d processes, want 1", n)
		}
	})
}

func TestIsolationRequest(t *testing.T) {
	// isolation: request keeps a process per request, stopped after it.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, "servers:\n  l:\n    command: [fake]\n    isolation: request\n    timeouts: {kill_grace: 1s}\n", &fakeLauncher{scripts: holding})
		for i := range 3 {
			ly.call("l", alice, modernMeta(`{}`), i, "echo")
			time.Sleep(3 * time.Second)
			synctest.Wait()
			if n := ly.l.alive(); n != 0 {
				t.Fatalf("after call %d: %d processes alive, want 0", i, n)
			}
		}
		if n := ly.l.starts(); n != 3 {
			t.Fatalf("3 calls started %d processes, want 3", n)
		}
	})
}

func TestWarmReclaimAndTimeout(t *testing.T) {
	// At max_processes an idle warm process is reclaimed for another
	// identity before any session; a process whose request timed out is
	// not reused; max_lifetime ends reuse.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
servers:
  l:
    command: [fake]
    max_processes: 2
    timeouts: {idle: 1h, request: 10s, kill_grace: 1s, max_lifetime: 1h}
`, &fakeLauncher{scripts: holding})
		meta := modernMeta(`{}`)
		s := ly.initialize("l")
		if _, err := s.OpenStream(); err != nil {
			t.Fatal(err)
		}
		ly.call("l", alice, meta, 1, "echo")
		time.Sleep(time.Minute)
		ly.call("l", bob, meta, 1, "echo") // reclaims alice's, not the session (held by a stream, 61s idle)
		if _, err := ly.m.Lookup("l", s.ID(), "alice"); err != nil {
			t.Errorf("the session was reclaimed before an idle warm process: %v", err)
		}
		if n := ly.logCount("reclaiming an idle process of 2026-07-28 requests to make room"); n != 1 {
			t.Errorf("%d warm reclaims, want 1", n)
		}
		if n := ly.l.starts(); n != 3 {
			t.Fatalf("%d starts, want 3 (session, alice, bob)", n)
		}

		// bob's request times out: his process is not reused.
		timedOut, sink := ly.call("l", bob, meta, 2, "hold")
		time.Sleep(11 * time.Second)
		synctest.Wait()
		wantOneError(t, "held call", sink, jsonrpc.CodeTimeout)
		timedOut.End()
		synctest.Wait()
		if n := ly.l.alive(); n != 1 {
			t.Errorf("%d processes alive after the timed-out call ended, want 1 (the session's; bob's stopped)", n)
		}
		ly.call("l", bob, meta, 3, "echo")
		if n := ly.l.starts(); n != 4 {
			t.Fatalf("after a timeout: %d starts, want 4 (a new process for bob)", n)
		}

		// max_lifetime: the process is not reused past it, and stops.
		time.Sleep(time.Hour + 2*time.Second)
		synctest.Wait()
		if w := ly.m.Server("l").warmCount(); w != 0 {
			t.Errorf("%d warm processes past max_lifetime, want 0", w)
		}
		if _, _, err := ly.m.Server("l").Initialize(context.Background(), alice, initReq()); kindOf(err) == problem.Busy {
			t.Errorf("a session after the warm processes ended: %v", err)
		}
	})
}
