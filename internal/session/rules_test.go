package session

import (
	"context"
	"encoding/json"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mcpgw/mcpgw/internal/modern"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// The session layer's timing rules, each in a testing/synctest bubble: the
// clock is fake and advances only when every goroutine of the bubble is
// blocked, so that "60 s later" takes no time and no test waits on a real
// timer or races one.

var alice = Caller{Identity: "alice", Client: "test/1"}

// holding is a script that holds tools/call named "hold" (the test answers
// it with fakeServer.reply) and echoes every other request.
func holding(int) *script {
	return &script{request: func(s *fakeServer, req *jsonrpc.Message) {
		if req.Method == "tools/call" && strings.Contains(string(req.Params), `"name":"hold"`) {
			return
		}
		s.reply(req, `{"echo":`+string(orNull(req.Params))+`}`)
	}}
}

func initReq() *jsonrpc.Message {
	return request(0, "initialize", `{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}`)
}

// kindOf is the problem kind of err, or 0.
func kindOf(err error) problem.Kind {
	if p, ok := problem.As(err); ok {
		return p.Kind
	}
	return 0
}

// wantOneError checks that sink received exactly one outcome, an error
// response with code.
func wantOneError(t *testing.T, what string, sink *Sink, code int) {
	t.Helper()
	resp, _ := outcomes(sink)
	if len(resp) != 1 || errorCode(resp[0]) != code {
		t.Fatalf("%s: got %d responses %s, want exactly one error %d", what, len(resp), encodeAll(resp), code)
	}
}

func encodeAll(ms []*jsonrpc.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.Write(jsonrpc.Encode(m))
		b.WriteByte(' ')
	}
	return b.String()
}

func TestCrashBackoffSchedule(t *testing.T) {
	// A pooled process that fails soon after its start counts once; the
	// first failure restarts at once, then 1s, 2s, 4s … up to a minute.
	// Each probe during a back-off gets 503 with Retry-After = what is
	// left of it, and starts nothing.
	// after[k-1] is the back-off after the k-th consecutive failure.
	after := []time.Duration{0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, 60 * time.Second, 60 * time.Second}
	for _, tc := range []struct {
		name   string
		script func(int) *script
		// fail makes one start happen and fail, checking what the client
		// saw.
		fail func(t *testing.T, ly *layer)
	}{
		{
			name: "crash during a request",
			script: func(int) *script {
				return &script{request: func(s *fakeServer, _ *jsonrpc.Message) { s.crash() }}
			},
			fail: func(t *testing.T, ly *layer) {
				s := ly.initialize("d")
				sink := NewSink(0)
				if err := s.Begin(context.Background(), request(1, "tools/call", `{"name":"x"}`), sink); err != nil {
					t.Fatalf("begin: %v", err)
				}
				synctest.Wait()
				wantOneError(t, "request on a crashing process", sink, jsonrpc.CodeBackendStopped)
			},
		},
		{
			name: "crash at startup",
			script: func(int) *script {
				return &script{initialize: func(s *fakeServer, _ *jsonrpc.Message) { s.crash() }}
			},
			fail: func(t *testing.T, ly *layer) {
				_, _, err := ly.m.Server("d").Initialize(context.Background(), alice, initReq())
				if kindOf(err) != problem.BadGateway {
					t.Fatalf("initialize of a process that dies: %v (kind %v), want bad gateway", err, kindOf(err))
				}
			},
		},
		{
			name: "startup timeout",
			script: func(int) *script {
				return &script{initialize: func(*fakeServer, *jsonrpc.Message) {}} // never answers
			},
			fail: func(t *testing.T, ly *layer) {
				start := time.Now()
				_, _, err := ly.m.Server("d").Initialize(context.Background(), alice, initReq())
				if kindOf(err) != problem.Timeout {
					t.Fatalf("initialize of a silent process: %v (kind %v), want timeout", err, kindOf(err))
				}
				if d := time.Since(start); d != 5*time.Second {
					t.Errorf("startup timeout after %s, want 5s", d)
				}
				synctest.Wait() // the silent process is stopped
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ly := newLayer(t, `
servers:
  d:
    command: [fake]
    mode: daemon
    timeouts: {startup: 5s, kill_grace: 1s}
`, &fakeLauncher{scripts: tc.script})
				srv := ly.m.Server("d")
				for i, next := range after {
					before := ly.l.starts()
					tc.fail(t, ly)
					synctest.Wait()
					if got := ly.l.starts(); got != before+1 {
						t.Fatalf("failure %d: %d processes started, want 1", i+1, got-before)
					}
					if got := srv.pool.failures; got != i+1 {
						t.Fatalf("after failure %d the pool counts %d failures", i+1, got)
					}
					if next == 0 {
						continue // restarts at once
					}
					for probe, wait := range []time.Duration{0, next - time.Millisecond} {
						time.Sleep(wait)
						_, _, err := srv.Initialize(context.Background(), alice, initReq())
						p, _ := problem.As(err)
						if p == nil || p.Kind != problem.Unavailable {
							t.Fatalf("during back-off %d: %v, want 503", i+1, err)
						}
						if left := next - wait; probe == 0 && p.RetryAfter != left {
							t.Errorf("back-off after failure %d: Retry-After %s, want %s", i+1, p.RetryAfter, left)
						}
					}
					if got := ly.l.starts(); got != before+1 {
						t.Fatalf("a process was started during the back-off after failure %d", i+1)
					}
					time.Sleep(time.Millisecond) // the back-off is over
				}
				if lines := ly.logCount("server keeps failing; backing off"); lines != len(after)-1 {
					t.Errorf("%d back-off log lines for %d failures, want one per failure after the first", lines, len(after))
				}
			})
		})
	}
}

