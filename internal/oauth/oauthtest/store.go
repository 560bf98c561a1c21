package oauthtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpgw/mcpgw/internal/oauth"
)

// OpenStores returns two stores on one fresh, empty state, as two
// processes (a gateway and a command, or two replicas) see it.
type OpenStores func(t *testing.T) (a, b oauth.Store)

// TestStore is the behaviour every oauth.Store has, run against a real
// one: atomic single use of codes and refresh tokens across two stores,
// revocation, limits, expiry, key rotation. Each case gets fresh state.
func TestStore(t *testing.T, open OpenStores) {
	cases := []struct {
		name string
		run  func(t *testing.T, a, b oauth.Store)
	}{
		{"CodeUsedOnce", codeUsedOnce},
		{"RefreshRotation", refreshRotation},
		{"RevokeDropsRefreshTokens", revokeDropsRefresh},
		{"Grants", grants},
		{"Clients", clients},
		{"DeleteClientRevokes", deleteClientRevokes},
		{"Requests", requests},
		{"Keys", keys},
		{"Purge", purge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := open(t)
			c.run(t, a, b)
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// race runs f n times at once, alternating the stores, and returns the
// errors.
func race(n int, a, b oauth.Store, f func(oauth.Store) error) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			errs[i] = f(s)
		}()
	}
	wg.Wait()
	return errs
}

func onceOf(t *testing.T, what string, errs []error) {
	t.Helper()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, oauth.ErrUsed):
			t.Errorf("%s: unexpected error %v", what, err)
		}
	}
	if won != 1 {
		t.Errorf("%d uses of one %s succeeded, want 1", won, what)
	}
}

// codeUsedOnce: two stores race to use a code: exactly one wins, the
// others see ErrUsed with the code (its grant is to be revoked); an
// expired code is not found.
func codeUsedOnce(t *testing.T, a, b oauth.Store) {
	ctx, now := context.Background(), time.Now()
	want := &oauth.Code{Digest: "d1", GrantID: "g", ClientID: "c", RedirectURI: "http://127.0.0.1/cb", CodeChallenge: "ch",
		Resource: "https://gw/mcp/t", Subject: "a@example.com", Scopes: []string{"mcp"}, Expires: now.Add(time.Minute).Round(0)}
	must(t, a.SaveCode(ctx, want))
	onceOf(t, "code", race(8, a, b, func(s oauth.Store) error {
		c, err := s.UseCode(ctx, "d1", now)
		if c == nil || c.GrantID != "g" {
			return fmt.Errorf("UseCode returned %+v, %v: want the code", c, err)
		}
		if diff := cmp.Diff(want, c); diff != "" {
			return fmt.Errorf("code (-want +got):\n%s", diff)
		}
		return err
	}))
	if _, err := b.UseCode(ctx, "d1", now.Add(2*time.Minute)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("expired code: %v, want ErrNotFound", err)
	}
	if _, err := a.UseCode(ctx, "nosuch", now); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("unknown code: %v, want ErrNotFound", err)
	}
	// A code stored already expired is never usable.
	must(t, a.SaveCode(ctx, &oauth.Code{Digest: "d2", GrantID: "g", Expires: now.Add(-time.Second)}))
	if _, err := b.UseCode(ctx, "d2", now); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("code saved expired: %v, want ErrNotFound", err)
	}
}

// refreshRotation: a refresh token is used once; a replay is ErrUsed
// with the token (the server revokes its grant).
func refreshRotation(t *testing.T, a, b oauth.Store) {
	ctx, now := context.Background(), time.Now()
	want := &oauth.Refresh{Digest: "r1", GrantID: "g1", ClientID: "c", Resource: "https://gw/mcp/t", Subject: "a@example.com",
		Scopes: []string{"mcp"}, Expires: now.Add(time.Hour).Round(0)}
	must(t, a.SaveRefresh(ctx, want))
	onceOf(t, "refresh token", race(6, a, b, func(s oauth.Store) error {
		r, err := s.UseRefresh(ctx, "r1", now)
		if r == nil {
			return fmt.Errorf("UseRefresh returned no token: %v", err)
		}
		if diff := cmp.Diff(want, r); diff != "" {
			return fmt.Errorf("refresh token (-want +got):\n%s", diff)
		}
		return err
	}))
	must(t, b.SaveRefresh(ctx, &oauth.Refresh{Digest: "r2", GrantID: "g1", Expires: now.Add(time.Hour)}))
	if r, err := a.UseRefresh(ctx, "r2", now); err != nil || r.GrantID != "g1" {
		t.Errorf("the rotated token: %+v, %v", r, err)
	}
	if _, err := a.UseRefresh(ctx, "r2", now); !errors.Is(err, oauth.ErrUsed) {
		t.Errorf("the rotated token again: %v, want ErrUsed", err)
	}
	must(t, a.SaveRefresh(ctx, &oauth.Refresh{Digest: "r3", GrantID: "g1", Expires: now.Add(time.Hour)}))
	if _, err := b.UseRefresh(ctx, "r3", now.Add(2*time.Hour)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("expired refresh token: %v, want ErrNotFound", err)
	}
}

