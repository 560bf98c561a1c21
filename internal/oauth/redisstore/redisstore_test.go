package redisstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/clustertest"
	"github.com/mcpgw/mcpgw/internal/config"
	"github.com/mcpgw/mcpgw/internal/oauth"
	"github.com/mcpgw/mcpgw/internal/oauth/oauthtest"
	"github.com/mcpgw/mcpgw/internal/redisconn"
)

const testKey = "0123456789abcdef0123456789abcdef-redisstore-test"

func newStore(t *testing.T, url, clusterKey string) *Store {
	t.Helper()
	conn, err := redisconn.New(&config.Redis{URL: url, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(conn, clusterKey)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestStore runs the store conformance suite with two stores on one
// redis-server, as two replicas have them.
func TestStore(t *testing.T) {
	srv := clustertest.StartRedis(t)
	oauthtest.TestStore(t, func(t *testing.T) (oauth.Store, oauth.Store) {
		a, b := newStore(t, srv.URL(), testKey), newStore(t, srv.URL(), testKey)
		if err := a.conn.FlushDB(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		return a, b
	})
}

// TestKeysSealed: Redis holds no private key in clear, and a store with
// another cluster key cannot read (nor silently replace) the keys.
func TestKeysSealed(t *testing.T) {
	srv := clustertest.StartRedis(t)
	a := newStore(t, srv.URL(), testKey)
	ctx := t.Context()
	k, err := oauth.NewKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AddKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	raw, err := a.conn.HGetAll(ctx, key("keys")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1 {
		t.Fatalf("keys hash = %d entries, want 1", len(raw))
	}
	for _, v := range raw {
		for _, clear := range [][]byte{k.PrivatePKCS8, k.PrivatePKCS8[len(k.PrivatePKCS8)-32:]} {
			if strings.Contains(v, string(clear)) {
				t.Fatal("the private key is stored in clear")
			}
		}
		if strings.Contains(v, "private_pkcs8") {
			t.Fatal("the key record is stored in clear")
		}
	}
	other := newStore(t, srv.URL(), strings.Repeat("x", 40))
	_, err = other.Keys(ctx)
	if err == nil || !strings.Contains(err.Error(), "another cluster key") {
		t.Errorf("Keys with another cluster key: %v, want an error naming the cluster key", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Error("the error quotes the cluster key")
	}
	// A sealed record moved under another kid does not open.
	if err := a.conn.HSet(ctx, key("keys"), "moved", raw[k.ID]).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Keys(ctx); err == nil {
		t.Error("a sealed key under another kid opened")
	}
	if _, err := New(nil, "short"); err == nil {
		t.Error("New with a short cluster key: no error")
	}
}

// TestRedisDown: with Redis gone every call fails within about the
// timeout with oauth.ErrUnavailable (never ErrNotFound, which would tell a
// client its code or token is bad), and works again once it is back,
// with the state it had.
func TestRedisDown(t *testing.T) {
	const password = "redis-password-never-shown"
	srv := clustertest.StartRedisWith(t, clustertest.RedisOptions{Password: password, Persist: true})
	s := newStore(t, srv.URL(), testKey)
	ctx, now := t.Context(), time.Now()
	if err := s.SaveCode(ctx, &oauth.Code{Digest: "d", GrantID: "g", Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	calls := map[string]func() error{
		"UseCode":      func() error { _, err := s.UseCode(ctx, "d", now); return err },
		"Client":       func() error { _, err := s.Client(ctx, "c"); return err },
		"Grant":        func() error { _, err := s.Grant(ctx, "g"); return err },
		"Keys":         func() error { _, err := s.Keys(ctx); return err },
		"RevokeGrant":  func() error { return s.RevokeGrant(ctx, "g", "x", now) },
		"SaveRequest":  func() error { return s.SaveRequest(ctx, &oauth.Request{ID: "q", Expires: now.Add(time.Minute)}) },
		"CreateClient": func() error { return s.CreateClient(ctx, &oauth.Client{ID: "c"}, 10) },
	}
	for name, call := range calls {
		start := time.Now()
		err := call()
		if !errors.Is(err, oauth.ErrUnavailable) {
			t.Errorf("%s with Redis down: %v, want ErrUnavailable", name, err)
		}
		if err != nil && strings.Contains(err.Error(), password) {
			t.Errorf("%s: the error holds the Redis password: %v", name, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s with Redis down took %s, want about the 300ms timeout", name, d)
		}
	}
	srv.Start() // with its data: the code is still there, unused
	if c, err := s.UseCode(ctx, "d", now); err != nil || c.GrantID != "g" {
		t.Errorf("UseCode once Redis is back: %+v, %v; want the code", c, err)
	}
}

// TestWrongPassword: rejected credentials are ErrUnavailable too, and the
// error does not quote the password that was tried.
func TestWrongPassword(t *testing.T) {
	srv := clustertest.StartRedisWith(t, clustertest.RedisOptions{Password: "the-right-one"})
	wrong := strings.Replace(srv.URL(), "the-right-one", "wrong-password-never-shown", 1)
	s := newStore(t, wrong, testKey)
	_, err := s.Client(t.Context(), "c")
	if !errors.Is(err, oauth.ErrUnavailable) || strings.Contains(err.Error(), "wrong-password-never-shown") {
		t.Errorf("wrong password: %v, want ErrUnavailable without the password", err)
	}
}
