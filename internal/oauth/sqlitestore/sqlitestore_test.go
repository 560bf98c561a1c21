package sqlitestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcpgw/mcpgw/internal/oauth"
	"github.com/mcpgw/mcpgw/internal/oauth/oauthtest"
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

// TestStore runs the store conformance suite with two stores on one file,
// as the gateway and a command (or two gateways on one host) have them.
func TestStore(t *testing.T) {
	oauthtest.TestStore(t, func(t *testing.T) (oauth.Store, oauth.Store) {
		dir := t.TempDir()
		return open(t, dir), open(t, dir)
	})
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