func revokeDropsRefresh(t *testing.T, a, b oauth.Store) {
	ctx, now := context.Background(), time.Now()
	g := &oauth.Grant{ID: "g1", ClientID: "c", Subject: "a@example.com", Resource: "r", Created: now}
	must(t, a.SaveGrant(ctx, g))
	must(t, a.SaveRefresh(ctx, &oauth.Refresh{Digest: "r1", GrantID: "g1", Expires: now.Add(time.Hour)}))
	must(t, a.SaveRefresh(ctx, &oauth.Refresh{Digest: "r2", GrantID: "g1", Expires: now.Add(time.Hour)}))
	must(t, a.SaveRefresh(ctx, &oauth.Refresh{Digest: "other", GrantID: "g2", Expires: now.Add(time.Hour)}))
	if _, err := a.UseRefresh(ctx, "r2", now); err != nil {
		t.Fatal(err)
	}
	if got, err := b.ActiveGrant(ctx, "c", "a@example.com", "r"); err != nil || got.ID != "g1" {
		t.Fatalf("active grant: %v %v", got, err)
	}
	must(t, b.RevokeGrant(ctx, "g1", "test", now))
	for _, d := range []string{"r1", "r2"} {
		if _, err := a.UseRefresh(ctx, d, now); !errors.Is(err, oauth.ErrNotFound) {
			t.Errorf("refresh token %s of a revoked grant: %v, want ErrNotFound", d, err)
		}
	}
	if _, err := a.UseRefresh(ctx, "other", now); err != nil {
		t.Errorf("another grant's refresh token: %v", err)
	}
	if _, err := a.ActiveGrant(ctx, "c", "a@example.com", "r"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("revoked grant still active: %v", err)
	}
	// Revoked twice: the first reason stays.
	must(t, a.RevokeGrant(ctx, "g1", "second", now.Add(time.Minute)))
	got, err := a.Grant(ctx, "g1")
	if err != nil || got.Active() || got.RevokeReason != "test" || !got.Revoked.Equal(now) {
		t.Errorf("grant after two revocations: %+v, %v; want revoked at the first, reason test", got, err)
	}
	if err := a.RevokeGrant(ctx, "nosuch", "x", now); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("revoking an unknown grant: %v, want ErrNotFound", err)
	}
}

func grants(t *testing.T, a, b oauth.Store) {
	ctx, now := context.Background(), time.Now().Round(0)
	old := &oauth.Grant{ID: "g1", ClientID: "c", Subject: "a@example.com", Resource: "r", Scopes: []string{"mcp"}, Created: now}
	newer := &oauth.Grant{ID: "g0", ClientID: "c", Subject: "a@example.com", Resource: "r", Created: now.Add(time.Second)}
	otherRes := &oauth.Grant{ID: "g2", ClientID: "c", Subject: "a@example.com", Resource: "r2", Created: now.Add(2 * time.Second)}
	for _, g := range []*oauth.Grant{old, newer, otherRes} {
		must(t, a.SaveGrant(ctx, g))
	}
	if got, err := b.ActiveGrant(ctx, "c", "a@example.com", "r"); err != nil || got.ID != "g0" {
		t.Errorf("active grant: %+v, %v; want the newest, g0", got, err)
	}
	if _, err := b.ActiveGrant(ctx, "c", "b@example.com", "r"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("another user's active grant: %v, want ErrNotFound", err)
	}
	// SaveGrant replaces: g0 saved revoked is no longer active.
	r := *newer
	r.Revoked, r.RevokeReason = now, "replaced"
	must(t, b.SaveGrant(ctx, &r))
	if got, err := a.ActiveGrant(ctx, "c", "a@example.com", "r"); err != nil || got.ID != "g1" {
		t.Errorf("active grant after replacing g0: %+v, %v; want g1", got, err)
	}
	got, err := a.Grant(ctx, "g1")
	must(t, err)
	if diff := cmp.Diff(old, got); diff != "" {
		t.Errorf("grant (-want +got):\n%s", diff)
	}
	list, err := b.Grants(ctx)
	must(t, err)
	var ids []string
	for _, g := range list {
		ids = append(ids, g.ID)
	}
	if diff := cmp.Diff([]string{"g1", "g0", "g2"}, ids); diff != "" {
		t.Errorf("Grants, by creation (-want +got):\n%s", diff)
	}
	if _, err := a.Grant(ctx, "nosuch"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("unknown grant: %v, want ErrNotFound", err)
	}
}

