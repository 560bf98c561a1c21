package session

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mcpgw/mcpgw/internal/jsonrpc"
	"github.com/mcpgw/mcpgw/internal/modern"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// A process that does not answer initialize within the startup timeout is
// answered at that time, and only then stopped: the client does not wait
// for the stop sequence (close stdin, kill_grace, SIGTERM, kill_grace,
// SIGKILL). The pool counts the failure once, before the answer.
func TestStartupTimeoutAnswersBeforeTheStop(t *testing.T) {
	const startup, grace = 3 * time.Second, 2 * time.Second
	silent := func(int) *script {
		return &script{lingers: true, // ignores its closed stdin: only the kill ends it
			initialize: func(*fakeServer, *jsonrpc.Message) {},
			request: func(s *fakeServer, req *jsonrpc.Message) {
				if req.Method == "server/discover" {
					s.send(jsonrpc.NewError(req.ID, jsonrpc.CodeMethodNotFound, "method not found", nil))
				}
			}}
	}
	for _, tc := range []struct {
		name, mode string
		start      func(srv *Server) error
	}{
		{"launcher", "launcher", func(srv *Server) error {
			_, _, err := srv.Initialize(context.Background(), alice, initReq())
			return err
		}},
		{"daemon", "daemon", func(srv *Server) error {
			_, _, err := srv.Initialize(context.Background(), alice, initReq())
			return err
		}},
		{"modern request, launcher", "launcher", func(srv *Server) error {
			meta := &modern.Meta{ProtocolVersion: modern.Version}
			params := `{"name":"x","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}`
			_, err := srv.Stateless(context.Background(), alice, request(1, "tools/call", params), meta, NewSink(0))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ly := newLayer(t, `
servers:
  s:
    command: [fake]
    mode: `+tc.mode+`
    timeouts: {startup: 3s, kill_grace: 2s}
`, &fakeLauncher{scripts: silent})
				srv := ly.m.Server("s")
				start := time.Now()
				err := tc.start(srv)
				if kindOf(err) != problem.Timeout {
					t.Fatalf("start of a silent server: %v (kind %v), want a timeout", err, kindOf(err))
				}
				if d := time.Since(start); d != startup {
					t.Errorf("answered after %s, want the startup timeout, %s", d, startup)
				}
				if srv.pool != nil && srv.pool.failures != 1 {
					t.Errorf("the pool counts %d failures when the client is answered, want 1", srv.pool.failures)
				}
				if n := ly.l.alive(); n != 1 {
					t.Errorf("%d processes alive right after the answer, want the silent one still being stopped", n)
				}
				// Stopped in the background: killed after the grace.
				time.Sleep(2*grace + time.Second)
				synctest.Wait()
				if n := ly.l.alive(); n != 0 {
					t.Errorf("%d processes alive after the stop sequence, want 0", n)
				}
				if got := srv.m.Stats("s").Processes; got != 0 {
					t.Errorf("%d process slots held after the stop, want 0", got)
				}
				if srv.pool != nil && srv.pool.failures != 1 {
					t.Errorf("the pool counts %d failures after the stop, want 1 (each failed start counts once)", srv.pool.failures)
				}
			})
		})
	}
}

// A launcher-mode start that times out does not make the next client wait
// or fail for the process still being stopped: its slot is waited for.
func TestRetryWhileTheTimedOutProcessStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ly := newLayer(t, `
servers:
  s:
    command: [fake]
    max_processes: 1
    timeouts: {startup: 3s, kill_grace: 2s}
`, &fakeLauncher{scripts: func(n int) *script {
			if n == 1 {
				return &script{lingers: true, initialize: func(*fakeServer, *jsonrpc.Message) {}}
			}
			return &script{}
		}})
		srv := ly.m.Server("s")
		if _, _, err := srv.Initialize(context.Background(), alice, initReq()); kindOf(err) != problem.Timeout {
			t.Fatalf("first start: %v, want a timeout", err)
		}
		s, _, err := srv.Initialize(context.Background(), alice, initReq())
		if err != nil || s == nil {
			t.Fatalf("retry while the first process stops: %v, want a session once its slot is free", err)
		}
		s.End()
	})
}