func TestReclaimAtProcessCap(t *testing.T) {
	// At max_processes a launcher server ends the longest-idle session
	// that has been idle for reclaim_idle and has nothing in flight (its
	// client then gets 404 and re-initialises); with no such session the
	// new one is refused with 429 at once (queue_timeout 0).
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
servers:
  l:
    command: [fake]
    max_processes: 2
    timeouts: {reclaim_idle: 60s, idle: 1h, request: 10m, kill_grace: 1s}
`, &fakeLauncher{scripts: holding})
		srv := ly.m.Server("l")
		// Both clients hold a GET stream: they are there, so only
		// reclaim_idle applies (TestReclaimUnattended has the others).
		s1 := ly.initialize("l")
		if _, err := s1.OpenStream(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second)
		s2 := ly.initialize("l")
		if _, err := s2.OpenStream(); err != nil {
			t.Fatal(err)
		}

		if _, _, err := srv.Initialize(context.Background(), alice, initReq()); kindOf(err) != problem.Busy {
			t.Fatalf("third session with both idle for less than reclaim_idle: %v, want 429", err)
		}
		// s2 gets a request in flight: it may not be reclaimed, however
		// idle it was before.
		busy := NewSink(0)
		if err := s2.Begin(context.Background(), request(7, "tools/call", `{"name":"hold"}`), busy); err != nil {
			t.Fatal(err)
		}
		time.Sleep(55 * time.Second) // s1 idle 65s, s2 busy
		s3, _, err := srv.Initialize(context.Background(), alice, initReq())
		if err != nil {
			t.Fatalf("third session with s1 idle for 65s: %v, want s1 reclaimed", err)
		}
		if _, err := ly.m.Lookup("l", s1.ID(), "alice"); kindOf(err) != problem.NotFound {
			t.Errorf("reclaimed session: lookup %v, want 404", err)
		}
		if _, err := ly.m.Lookup("l", s2.ID(), "alice"); err != nil {
			t.Errorf("session with a request in flight was reclaimed: %v", err)
		}
		if got := ly.m.Stats("l").Processes; got != 2 {
			t.Errorf("%d processes, want 2 (s2's and s3's)", got)
		}
		if s3 == nil {
			t.Fatal("no third session")
		}
		ly.l.server(2).reply(ly.l.server(2).got("tools/call")[0], `{"done":true}`)
		synctest.Wait()
		if resp, _ := outcomes(busy); len(resp) != 1 || resp[0].Error != nil {
			t.Fatalf("held request: %s, want its result", encodeAll(resp))
		}
		if n := ly.logCount("reclaiming an idle session to make room for a new one"); n != 1 {
			t.Errorf("%d reclaim log lines, want 1", n)
		}
	})
}

func TestIdleAndLifetime(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		run  func(t *testing.T, ly *layer)
	}{
		{
			name: "launcher session idle",
			yaml: `
servers:
  l:
    command: [fake]
    timeouts: {idle: 1m, kill_grace: 1s}
`,
			run: func(t *testing.T, ly *layer) {
				s := ly.initialize("l")
				time.Sleep(50 * time.Second)
				sink := NewSink(0)
				if err := s.Begin(context.Background(), request(1, "ping", ""), sink); err != nil {
					t.Fatalf("begin at 50s: %v", err)
				}
				synctest.Wait()
				time.Sleep(50 * time.Second) // 100s since start, 50s since traffic
				if _, err := ly.m.Lookup("l", s.ID(), "alice"); err != nil {
					t.Fatalf("session with traffic 50s ago: %v", err)
				}
				time.Sleep(25 * time.Second) // idle 75s: past 1m plus a janitor tick (15s)
				synctest.Wait()
				if _, err := ly.m.Lookup("l", s.ID(), "alice"); kindOf(err) != problem.NotFound {
					t.Fatalf("idle session: %v, want 404", err)
				}
				if n := ly.l.alive(); n != 0 {
					t.Errorf("%d processes alive after the idle timeout, want 0", n)
				}
			},
		},
		{
			name: "launcher max_lifetime drains first",
			yaml: `
servers:
  l:
    command: [fake]
    timeouts: {idle: 1h, max_lifetime: 10m, request: 1h, kill_grace: 1s}
`,
			run: func(t *testing.T, ly *layer) {
				s := ly.initialize("l")
				time.Sleep(9 * time.Minute)
				running := NewSink(0)
				if err := s.Begin(context.Background(), request(1, "tools/call", `{"name":"hold"}`), running); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * time.Minute) // past max_lifetime with a request in flight
				synctest.Wait()
				if err := s.Begin(context.Background(), request(2, "tools/call", `{"name":"new"}`), NewSink(0)); kindOf(err) != problem.NotFound {
					t.Fatalf("new request past max_lifetime: %v, want 404", err)
				}
				if n := ly.l.alive(); n != 1 {
					t.Fatalf("process stopped with a request in flight (%d alive)", n)
				}
				srvProc := ly.l.server(1)
				srvProc.reply(srvProc.got("tools/call")[0], `{"late":true}`)
				synctest.Wait()
				if resp, _ := outcomes(running); len(resp) != 1 || resp[0].Error != nil {
					t.Fatalf("in-flight request at max_lifetime: %s, want its result", encodeAll(resp))
				}
				time.Sleep(time.Minute) // the next janitor tick stops the drained process
				synctest.Wait()
				if n := ly.l.alive(); n != 0 {
					t.Errorf("%d processes alive after draining, want 0", n)
				}
			},
		},
		{
			name: "daemon process idle, min_processes kept",
			yaml: `
servers:
  d:
    command: [fake]
    mode: daemon
    max_processes: 2
    min_processes: 1
    max_inflight_per_process: 1
    timeouts: {idle: 1m, kill_grace: 1s}
`,
			run: func(t *testing.T, ly *layer) {
				synctest.Wait() // the warm process starts with the gateway
				if n := ly.l.starts(); n != 1 {
					t.Fatalf("%d processes at start, want min_processes = 1", n)
				}
				s := ly.initialize("d")
				// Two requests at once: the second needs a second process.
				srv1 := ly.l.server(1)
				a, b := NewSink(0), NewSink(0)
				if err := s.Begin(context.Background(), request(1, "tools/call", `{"name":"hold"}`), a); err != nil {
					t.Fatal(err)
				}
				s2 := ly.initialize("d") // pinned to a new process: the first is full
				if err := s2.Begin(context.Background(), request(1, "tools/call", `{"name":"hold"}`), b); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				if n := ly.l.starts(); n != 2 {
					t.Fatalf("%d processes, want 2", n)
				}
				srv1.reply(srv1.got("tools/call")[0], `{}`)
				s.End()
				s2.End()
				synctest.Wait()
				time.Sleep(2 * time.Minute)
				synctest.Wait()
				if n := ly.l.alive(); n != 1 {
					t.Errorf("%d processes alive after both were idle for 2m, want min_processes = 1", n)
				}
			},
		},
		{
			name: "daemon max_lifetime replaces without failing a request",
			yaml: `
servers:
  d:
    command: [fake]
    mode: daemon
    max_processes: 2
    timeouts: {idle: 1h, max_lifetime: 10m, request: 1h, kill_grace: 1s}
`,
			run: func(t *testing.T, ly *layer) {
				s := ly.initialize("d")
				old := ly.l.server(1)
				running := NewSink(0)
				if err := s.Begin(context.Background(), request(1, "tools/call", `{"name":"hold"}`), running); err != nil {
					t.Fatal(err)
				}
				time.Sleep(11 * time.Minute)
				synctest.Wait()
				// The old process drains: the session's next request goes to
				// a new one, and the running one still gets its answer.
				next := NewSink(0)
				if err := s.Begin(context.Background(), request(2, "ping", ""), next); err != nil {
					t.Fatalf("request after max_lifetime: %v", err)
				}
				synctest.Wait()
				if resp, _ := outcomes(next); len(resp) != 1 || resp[0].Error != nil {
					t.Fatalf("request on the replacement: %s", encodeAll(resp))
				}
				if n := ly.l.starts(); n != 2 {
					t.Fatalf("%d processes started, want the replacement", n)
				}
				old.reply(old.got("tools/call")[0], `{"late":true}`)
				time.Sleep(time.Minute)
				synctest.Wait()
				if resp, _ := outcomes(running); len(resp) != 1 || resp[0].Error != nil {
					t.Fatalf("request on the draining process: %s, want its result", encodeAll(resp))
				}
				if n := ly.l.alive(); n != 1 {
					t.Errorf("%d processes alive, want only the replacement", n)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc.run(t, newLayer(t, tc.yaml, &fakeLauncher{scripts: holding}))
			})
		})
	}
}

func TestHeldMessagesExpire(t *testing.T) {
	// Server messages for a session without a GET stream are held for
	// limits.hold_messages, at most limits.max_held_messages of them (the
	// oldest goes first); a held server request that is dropped is
	// answered with an error, so the server does not wait forever.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
limits: {hold_messages: 60s, max_held_messages: 2}
servers:
  l:
    command: [fake]
    timeouts: {kill_grace: 1s}
`, &fakeLauncher{scripts: func(int) *script {
			return &script{message: func(s *fakeServer, m *jsonrpc.Message) {
				if m.Method != "notifications/initialized" {
					return
				}
				// Outside any request: nothing to attach them to but the
				// GET stream, which is not open.
				for _, kind := range []string{"tools", "prompts", "resources"} {
					s.send(&jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: "notifications/" + kind + "/list_changed"})
				}
				s.send(&jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage(`"roots-1"`), Method: "roots/list"})
			}}
		}})
		s := ly.initialize("l")
		if err := s.Deliver(context.Background(), &jsonrpc.Message{Kind: jsonrpc.KindNotification, Method: "notifications/initialized"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// Four messages, two held: the two list changes of tools and
		// prompts were dropped for room.
		if n := ly.logCount("dropping a server message: no GET stream is open to receive it"); n != 2 {
			t.Fatalf("%d drops for room, want 2", n)
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		s.mu.Lock()
		held := len(s.held)
		s.mu.Unlock()
		if held != 2 {
			t.Fatalf("%d messages held after 59s, want 2", held)
		}
		time.Sleep(2 * time.Second) // past hold_messages (janitor tick: 15s → capped by 60s/4)
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if n := ly.logCount("dropping a server message: no GET stream is open to receive it"); n != 4 {
			t.Fatalf("%d drops after hold_messages, want 4", n)
		}
		srvProc := ly.l.server(1)
		var answered bool
		for _, m := range srvProc.all() {
			if m.Kind == jsonrpc.KindResponse && string(m.ID) == `"roots-1"` && errorCode(m) == jsonrpc.CodeMethodNotFound {
				answered = true
			}
		}
		if !answered {
			t.Error("the dropped roots/list request was never answered with an error")
		}
		sink, err := s.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		if msgs, _, _ := sink.Take(); len(msgs) != 0 {
			t.Errorf("a new GET stream got %d expired messages", len(msgs))
		}
		s.CloseStream(sink)
	})
}

