package session

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/problem"
)

// procAlive reports whether the n-th fake process is still running.
func (ly *layer) procAlive(n int) bool {
	select {
	case <-ly.l.server(n).proc.done:
		return false
	default:
		return true
	}
}

// ping sends a ping on s and returns the error of Begin, or of the
// response once it arrived.
func ping(t *testing.T, s *Session) error {
	t.Helper()
	sink := NewSink(0)
	if err := s.Begin(context.Background(), request(99, "ping", ""), sink); err != nil {
		return err
	}
	synctest.Wait()
	if resp, _ := outcomes(sink); len(resp) != 1 || resp[0].Error != nil {
		t.Fatalf("ping: responses %s, want one result", encodeAll(resp))
	}
	return nil
}

// TestReloadDrainDeadline: the sessions of a changed (launcher) and a
// removed (daemon) server keep their processes and the old definition
// until the drain deadline, limits.shutdown_timeout after the reload; then
// new requests get 404, the request in flight finishes, the processes
// stop and the old generations are forgotten. An unchanged server is not
// touched; new sessions get the new definition at once.
func TestReloadDrainDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const v1 = `
limits: {shutdown_timeout: 1m}
servers:
  l: {command: [fake], env: {X: "1"}, timeouts: {request: 1h, kill_grace: 1s}}
  d: {command: [fake], mode: daemon, timeouts: {request: 1h, kill_grace: 1s}}
  k: {command: [fake], timeouts: {kill_grace: 1s}}
`
		const v2 = `
limits: {shutdown_timeout: 1m}
servers:
  l: {command: [fake], env: {X: "2"}, timeouts: {request: 1h, kill_grace: 1s}}
  k: {command: [fake], timeouts: {kill_grace: 1s}, rate: {requests_per_second: 5, burst: 5, per: ip}}
  a: {command: [fake], timeouts: {kill_grace: 1s}}
`
		ly := newLayer(t, v1, &fakeLauncher{scripts: holding})
		old, daemon, keep := ly.initialize("l"), ly.initialize("d"), ly.initialize("k") // processes 1, 2, 3
		held := NewSink(0)
		if err := old.Begin(context.Background(), request(1, "tools/call", `{"name":"hold"}`), held); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()

		cfg, err := config.Parse([]byte(v2), nil)
		if err != nil {
			t.Fatal(err)
		}
		res := ly.m.Reload(cfg)
		want := ReloadResult{Unchanged: []string{"k"}, Changed: []string{"l"}, Added: []string{"a"}, Removed: []string{"d"},
			DrainBy: time.Now().Add(time.Minute)}
		if diff := cmp.Diff(want, res, cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
			t.Errorf("reload (-want +got):\n%s", diff)
		}
		if ly.m.Server("k") != keep.srv || ly.m.Server("d") != nil || ly.m.Retired("d") != daemon.srv {
			t.Fatal("after the reload: k is not the same server, or d is still current, or not retired")
		}

		time.Sleep(50 * time.Second)
		for name, s := range map[string]*Session{"changed": old, "removed": daemon, "unchanged": keep} {
			if err := ping(t, s); err != nil {
				t.Errorf("%s server's session before the deadline: %v", name, err)
			}
		}
		fresh := ly.initialize("l") // process 4
		if got := fresh.srv.cfg.Env["X"]; got != "2" || old.srv.cfg.Env["X"] != "1" {
			t.Errorf("new session's definition has X=%q, old one's X=%q; want 2 and 1", got, old.srv.cfg.Env["X"])
		}
		if s, _, err := ly.m.Server("a").Initialize(context.Background(), alice, initReq()); err != nil || s == nil {
			t.Errorf("added server: %v", err) // process 5
		}

		time.Sleep(11*time.Second + time.Second) // past the deadline and a janitor tick
		synctest.Wait()
		for name, s := range map[string]*Session{"changed": old, "removed": daemon} {
			if err := s.Begin(context.Background(), request(2, "ping", ""), NewSink(0)); kindOf(err) != problem.NotFound {
				t.Errorf("%s server's session after the deadline: %v, want 404", name, err)
			}
		}
		if !ly.procAlive(1) {
			t.Fatal("the changed server's process stopped with a request in flight")
		}
		if ly.procAlive(2) {
			t.Error("the removed daemon server's process outlived the deadline")
		}
		ly.l.server(1).reply(ly.l.server(1).got("tools/call")[0], `{"late":true}`)
		synctest.Wait()
		if resp, _ := outcomes(held); len(resp) != 1 || resp[0].Error != nil {
			t.Fatalf("request in flight across the deadline: %s, want its result", encodeAll(resp))
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if ly.procAlive(1) {
			t.Error("the changed server's old process outlived its last request")
		}
		for _, n := range []int{3, 4, 5} {
			if !ly.procAlive(n) {
				t.Errorf("process %d of a current definition stopped", n)
			}
		}
		if err := ping(t, keep); err != nil {
			t.Errorf("unchanged server's session after the deadline: %v", err)
		}
		if n := ly.logCount("replaced server definition drained: its processes are gone"); n != 2 {
			t.Errorf("%d generations logged as drained, want 2", n)
		}
		if ly.m.Retired("d") != nil {
			t.Error("the removed server is still remembered after it drained")
		}
	})
}