func clients(t *testing.T, a, b oauth.Store) {
	ctx, now := context.Background(), time.Now().Round(0)
	for i, id := range []string{"b", "a", "c"} {
		s := a
		if i%2 == 1 {
			s = b
		}
		err := s.CreateClient(ctx, &oauth.Client{ID: id, Name: "client " + id, RedirectURIs: []string{"http://127.0.0.1/cb"},
			AuthMethod: "none", GrantTypes: []string{"authorization_code"}, Created: now.Add(time.Duration(i) * time.Second)}, 2)
		if want := i >= 2; want != errors.Is(err, oauth.ErrLimit) {
			t.Errorf("client %d: %v", i, err)
		}
	}
	got, err := b.Client(ctx, "a")
	must(t, err)
	want := &oauth.Client{ID: "a", Name: "client a", RedirectURIs: []string{"http://127.0.0.1/cb"}, AuthMethod: "none",
		GrantTypes: []string{"authorization_code"}, Created: now.Add(time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("client (-want +got):\n%s", diff)
	}
	list, err := a.Clients(ctx)
	must(t, err)
	if len(list) != 2 || list[0].ID != "b" || list[1].ID != "a" {
		t.Errorf("Clients = %v, want b then a (by registration)", list)
	}
	if _, err := a.Client(ctx, "c"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("a client over the limit: %v, want ErrNotFound", err)
	}
	// The limit holds when several register at once.
	var n atomic.Int64
	errs := race(10, a, b, func(s oauth.Store) error {
		return s.CreateClient(ctx, &oauth.Client{ID: fmt.Sprintf("x%d", n.Add(1)), Created: now}, 5)
	})
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, oauth.ErrLimit) {
			t.Errorf("concurrent registration: %v", err)
		}
	}
	if ok != 3 {
		t.Errorf("%d of 10 concurrent registrations passed a limit of 5 with 2 clients, want 3", ok)
	}
}

func deleteClientRevokes(t *testing.T, a, b oauth.Store) {
	ctx, now := context.Background(), time.Now()
	must(t, a.CreateClient(ctx, &oauth.Client{ID: "c", Created: now}, 10))
	must(t, a.SaveGrant(ctx, &oauth.Grant{ID: "g1", ClientID: "c", Subject: "a@example.com", Resource: "r", Created: now}))
	must(t, a.SaveGrant(ctx, &oauth.Grant{ID: "g2", ClientID: "other", Subject: "a@example.com", Resource: "r", Created: now}))
	must(t, a.SaveRefresh(ctx, &oauth.Refresh{Digest: "r1", GrantID: "g1", Expires: now.Add(time.Hour)}))
	must(t, b.DeleteClient(ctx, "c", now))
	if _, err := a.Client(ctx, "c"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("deleted client: %v, want ErrNotFound", err)
	}
	if g, err := a.Grant(ctx, "g1"); err != nil || g.Active() || g.RevokeReason == "" {
		t.Errorf("grant of the deleted client: %+v, %v; want revoked with a reason", g, err)
	}
	if g, err := a.Grant(ctx, "g2"); err != nil || !g.Active() {
		t.Errorf("another client's grant: %+v, %v; want active", g, err)
	}
	if _, err := a.UseRefresh(ctx, "r1", now); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("refresh token of the deleted client: %v, want ErrNotFound", err)
	}
	if err := b.DeleteClient(ctx, "nosuch", now); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("deleting an unknown client: %v, want ErrNotFound", err)
	}
}