func TestRequestStateExpires(t *testing.T) {
	// A modern request that needs the client's input gets an
	// input_required result with a requestState; if the client never
	// retries, the state expires with the request's timeout: the server's
	// request is refused, the server's own request cancelled, the process
	// (launcher mode: the request's own) stopped, and a late retry gets
	// -32602.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
servers:
  l:
    command: [fake]
    timeouts: {request: 30s, kill_grace: 1s}
`, &fakeLauncher{scripts: func(int) *script {
			return &script{request: func(s *fakeServer, req *jsonrpc.Message) {
				switch req.Method {
				case "tools/call":
					s.send(&jsonrpc.Message{Kind: jsonrpc.KindRequest, ID: json.RawMessage(`"sample-1"`), Method: "sampling/createMessage",
						Params: json.RawMessage(`{"messages":[],"maxTokens":1}`)})
				default: // server/discover: not a modern server
					s.send(jsonrpc.NewError(req.ID, jsonrpc.CodeMethodNotFound, "method not found", nil))
				}
			}}
		}})
		srv := ly.m.Server("l")
		meta := &modern.Meta{ProtocolVersion: modern.Version, ClientCapabilities: json.RawMessage(`{"sampling":{}}`)}
		sink := NewSink(0)
		params := `{"name":"ask","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}`
		call, err := srv.Stateless(context.Background(), alice, request(5, "tools/call", params), meta, sink)
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		msgs, _, paused, _ := sink.TakeAll()
		if !paused || len(msgs) != 1 {
			t.Fatalf("got %d messages (paused %v), want one input_required result", len(msgs), paused)
		}
		var res struct {
			Result struct {
				ResultType   string `json:"resultType"`
				RequestState string `json:"requestState"`
			} `json:"result"`
		}
		if err := json.Unmarshal(msgs[0], &res); err != nil || res.Result.ResultType != "input_required" || !IsGatewayState(res.Result.RequestState) {
			t.Fatalf("first round: %s", msgs[0])
		}
		call.End() // the response stream is over; the request waits for the retry
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if n := ly.l.alive(); n != 1 {
			t.Fatalf("the request's process stopped before the requestState expired (%d alive)", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if n := ly.l.alive(); n != 0 {
			t.Fatalf("%d processes alive after the requestState expired, want 0", n)
		}
		// The request's own timeout (the same instant here) may cancel it
		// as its process is being stopped: the notification is sent at most
		// once, and may be cut off by the stop.
		fs := ly.l.server(1)
		if n := len(fs.got("notifications/cancelled")); n > 1 {
			t.Errorf("the server's tools/call was cancelled %d times: %s", n, encodeAll(fs.all()))
		}
		refused := false
		for _, m := range fs.all() {
			if m.Kind == jsonrpc.KindResponse && string(m.ID) == `"sample-1"` && m.Error != nil {
				refused = true
			}
		}
		if !refused {
			t.Error("the server's sampling request was not answered with an error")
		}
		retry := request(6, "tools/call", params)
		if _, _, err := srv.Resume(context.Background(), alice, retry, res.Result.RequestState, json.RawMessage(`{}`)); kindOf(err) != problem.BadRequest {
			t.Errorf("retry after expiry: %v, want 400 -32602", err)
		} else if p, _ := problem.As(err); p.Code != jsonrpc.CodeInvalidParams {
			t.Errorf("retry after expiry: code %d, want -32602", p.Code)
		}
	})
}

func TestCrashFailsInflightOnce(t *testing.T) {
	// A crash of a shared process fails exactly the requests in flight on
	// it, each with one -32002 error at once; a request already answered
	// gets nothing more, and the sessions move to a new process.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
servers:
  d:
    command: [fake]
    mode: daemon
    max_concurrent: 8
    timeouts: {request: 1m, kill_grace: 1s}
`, &fakeLauncher{scripts: holding})
		a, b, c := ly.initialize("d"), ly.initialize("d"), ly.initialize("d")
		sa, sb, sc := NewSink(0), NewSink(0), NewSink(0)
		for i, x := range []struct {
			s    *Session
			sink *Sink
			name string
		}{{a, sa, "hold"}, {b, sb, "hold"}, {c, sc, "quick"}} {
			if err := x.s.Begin(context.Background(), request(1, "tools/call", `{"name":"`+x.name+`"}`), x.sink); err != nil {
				t.Fatalf("begin %d: %v", i, err)
			}
		}
		synctest.Wait()
		if resp, _ := outcomes(sc); len(resp) != 1 || resp[0].Error != nil {
			t.Fatalf("quick request: %s", encodeAll(resp))
		}
		ly.l.server(1).crash()
		synctest.Wait()
		wantOneError(t, "session a", sa, jsonrpc.CodeBackendStopped)
		wantOneError(t, "session b", sb, jsonrpc.CodeBackendStopped)
		time.Sleep(2 * time.Minute) // past every timeout: still nothing more
		synctest.Wait()
		for name, sink := range map[string]*Sink{"a": sa, "b": sb, "c": sc} {
			if msgs, _, _ := sink.Take(); len(msgs) != 0 {
				t.Errorf("session %s got %d more messages after its one outcome", name, len(msgs))
			}
		}
		next := NewSink(0)
		if err := a.Begin(context.Background(), request(2, "tools/call", `{"name":"quick"}`), next); err != nil {
			t.Fatalf("after the crash: %v", err)
		}
		synctest.Wait()
		if resp, _ := outcomes(next); len(resp) != 1 || resp[0].Error != nil {
			t.Fatalf("request after the crash: %s", encodeAll(resp))
		}
		if n := ly.l.starts(); n != 2 {
			t.Errorf("%d processes started, want the crashed one and its replacement", n)
		}
	})
}

// wedging is a script whose process answers nothing at all once it got a
// tools/call named "wedge" (not even ping), and echoes before that.
func wedging(int) *script {
	var wedged atomic.Bool
	return &script{request: func(s *fakeServer, req *jsonrpc.Message) {
		if wedged.Load() || req.Method == "tools/call" && strings.Contains(string(req.Params), `"name":"wedge"`) {
			wedged.Store(true)
			return
		}
		s.reply(req, `{"echo":`+string(orNull(req.Params))+`}`)
	}}
}

func TestStuckBackendRecycled(t *testing.T) {
	// A shared process whose timed-out request stays unanswered for
	// kill_grace after its cancellation, and which then does not answer a
	// ping within kill_grace either, is recycled: the client got its -32001
	// at the timeout, the other requests in flight on it fail at once, and
	// the next request gets a new process.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
servers:
  d:
    command: [fake]
    mode: daemon
    timeouts: {request: 1s, kill_grace: 2s}
`, &fakeLauncher{scripts: wedging})
		s := ly.initialize("d")
		stuck := NewSink(0)
		start := time.Now()
		if err := s.Begin(context.Background(), request(1, "tools/call", `{"name":"wedge"}`), stuck); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		wantOneError(t, "timed-out request", stuck, jsonrpc.CodeTimeout)
		if k := stuck.ErrorKind(); k != problem.Timeout {
			t.Errorf("timed-out request's kind %v, want timeout", k)
		}
		if got := ly.l.server(1).got("notifications/cancelled"); len(got) != 1 {
			t.Fatalf("%d cancellations sent, want 1", len(got))
		}
		time.Sleep(2 * time.Second) // 3s = timeout + kill_grace: pinged
		synctest.Wait()
		if n := len(ly.l.server(1).got("ping")); n != 1 {
			t.Fatalf("%d pings at timeout + kill_grace, want 1", n)
		}
		time.Sleep(1500 * time.Millisecond) // 4.5s: another request starts on the wedged process
		other := NewSink(0)
		s2 := ly.initialize("d")
		if err := s2.Begin(context.Background(), request(1, "tools/call", `{"name":"hold"}`), other); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // 5s: the ping unanswered for kill_grace: recycled
		synctest.Wait()
		if d := time.Since(start); d != 5*time.Second {
			t.Errorf("recycled after %s", d)
		}
		wantOneError(t, "request on the recycled process", other, jsonrpc.CodeBackendStopped)
		if n := ly.logCount("recycling a stuck server process"); n != 1 {
			t.Errorf("%d recycle log lines, want 1", n)
		}
		next := NewSink(0)
		if err := s.Begin(context.Background(), request(2, "tools/call", `{"name":"quick"}`), next); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if resp, _ := outcomes(next); len(resp) != 1 || resp[0].Error != nil {
			t.Fatalf("request after the recycle: %s", encodeAll(resp))
		}
		if n := ly.l.starts(); n != 2 {
			t.Errorf("%d processes started, want 2", n)
		}
	})
}

