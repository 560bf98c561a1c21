package sqlitestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/internal/oauth"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestCodeUsedOnce: two stores on one file (as the gateway and a command,
// or two gateways) race to use a code: exactly one wins.
func TestCodeUsedOnce(t *testing.T) {
	dir := t.TempDir()
	a, b := open(t, dir), open(t, dir)
	ctx, now := context.Background(), time.Now()
	if err := a.SaveCode(ctx, &oauth.Code{Digest: "d1", GrantID: "g", Expires: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := a
			if i%2 == 1 {
				s = b
			}
			_, errs[i] = s.UseCode(ctx, "d1", now)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, oauth.ErrUsed):
			t.Errorf("unexpected error %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d uses of one code succeeded, want 1", won)
	}
	if _, err := a.UseCode(ctx, "d1", now.Add(2*time.Minute)); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("expired code: %v, want ErrNotFound", err)
	}
}

func TestRevokeDropsRefreshTokens(t *testing.T) {
	s := open(t, t.TempDir())
	ctx, now := context.Background(), time.Now()
	g := &oauth.Grant{ID: "g1", ClientID: "c", Subject: "a@example.com", Resource: "r", Created: now}
	if err := s.SaveGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRefresh(ctx, &oauth.Refresh{Digest: "r1", GrantID: "g1", Expires: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ActiveGrant(ctx, "c", "a@example.com", "r"); err != nil || got.ID != "g1" {
		t.Fatalf("active grant: %v %v", got, err)
	}
	if err := s.RevokeGrant(ctx, "g1", "test", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseRefresh(ctx, "r1", now); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("refresh token of a revoked grant: %v, want ErrNotFound", err)
	}
	if _, err := s.ActiveGrant(ctx, "c", "a@example.com", "r"); !errors.Is(err, oauth.ErrNotFound) {
		t.Errorf("revoked grant still active: %v", err)
	}
	got, _ := s.Grant(ctx, "g1")
	if got.Active() || got.RevokeReason != "test" {
		t.Errorf("grant after revoke: %+v", got)
	}
}

func TestClientLimitAndFileMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s := open(t, dir)
	ctx := context.Background()
	for i, id := range []string{"a", "b", "c"} {
		err := s.CreateClient(ctx, &oauth.Client{ID: id}, 2)
		if want := i >= 2; want != errors.Is(err, oauth.ErrLimit) {
			t.Errorf("client %d: %v", i, err)
		}
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, FileName): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}