func requests(t *testing.T, a, b oauth.Store) {
	ctx, now := context.Background(), time.Now().Round(0)
	want := &oauth.Request{ID: "q1", ClientID: "c", RedirectURI: "http://127.0.0.1/cb", State: "s", CodeChallenge: "ch",
		Resource: "r", Server: "t", Scopes: []string{"mcp"}, BrowserDigest: "bd", Verifier: "v", Nonce: "n", Expires: now.Add(time.Minute)}
	must(t, a.SaveRequest(ctx, want))
	got, err := b.Request(ctx, "q1", now)
	must(t, err)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	// Replaced after the login.
	next := *want
	next.Subject, next.CSRF = "a@example.com", "csrf"
	must(t, b.SaveRequest(ctx, &next))
	if got, err := a.Request(ctx, "q1", now); err != nil || got.Subject != "a@example.com" || got.CSRF != "csrf" {
		t.Errorf("replaced request: %+v, %v", got, err)
	}
	if _, err := a.Request(ctx, "q1", now.Add(2*time.Minute)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("expired request: %v, want ErrNotFound", err)
	}
	must(t, a.DeleteRequest(ctx, "q1"))
	if _, err := b.Request(ctx, "q1", now); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("deleted request: %v, want ErrNotFound", err)
	}
	must(t, a.DeleteRequest(ctx, "q1")) // deleting twice is no error
}

// keys: the same key set in both stores, newest first; retiring keeps a
// key (with its first retirement time), deleting drops it; rotation
// through oauth.RotateKey works on any store.
func keys(t *testing.T, a, b oauth.Store) {
	ctx, now := context.Background(), time.Now().Round(0)
	k1, err := oauth.NewKey(now)
	must(t, err)
	k2, err := oauth.NewKey(now.Add(time.Second))
	must(t, err)
	must(t, a.AddKey(ctx, k1))
	must(t, b.AddKey(ctx, k2))
	if err := b.AddKey(ctx, k1); err == nil {
		t.Error("adding a key id twice: no error")
	}
	list, err := b.Keys(ctx)
	must(t, err)
	if diff := cmp.Diff([]*oauth.Key{k2, k1}, list); diff != "" {
		t.Errorf("Keys, newest first (-want +got):\n%s", diff)
	}
	must(t, a.RetireKey(ctx, k2.ID, now.Add(time.Minute)))
	must(t, b.RetireKey(ctx, k2.ID, now.Add(time.Hour)))
	list, err = a.Keys(ctx)
	must(t, err)
	if len(list) != 2 || !list[0].Retired.Equal(now.Add(time.Minute)) || !list[1].Retired.IsZero() {
		t.Errorf("after retiring k2 twice: %+v; want k2 retired at the first time, k1 not", list)
	}
	if err := a.RetireKey(ctx, "nosuch", now); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("retiring an unknown key: %v, want ErrNotFound", err)
	}
	must(t, b.DeleteKey(ctx, k2.ID))
	k3, err := oauth.RotateKey(ctx, a, now.Add(2*time.Second))
	must(t, err)
	list, err = b.Keys(ctx)
	must(t, err)
	if len(list) != 2 || list[0].ID != k3.ID || !list[0].Retired.IsZero() || list[1].ID != k1.ID || list[1].Retired.IsZero() {
		t.Errorf("after rotation: %+v; want k3 signing, k1 retired", list)
	}
}

// purge keeps what has not expired.
func purge(t *testing.T, a, b oauth.Store) {
	ctx, now := context.Background(), time.Now()
	must(t, a.SaveGrant(ctx, &oauth.Grant{ID: "g1", ClientID: "c", Subject: "s", Resource: "r", Created: now}))
	must(t, a.SaveRefresh(ctx, &oauth.Refresh{Digest: "live", GrantID: "g1", Expires: now.Add(time.Hour)}))
	must(t, a.SaveRefresh(ctx, &oauth.Refresh{Digest: "dead", GrantID: "g1", Expires: now.Add(-time.Second)}))
	must(t, a.SaveCode(ctx, &oauth.Code{Digest: "code", GrantID: "g1", Expires: now.Add(time.Hour)}))
	must(t, a.SaveRequest(ctx, &oauth.Request{ID: "q", Expires: now.Add(time.Hour)}))
	must(t, b.Purge(ctx, now))
	if _, err := a.UseRefresh(ctx, "live", now); err != nil {
		t.Errorf("live refresh token after Purge: %v", err)
	}
	if _, err := a.UseRefresh(ctx, "dead", now); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("expired refresh token after Purge: %v", err)
	}
	if _, err := a.UseCode(ctx, "code", now); err != nil {
		t.Errorf("live code after Purge: %v", err)
	}
	if _, err := a.Request(ctx, "q", now); err != nil {
		t.Errorf("live request after Purge: %v", err)
	}
	if g, err := a.Grant(ctx, "g1"); err != nil || !g.Active() {
		t.Errorf("grant after Purge: %+v, %v", g, err)
	}
}