func TestReclaimUnattended(t *testing.T) {
	// At the process cap, a session with nothing in flight and no open
	// stream (a client that left without DELETE) is reclaimable after
	// reclaim_unattended, counted from its last request or the end of its
	// last stream; one that holds a stream only after reclaim_idle.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
servers:
  l:
    command: [fake]
    max_processes: 2
    timeouts: {reclaim_idle: 60s, reclaim_unattended: 5s, idle: 1h, request: 10m, kill_grace: 1s}
`, &fakeLauncher{scripts: holding})
		srv := ly.m.Server("l")
		third := func() (*Session, error) {
			s, _, err := srv.Initialize(context.Background(), alice, initReq())
			return s, err
		}
		gone := func(s *Session) bool {
			_, err := ly.m.Lookup("l", s.ID(), "alice")
			return kindOf(err) == problem.NotFound
		}
		attended := ly.initialize("l")
		stream, err := attended.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		left := ly.initialize("l") // never opens a stream, never sends DELETE
		time.Sleep(4 * time.Second)
		if _, err := third(); kindOf(err) != problem.Busy {
			t.Fatalf("a session unattended for 4s (< reclaim_unattended): %v, want 429", err)
		}

		// A request in flight keeps it, and its end restarts the count.
		busy := NewSink(0)
		if err := left.Begin(context.Background(), request(1, "tools/call", `{"name":"hold"}`), busy); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Second)
		if _, err := third(); kindOf(err) != problem.Busy {
			t.Fatalf("a session with a request in flight: %v, want 429", err)
		}
		ly.l.server(2).reply(ly.l.server(2).got("tools/call")[0], `{"done":true}`)
		synctest.Wait()
		time.Sleep(4 * time.Second)
		if _, err := third(); kindOf(err) != problem.Busy {
			t.Fatalf("4s after its request ended: %v, want 429", err)
		}
		time.Sleep(time.Second)
		s3, err := third()
		if err != nil {
			t.Fatalf("5s after its request ended, no stream: %v, want it reclaimed", err)
		}
		if !gone(left) || gone(attended) {
			t.Fatalf("reclaimed the wrong session: left gone %v, attended gone %v", gone(left), gone(attended))
		}

		// The attended session (idle 29s) loses its stream: reclaim_unattended
		// counts from the stream's end, not from its last request.
		attended.CloseStream(stream)
		time.Sleep(4 * time.Second)
		if _, err := s3.OpenStream(); err != nil { // s3 is attended from now on
			t.Fatal(err)
		}
		if _, err := third(); kindOf(err) != problem.Busy {
			t.Fatalf("4s after its stream ended: %v, want 429", err)
		}
		time.Sleep(time.Second)
		if _, err := third(); err != nil {
			t.Fatalf("5s after its stream ended: %v, want it reclaimed", err)
		}
		if !gone(attended) || gone(s3) {
			t.Fatalf("reclaimed the wrong session: former stream holder gone %v, s3 gone %v", gone(attended), gone(s3))
		}
		if n := ly.logCount("reclaiming an idle session to make room for a new one"); n != 2 {
			t.Errorf("%d reclaim log lines, want 2", n)
		}
	})
}

func TestCancelledRequestKeepsResponsiveProcess(t *testing.T) {
	// A well-behaved server sends no response to a request the gateway
	// cancelled at its timeout; that silence alone must not recycle a
	// shared process that still answers: after kill_grace it is pinged,
	// answers, and keeps serving every session on it.
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
servers:
  d:
    command: [fake]
    mode: daemon
    timeouts: {request: 1s, kill_grace: 2s}
`, &fakeLauncher{scripts: holding})
		s := ly.initialize("d")
		timedOut := NewSink(0)
		if err := s.Begin(context.Background(), request(1, "tools/call", `{"name":"hold"}`), timedOut); err != nil {
			t.Fatal(err)
		}
		other := NewSink(0)
		s2 := ly.initialize("d")
		if err := s2.Begin(context.Background(), request(1, "tools/call", `{"name":"hold"}`), other); err != nil {
			t.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		fs := ly.l.server(1)
		fs.reply(fs.got("tools/call")[1], `{"slow":true}`) // the other request is answered within its timeout
		time.Sleep(5 * time.Second)
		synctest.Wait()
		wantOneError(t, "timed-out request", timedOut, jsonrpc.CodeTimeout)
		if resp, _ := outcomes(other); len(resp) != 1 || resp[0].Error != nil {
			t.Fatalf("the other request: %s", encodeAll(resp))
		}
		if n := len(fs.got("ping")); n != 1 {
			t.Errorf("%d pings, want 1", n)
		}
		if n := ly.logCount("recycling a stuck server process"); n != 0 {
			t.Errorf("%d recycles of a process that answers, want 0", n)
		}
		if n := ly.logCount("server process answers after leaving a timed-out request unanswered: keeping it"); n != 1 {
			t.Errorf("%d keep lines, want 1", n)
		}
		next := NewSink(0)
		if err := s.Begin(context.Background(), request(2, "tools/call", `{"name":"quick"}`), next); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if resp, _ := outcomes(next); len(resp) != 1 || resp[0].Error != nil {
			t.Fatalf("request after the timeout: %s", encodeAll(resp))
		}
		if n := ly.l.starts(); n != 1 {
			t.Errorf("%d processes started, want 1 (kept)", n)
		}
	})
}
