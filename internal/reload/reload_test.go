package reload

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestWatch: a change is reported once it has settled for one look; a
// file in the middle of being written, replaced by rename, or missing for
// a while is reported once, with nothing for a file that came back as it
// was.
func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "mcpgw.yaml")
		writeFile(t, path, "a")
		var calls atomic.Int32
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { Watch(ctx, path, time.Second, func() { calls.Add(1) }); close(done) }()
		tick := func(n int) { time.Sleep(time.Duration(n)*time.Second + time.Millisecond); synctest.Wait() }
		want := func(step string, n int32) {
			t.Helper()
			if got := calls.Load(); got != n {
				t.Errorf("%s: %d reloads, want %d", step, got, n)
			}
		}

		tick(3)
		want("unchanged", 0)
		writeFile(t, path, "b")
		tick(1)
		want("changed, seen once", 0)
		tick(1)
		want("changed and settled", 1)
		tick(3)
		want("settled, later", 1)

		// Written in two steps between two looks: one reload, of the end.
		writeFile(t, path, "c-half")
		tick(1)
		writeFile(t, path, "c-whole")
		tick(1)
		want("half written", 1)
		tick(1)
		want("whole", 2)

		// Replaced by rename, as editors save.
		tmp := filepath.Join(dir, ".mcpgw.yaml.swp")
		writeFile(t, tmp, "d")
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		tick(2)
		want("renamed over", 3)

		// Missing for a while, then back as it was: no reload.
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		tick(3)
		writeFile(t, path, "d")
		tick(3)
		want("removed and restored", 3)

		cancel()
		<-done
	})
}

func TestControlSocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	var n atomic.Int32
	srv, err := Listen(dir, func(context.Context) Reply {
		n.Add(1)
		return Reply{OK: true, Summary: "reloaded"}
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(srv.Path())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v (%v), want 0600", fi.Mode(), err)
	}
	if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %v (%v), want 0700", di.Mode(), err)
	}
	for range 2 {
		r, err := Request(t.Context(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&Reply{OK: true, Summary: "reloaded"}, r); diff != "" {
			t.Errorf("reply (-want +got):\n%s", diff)
		}
	}
	if n.Load() != 2 {
		t.Errorf("handler called %d times, want 2", n.Load())
	}

	// Anything but "reload" is answered with a problem, not handled.
	c, err := net.Dial("unix", srv.Path())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, strings.Repeat("x", 200)+"\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.Contains(line, "unknown request") || n.Load() != 2 {
		t.Errorf("garbage request: %q, handler calls %d", line, n.Load())
	}

	// A second gateway with the same state directory leaves it alone.
	if _, err := Listen(dir, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "another mcpgw answers") {
		t.Errorf("second Listen: %v, want a refusal naming the other gateway", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(srv.Path()); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
	if _, err := Request(t.Context(), dir); err == nil || !strings.Contains(err.Error(), "is mcpgw serve running") {
		t.Errorf("request without a gateway: %v", err)
	}
}

// TestControlSocketStale: a socket file left by a gateway that was killed
// is replaced; a file that is not a socket is not touched.
func TestControlSocketStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketName)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // the file stays, nobody answers
	srv, err := Listen(dir, func(context.Context) Reply { return Reply{OK: true} }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	if r, err := Request(t.Context(), dir); err != nil || !r.OK {
		t.Errorf("request: %+v %v", r, err)
	}
	srv.Close()

	writeFile(t, path, "not a socket")
	if _, err := Listen(dir, nil, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a socket" {
		t.Errorf("the regular file was changed: %q", b)
	}
}

func TestSocketPathTooLong(t *testing.T) {
	_, err := SocketPath("/" + strings.Repeat("d", 120))
	if err == nil || !strings.Contains(err.Error(), "choose a shorter state_dir") {
		t.Errorf("long state_dir: %v", err)
	}
	if _, err := SocketPath(""); err == nil {
		t.Error("empty state_dir accepted")
	}
}
