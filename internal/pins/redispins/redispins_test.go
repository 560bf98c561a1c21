package redispins

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/clustertest"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/pins"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

func newStore(t *testing.T, url string) *Store {
	t.Helper()
	conn, err := redisconn.New(&config.Redis{URL: url, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := New(conn, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestRecordApproveAcrossStores: what one store (a replica) records and
// approves, another reads; as pins.Store, the first definition is
// trusted, a changed one waits for approval.
func TestRecordApproveAcrossStores(t *testing.T) {
	srv := clustertest.StartRedis(t)
	a, b := newStore(t, srv.URL()), newStore(t, srv.URL())
	a.Record(pins.Pin{Server: "s", Tool: "echo", Approved: "d1", ApprovedDef: []byte("v1"), Seen: "d1", SeenDef: []byte("v1")})
	a.Record(pins.Pin{Server: "s", Tool: "echo", Approved: "d1", Seen: "d1", SeenDef: []byte("v1")}) // seen again: no change
	a.Record(pins.Pin{Server: "s", Tool: "echo", Approved: "ignored", Seen: "d2", SeenDef: []byte("v2")})
	a.Record(pins.Pin{Server: "other", Tool: "echo", Approved: "x", Seen: "x"})
	if err := a.Close(); err != nil { // writes what is queued
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Another replica saw the first definition too: it does not replace
	// the pin.
	if err := b.write(t.Context(), pins.Pin{Server: "s", Tool: "echo", Approved: "d0", ApprovedDef: []byte("v0"), Seen: "d2", SeenDef: []byte("v2")}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Load(t.Context(), "s")
	if err != nil {
		t.Fatal(err)
	}
	p := got["echo"]
	if len(got) != 1 || p == nil || p.Approved != "d1" || p.Seen != "d2" || string(p.ApprovedDef) != "v1" || string(p.SeenDef) != "v2" || !p.Pending() {
		t.Fatalf("pins of s = %+v (echo %+v), want echo approved d1, seen d2", got, p)
	}
	if p.FirstSeen.IsZero() || p.Changed.Before(p.FirstSeen) {
		t.Errorf("times: first seen %s, changed %s", p.FirstSeen, p.Changed)
	}
	c := newStore(t, srv.URL()) // the command
	if was, err := c.Approve(t.Context(), "s", "echo"); !was || err != nil {
		t.Fatalf("Approve = %v, %v; want true, nil", was, err)
	}
	if was, err := c.Approve(t.Context(), "s", "echo"); was || err != nil {
		t.Fatalf("second Approve = %v, %v; want false, nil", was, err)
	}
	if _, err := c.Approve(t.Context(), "s", "nosuch"); !errors.Is(err, pins.ErrUnknown) {
		t.Fatalf("Approve of an unknown tool = %v, want ErrUnknown", err)
	}
	if got, _ := b.Load(t.Context(), "s"); got["echo"] == nil || got["echo"].Pending() || string(got["echo"].ApprovedDef) != "v2" {
		t.Errorf("after the approval, the other replica reads %+v; want v2 approved", got["echo"])
	}
	if err := b.SetModes(t.Context(), map[string]string{"s": "enforce", "other": "warn"}); err != nil {
		t.Fatal(err)
	}
	if err := b.SetModes(t.Context(), map[string]string{"s": "enforce"}); err != nil { // replaces
		t.Fatal(err)
	}
	list, err := c.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Server != "other" || list[0].Mode != "" || list[1].Server != "s" || list[1].Mode != "enforce" || list[1].Approved != "d2" {
		t.Fatalf("List = %+v %+v", list[0], list[1])
	}
}

// TestRedisDown: with Redis gone, Load, Approve and List fail within about
// the timeout, without the password in the error; Record does not block
// (its writer logs the failure); all works again once Redis is back, with
// its data.
func TestRedisDown(t *testing.T) {
	const password = "pins-redis-password-never-shown"
	srv := clustertest.StartRedisWith(t, clustertest.RedisOptions{Password: password, Persist: true})
	s := newStore(t, srv.URL())
	if err := s.write(t.Context(), pins.Pin{Server: "s", Tool: "t", Approved: "1", Seen: "2"}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for name, call := range map[string]func() error{
		"Load":     func() error { _, err := s.Load(t.Context(), "s"); return err },
		"List":     func() error { _, err := s.List(t.Context()); return err },
		"Approve":  func() error { _, err := s.Approve(t.Context(), "s", "t"); return err },
		"SetModes": func() error { return s.SetModes(t.Context(), map[string]string{"s": "warn"}) },
		"write":    func() error { return s.write(t.Context(), pins.Pin{Server: "s", Tool: "u"}) },
	} {
		start := time.Now()
		err := call()
		if !errors.Is(err, redisconn.ErrUnavailable) || strings.Contains(err.Error(), password) {
			t.Errorf("%s with Redis down: %v; want ErrUnavailable without the password", name, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s with Redis down took %s", name, d)
		}
	}
	start := time.Now()
	s.Record(pins.Pin{Server: "s", Tool: "v"})
	if d := time.Since(start); d > 10*time.Millisecond {
		t.Errorf("Record with Redis down took %s, want no wait", d)
	}
	srv.Start()
	if was, err := s.Approve(t.Context(), "s", "t"); !was || err != nil {
		t.Errorf("Approve once Redis is back: %v, %v; want the pin kept and approved", was, err)
	}
}
